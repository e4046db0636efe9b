package mitigation

import (
	"strings"
	"testing"
)

func TestParseSet(t *testing.T) {
	tests := []struct {
		in, id, err string
	}{
		{in: "none", id: "none"},
		{in: "single-request-reopen", id: "single-request-reopen"},
		{in: "single-request-reopen+grpc-native", id: "grpc-native+single-request-reopen"},
		{in: " grpc-native + single-request-reopen ", id: "grpc-native+single-request-reopen"},
		{in: "ndots-1+fqdn", id: "fqdn+ndots-1"},
		{in: "ndots-15", id: "ndots-15"},
		{in: "ndots-16", err: "ndots-N needs N from 0 to 15"},
		{in: "ndots-01", err: "ndots-N needs N from 0 to 15"},
		{in: "ndots-N", err: "ndots-N needs N"},
		{in: "ndots-1+ndots-2", err: `"ndots-N" appears twice`},
		{in: "none+fqdn", err: `"none" cannot be combined`},
		{in: "bogus+use-vc+bogus2", err: "unknown mitigation \"bogus\"\nunknown mitigation \"bogus2\""},
		{in: "dnspolicy-default+nodelocaldns", err: "cannot be combined: dnsPolicy Default bypasses"},
		{in: "", err: "empty mitigation set"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSet(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseSet(%q) error = %v, want containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSet(%q): %v", tt.in, err)
			}
			if s.ID() != tt.id {
				t.Errorf("ID = %q, want %q", s.ID(), tt.id)
			}
		})
	}
}

func TestSetFor(t *testing.T) {
	tests := []struct {
		set, resolver string
		applies       bool
		ignored       string
		effective     string
	}{
		{"none", Glibc, true, "", Glibc},
		{"single-request-reopen", Glibc, true, "", Glibc},
		{"single-request-reopen", Musl, true, "single-request-reopen", Musl},
		{"single-request-reopen", GRPCAres, true, "single-request-reopen", GRPCAres},
		{"grpc-native", Glibc, false, "", Glibc},
		{"grpc-native", GRPCNative, false, "", GRPCNative},
		{"grpc-native+single-request-reopen", GRPCAres, true, "", GRPCNative},
		{"nodelocaldns", Musl, true, "", Musl},
		// The JVM resolves through glibc's getaddrinfo: resolv.conf options
		// apply to both cache variants; GRPC_DNS_RESOLVER means nothing to it.
		{"single-request-reopen", JVM, true, "", JVM},
		{"single-request-reopen", JVMNoCache, true, "", JVMNoCache},
		{"use-vc", JVMNoCache, true, "", JVMNoCache},
		{"ndots-1", JVM, true, "", JVM},
		{"nodelocaldns", JVMNoCache, true, "", JVMNoCache},
		{"grpc-native", JVM, false, "", JVM},
		{"grpc-native+single-request-reopen", JVMNoCache, false, "", JVMNoCache},
	}
	for _, tt := range tests {
		s := MustParseSet(tt.set)
		a := s.For(tt.resolver)
		if a.Applies != tt.applies {
			t.Errorf("%s on %s: applies = %v (%s), want %v", tt.set, tt.resolver, a.Applies, a.Reason, tt.applies)
		}
		if !a.Applies && a.Reason == "" {
			t.Errorf("%s on %s: not applicable without a reason", tt.set, tt.resolver)
		}
		if got := strings.Join(a.Ignored, ","); got != tt.ignored {
			t.Errorf("%s on %s: ignored = %q, want %q", tt.set, tt.resolver, got, tt.ignored)
		}
		if got := s.EffectiveResolver(tt.resolver); got != tt.effective {
			t.Errorf("%s on %s: effective = %q, want %q", tt.set, tt.resolver, got, tt.effective)
		}
	}
}

func TestCatalogComplete(t *testing.T) {
	// Every id of PHENOMENON.md's table, and each entry says what it changes,
	// where, and what to expect.
	want := []string{"none", "single-request-reopen", "single-request", "use-vc", "ndots-N", "fqdn",
		"dnspolicy-default", "autopath", "nodelocaldns", "delay-aaaa", "grpc-native", "random-fully", "arp-gc"}
	have := map[string]Mitigation{}
	for _, m := range Catalog() {
		have[m.ID] = m
	}
	for _, id := range want {
		m, ok := have[id]
		if !ok {
			t.Errorf("catalog lacks %q", id)
			continue
		}
		if m.Changes == "" || m.Where == "" || m.Expected == "" {
			t.Errorf("%q: incomplete entry %+v", id, m)
		}
		if m.Where == PodDNSConfig && m.Option == "" {
			t.Errorf("%q changes dnsConfig but names no option", id)
		}
	}
	if len(have) != len(want) {
		t.Errorf("catalog has %d entries, want %d", len(have), len(want))
	}
}

func TestProbeFlags(t *testing.T) {
	tests := []struct{ resolver, want string }{
		{Glibc, "--backend=glibc"},
		{GRPCNative, "--backend=grpc-native"},
		{JVM, "--backend=jvm --jvm-cache=defaults"},
		{JVMNoCache, "--backend=jvm --jvm-cache=nocache"},
	}
	for _, tt := range tests {
		if got := strings.Join(ProbeFlags(tt.resolver), " "); got != tt.want {
			t.Errorf("ProbeFlags(%s) = %q, want %q", tt.resolver, got, tt.want)
		}
	}
}

func TestUnavailable(t *testing.T) {
	if got, want := Unavailable(Dotnet), "neither Debian nor the registries these machines reach serve a .NET runtime"; got != want {
		t.Errorf("Unavailable(dotnet) = %q, want %q", got, want)
	}
	for _, r := range Resolvers {
		if r != Dotnet && Unavailable(r) != "" {
			t.Errorf("Unavailable(%s) = %q, want it available", r, Unavailable(r))
		}
	}
}
