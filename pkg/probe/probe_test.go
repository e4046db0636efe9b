package probe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"labrun.dev/labrun/pkg/sample"
	"labrun.dev/labrun/pkg/upstream"
)

func TestParseNames(t *testing.T) {
	tests := []struct {
		in      string
		want    []Name
		wantErr string
	}{
		{in: "kubernetes.default", want: []Name{{"kubernetes.default", sample.Short}}},
		{in: "api.lab.example.", want: []Name{{"api.lab.example.", sample.FQDN}}},
		{in: "fqdn:api.lab.example", want: []Name{{"api.lab.example.", sample.FQDN}}},
		{in: " external:api.lab.example , short:kubernetes.default,", want: []Name{
			{"api.lab.example", sample.External}, {"kubernetes.default", sample.Short}}},
		{in: "external:api.lab.example.", want: []Name{{"api.lab.example.", sample.External}}},
		{in: "short:api.lab.example.", wantErr: "kind short but the name ends with a dot"},
		{in: "weird:api", wantErr: `unknown kind "weird"`},
		{in: "a..b", wantErr: "not a valid domain name"},
		{in: "bad name", wantErr: "not a valid domain name"},
		{in: "short:x:y", wantErr: "not a valid domain name"},
		{in: ".", wantErr: "not a valid domain name"},
		{in: " , ", wantErr: "no names"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseNames(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func writeResolvConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromEnvAndValidate(t *testing.T) {
	rc := writeResolvConf(t, "nameserver 127.0.0.1\n")
	env := map[string]string{
		EnvBackend: "raw", EnvNames: "external:api.lab.example", EnvRate: "25", EnvConcurrency: "3",
		EnvDuration: "2s", EnvCount: "7", EnvPod: "p-1", EnvNode: "n-1", EnvRawPolicy: SocketPerQuery,
	}
	c := Defaults()
	c.ResolvConf = rc
	if err := FromEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Backend != Raw || c.Rate != 25 || c.Concurrency != 3 || c.Duration != 2*time.Second || c.Count != 7 ||
		c.Pod != "p-1" || c.Node != "n-1" || c.RawPolicy != SocketPerQuery || len(c.Names) != 1 {
		t.Fatalf("FromEnv gave %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	bad := Defaults()
	err := FromEnv(&bad, func(k string) string {
		return map[string]string{EnvRate: "fast", EnvDuration: "10", EnvNames: "a..b"}[k]
	})
	for _, want := range []string{EnvRate, EnvDuration, EnvNames} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FromEnv error %v does not name %s", err, want)
		}
	}

	invalid := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"unknown back end", func(c *Config) { c.Backend = "bind" }, "unknown back end"},
		{"no names", func(c *Config) { c.Names = nil }, "no names"},
		{"no end", func(c *Config) { c.Duration, c.Count = 0, 0 }, "never end"},
		{"zero concurrency", func(c *Config) { c.Concurrency = 0 }, "concurrency"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "rate"},
		{"raw policy", func(c *Config) { c.RawPolicy = "two" }, "socket policy"},
		{"missing resolv.conf", func(c *Config) { c.ResolvConf = filepath.Join(t.TempDir(), "none") }, "resolv.conf"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			c.ResolvConf, c.Names = rc, []Name{{"a.b", sample.Short}}
			tt.mutate(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOffset(t *testing.T) {
	tests := []struct {
		i    uint64
		rate float64
		want time.Duration
	}{
		{0, 10, 0},
		{1, 10, 100 * time.Millisecond},
		{25, 50, 500 * time.Millisecond},
		{3, 0.5, 6 * time.Second},
		{1000, 0, 0}, // unpaced
	}
	for _, tt := range tests {
		if got := Offset(tt.i, tt.rate); got != tt.want {
			t.Errorf("Offset(%d, %v) = %v, want %v", tt.i, tt.rate, got, tt.want)
		}
	}
}

func TestGaiOutcome(t *testing.T) {
	codes := gaiCodes{NoName: -2, NoData: -5, Again: -3}
	tests := []struct {
		name    string
		rc      int
		took    time.Duration
		answers int
		want    sample.Result
	}{
		{"addresses", 0, time.Millisecond, 2, sample.OK},
		{"EAI_NONAME", -2, time.Millisecond, 0, sample.NXDomain},
		{"EAI_NODATA", -5, time.Millisecond, 0, sample.NXDomain},
		{"EAI_AGAIN after timeouts", -3, 10 * time.Second, 0, sample.Timeout},
		{"EAI_AGAIN answered (SERVFAIL)", -3, 3 * time.Millisecond, 0, sample.Error},
		{"EAI_FAIL", -4, time.Millisecond, 0, sample.Error},
		{"EAI_SYSTEM", -11, time.Millisecond, 0, sample.Error},
	}
	for _, tt := range tests {
		got := gaiOutcome(tt.rc, codes, "text", tt.took, tt.answers)
		if got.Result != tt.want {
			t.Errorf("%s: result %s, want %s", tt.name, got.Result, tt.want)
		}
		if got.Result != sample.OK && got.Err == "" {
			t.Errorf("%s: no error text", tt.name)
		}
	}
}

// scripted answers by name, and records what it was asked.
type scripted struct {
	mu    sync.Mutex
	asked []string
	by    map[string]sample.Result
}

func (s *scripted) Lookup(_ context.Context, name string) Outcome {
	s.mu.Lock()
	s.asked = append(s.asked, name)
	s.mu.Unlock()
	r := s.by[name]
	if r == sample.OK {
		return Outcome{Result: r, Answers: 2}
	}
	return Outcome{Result: r, Err: "scripted"}
}
func (*scripted) Close() error { return nil }

// TestRunRoundTrip runs the load loop with a scripted back end, decodes what it
// wrote with pkg/sample's Decoder, and checks every line against the summary.
func TestRunRoundTrip(t *testing.T) {
	names := []Name{{"a.lab.example", sample.External}, {"b.", sample.FQDN}, {"c", sample.Short}}
	r := &scripted{by: map[string]sample.Result{"a.lab.example": sample.OK, "b.": sample.NXDomain, "c": sample.Timeout}}
	cfg := Defaults()
	cfg.Backend, cfg.Names, cfg.Rate, cfg.Concurrency, cfg.Count, cfg.Duration = Go, names, 0, 4, 30, 0
	cfg.Pod, cfg.Node, cfg.Cell, cfg.Mitigation = "pod-a", "node-1", "cell-1", "none"
	var out bytes.Buffer
	sum, err := Run(context.Background(), cfg, r, sample.NewEncoder(&out))
	if err != nil {
		t.Fatal(err)
	}
	dec := sample.NewDecoder(&out)
	var samples []*sample.Sample
	var last *sample.Summary
	for {
		s, su, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if last != nil {
			t.Fatal("a record after the summary")
		}
		if s != nil {
			samples = append(samples, s)
		}
		last = su
	}
	if last == nil || !last.Complete || last.Lookups != 30 || len(samples) != 30 {
		t.Fatalf("summary %+v after %d samples, want 30 lookups, complete", last, len(samples))
	}
	if !reflect.DeepEqual(*last, sum) {
		t.Errorf("written summary %+v differs from returned %+v", *last, sum)
	}
	want := map[sample.Result]uint64{sample.OK: 10, sample.NXDomain: 10, sample.Timeout: 10, sample.Error: 0}
	if !reflect.DeepEqual(last.ByResult, want) {
		t.Errorf("by result %v, want %v", last.ByResult, want)
	}
	for i, s := range samples {
		if s.Seq != uint64(i) {
			t.Fatalf("line %d has seq %d", i, s.Seq)
		}
		if s.Resolver != Go || s.Pod != "pod-a" || s.Node != "node-1" || s.Cell != "cell-1" || s.Mitigation != "none" || s.StartNS == 0 {
			t.Fatalf("sample %+v lacks its labels", s)
		}
		if r.by[s.Name] != s.Result {
			t.Fatalf("sample %+v: result does not match its name", s)
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	cfg := Defaults()
	cfg.Backend, cfg.Names, cfg.Rate, cfg.Duration = Go, []Name{{"x", sample.Short}}, 1000, time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	sum, err := Run(ctx, cfg, &scripted{by: map[string]sample.Result{"x": sample.OK}}, sample.NewEncoder(&out))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Complete || sum.Lookups == 0 || sum.Lookups > 200 {
		t.Fatalf("summary %+v, want incomplete with some (≤ 200) lookups", sum)
	}
	if n := strings.Count(out.String(), "\n"); uint64(n) != sum.Lookups+1 {
		t.Fatalf("%d lines for %d lookups + summary", n, sum.Lookups)
	}
}

// recorder wraps the lab upstream and notes each question, in arrival order.
type recorder struct {
	mu   sync.Mutex
	seen []string
	next dns.Handler
}

func (r *recorder) ServeDNS(w dns.ResponseWriter, m *dns.Msg) {
	r.mu.Lock()
	r.seen = append(r.seen, m.Question[0].Name+" "+dns.TypeToString[m.Question[0].Qtype]+" "+w.RemoteAddr().String())
	r.mu.Unlock()
	r.next.ServeDNS(w, m)
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, s := range r.seen {
		n := strings.Fields(s)[0]
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func (r *recorder) ports() map[string]int { // "name type" -> distinct source ports
	r.mu.Lock()
	defer r.mu.Unlock()
	ports := map[string]map[string]bool{}
	for _, s := range r.seen {
		f := strings.Fields(s)
		_, port, _ := net.SplitHostPort(f[2])
		if ports[f[0]] == nil {
			ports[f[0]] = map[string]bool{}
		}
		ports[f[0]][port] = true
	}
	out := map[string]int{}
	for n, p := range ports {
		out[n] = len(p)
	}
	return out
}

// TestRawNameListAndPolicy runs the raw back end against the lab upstream on
// loopback: the search list is walked in glibc's order under ndots, and the
// socket policy decides whether A and AAAA share a source port.
func TestRawNameListAndPolicy(t *testing.T) {
	h, err := upstream.NewHandler(upstream.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{next: h}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: rec}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())

	search := "search default.svc.cluster.local svc.cluster.local cluster.local\n"
	tests := []struct {
		name, options, lookup string
		policy                string
		want                  sample.Result
		tried                 []string
		portsPerName          int
	}{
		{"ndots5 walks the list", "options ndots:5", "api.lab.example", SameSocket, sample.OK, []string{
			"api.lab.example.default.svc.cluster.local.", "api.lab.example.svc.cluster.local.",
			"api.lab.example.cluster.local.", "api.lab.example."}, 1},
		{"ndots1 tries the name first", "options ndots:1", "api.lab.example", SocketPerQuery, sample.OK,
			[]string{"api.lab.example."}, 2},
		{"fqdn is never expanded", "options ndots:5", "api.lab.example.", SameSocket, sample.OK,
			[]string{"api.lab.example."}, 1},
		{"nxdomain after the whole list", "options ndots:5", "nope.invalid", SameSocket, sample.NXDomain, []string{
			"nope.invalid.default.svc.cluster.local.", "nope.invalid.svc.cluster.local.",
			"nope.invalid.cluster.local.", "nope.invalid."}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.mu.Lock()
			rec.seen = nil
			rec.mu.Unlock()
			cfg := Defaults()
			cfg.ResolvConf = writeResolvConf(t, "nameserver 127.0.0.1\n"+search+tt.options+" timeout:1 attempts:1\n")
			cfg.Backend, cfg.RawPolicy = Raw, tt.policy
			r, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r.(*rawResolver).conf.Port = port
			out := r.Lookup(context.Background(), tt.lookup)
			if out.Result != tt.want {
				t.Fatalf("result %s (%s), want %s", out.Result, out.Err, tt.want)
			}
			if tt.want == sample.OK && out.Answers != 2 {
				t.Errorf("answers %d, want 2 (A and AAAA)", out.Answers)
			}
			if got := rec.names(); !reflect.DeepEqual(got, tt.tried) {
				t.Errorf("names tried %v, want %v", got, tt.tried)
			}
			for n, p := range rec.ports() {
				if p != tt.portsPerName {
					t.Errorf("%s: A and AAAA from %d source ports, want %d", n, p, tt.portsPerName)
				}
			}
		})
	}
}

func TestRawTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	cfg := Defaults()
	cfg.Backend = Raw
	cfg.ResolvConf = writeResolvConf(t, "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n")
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.(*rawResolver).conf.Port = port
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	out := r.Lookup(ctx, "x.lab.example.")
	if out.Result != sample.Timeout {
		t.Fatalf("result %s (%s), want timeout", out.Result, out.Err)
	}
}

// stampedWriter notes when each write happened.
type stampedWriter struct {
	mu     sync.Mutex
	writes []time.Time
	buf    bytes.Buffer
}

func (w *stampedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, time.Now())
	return w.buf.Write(p)
}

// TestRunFlushesWhileWaiting: a sample reaches the output within about
// flushEvery even when the next lookup is far off (a collector tails it).
func TestRunFlushesWhileWaiting(t *testing.T) {
	cfg := Defaults()
	cfg.Backend, cfg.Names, cfg.Rate, cfg.Count, cfg.Duration = Go, []Name{{"x", sample.Short}}, 2, 2, 0 // at 0 s and 0.5 s
	w := &stampedWriter{}
	start := time.Now()
	if _, err := Run(context.Background(), cfg, &scripted{by: map[string]sample.Result{"x": sample.OK}}, sample.NewEncoder(w)); err != nil {
		t.Fatal(err)
	}
	if len(w.writes) < 2 {
		t.Fatalf("%d writes: want the first sample written before the second lookup", len(w.writes))
	}
	if first := w.writes[0].Sub(start); first > 400*time.Millisecond {
		t.Fatalf("first sample written after %v: want within about %v", first, flushEvery)
	}
}

// TestGRPCWorkerRestarts drives the gRPC back end with a stand-in for
// python3 that answers one lookup and exits: that lookup is ok, the next is
// an error naming the dead worker, and the one after runs on a new worker.
func TestGRPCWorkerRestarts(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "python3")
	script := "#!/bin/sh\necho ready\nread name\necho '{\"result\":\"ok\",\"error\":\"\",\"took_us\":5}'\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.Backend, cfg.Python = GRPCAres, fake
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	want := []sample.Result{sample.OK, sample.Error, sample.OK}
	for i, w := range want {
		out := r.Lookup(ctx, "api.lab.example")
		if out.Result != w {
			t.Fatalf("lookup %d: %+v, want %s", i, out, w)
		}
		if out.Result == sample.OK && out.Took != 5*time.Microsecond {
			t.Errorf("lookup %d took %v: want the worker's own 5 µs", i, out.Took)
		}
	}

	cfg.Python = filepath.Join(t.TempDir(), "no-python")
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "no-python") {
		t.Fatalf("New with a missing python: %v", err)
	}
}
