package upstream

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// start serves cfg on 127.0.0.1:0 (UDP and TCP on the same port) and returns
// the address.
func start(t *testing.T, cfg Config) (string, *Handler) {
	t.Helper()
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	s, err := Serve(h, pc, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return pc.LocalAddr().String(), h
}

func TestHandlerAnswers(t *testing.T) {
	addr, h := start(t, Defaults())
	tests := []struct {
		name    string
		qtype   uint16
		net     string
		rcode   int
		aa      bool
		answers int
		ns      int
	}{
		{"api.lab.example.", dns.TypeA, "udp", dns.RcodeSuccess, true, 1, 0},
		{"API.Lab.Example.", dns.TypeAAAA, "udp", dns.RcodeSuccess, true, 1, 0},
		{"deep.sub.api.lab.example.", dns.TypeA, "tcp", dns.RcodeSuccess, true, 1, 0},
		{"lab.example.", dns.TypeSOA, "udp", dns.RcodeSuccess, true, 1, 0},
		{"api.lab.example.", dns.TypeMX, "udp", dns.RcodeSuccess, true, 0, 1}, // no data, SOA for negative caching
		// search-list suffixes and cluster names must be NXDOMAIN so resolvers walk on
		{"api.lab.example.default.svc.cluster.local.", dns.TypeA, "udp", dns.RcodeNameError, false, 0, 0},
		{"kubernetes.default.svc.cluster.local.", dns.TypeAAAA, "udp", dns.RcodeNameError, false, 0, 0},
		{"nope.invalid.", dns.TypeA, "tcp", dns.RcodeNameError, false, 0, 0},
		{"notlab.example.", dns.TypeA, "udp", dns.RcodeNameError, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.net+"/"+tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tt.name, tt.qtype)
			c := &dns.Client{Net: tt.net, Timeout: 2 * time.Second}
			r, _, err := c.Exchange(m, addr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tt.rcode || r.Authoritative != tt.aa || len(r.Answer) != tt.answers || len(r.Ns) != tt.ns {
				t.Fatalf("got rcode %s aa %v answers %d ns %d, want %s %v %d %d:\n%v",
					dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer), len(r.Ns),
					dns.RcodeToString[tt.rcode], tt.aa, tt.answers, tt.ns, r)
			}
			if tt.answers > 0 && r.Answer[0].Header().Name != tt.name {
				t.Errorf("answer owner %q, want the question's %q", r.Answer[0].Header().Name, tt.name)
			}
		})
	}
	if got := h.Queries(); got != uint64(len(tests)) {
		t.Errorf("Queries() = %d, want %d", got, len(tests))
	}
}

func TestHandlerLatency(t *testing.T) {
	cfg := Defaults()
	cfg.Latency = 150 * time.Millisecond
	addr, _ := start(t, cfg)
	m := new(dns.Msg)
	m.SetQuestion("x.lab.example.", dns.TypeA)
	_, rtt, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	if rtt < cfg.Latency {
		t.Fatalf("rtt %v, want ≥ the configured latency %v", rtt, cfg.Latency)
	}
}

func TestNewHandlerRejects(t *testing.T) {
	bad := map[string]func(*Config){
		"root zone":    func(c *Config) { c.Zone = "." },
		"bad zone":     func(c *Config) { c.Zone = "a..b" },
		"A is IPv6":    func(c *Config) { c.A = net.ParseIP("::1") },
		"AAAA is IPv4": func(c *Config) { c.AAAA = net.ParseIP("10.0.0.1") },
		"neg latency":  func(c *Config) { c.Latency = -time.Second },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			cfg := Defaults()
			mutate(&cfg)
			if _, err := NewHandler(cfg); err == nil {
				t.Fatal("NewHandler accepted it")
			}
		})
	}
}
