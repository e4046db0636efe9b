// Package upstream is the lab's outside world: a small authoritative DNS
// server (miekg/dns) for a synthetic zone, so nothing the lab resolves ever
// leaves the machine. CoreDNS forwards to it in a cluster; tests and the
// network-namespace lab run it in-process.
//
// Every name in the zone (default lab.example.) exists, wildcard style, with
// one A and one AAAA record; every other name is NXDOMAIN, including
// cluster.local and any search-list suffix, so resolvers walk their search
// list to the end as they would against a real recursive server. (A server
// that answers REFUSED instead stops c-ares's walk: FACTS.md.)
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Config says what the server answers and how slowly.
type Config struct {
	Zone    string        // authoritative zone, e.g. "lab.example."
	A       net.IP        // the A record of every name in the zone
	AAAA    net.IP        // the AAAA record of every name in the zone
	TTL     uint32        // TTL of answers and of the SOA (negative caching)
	Latency time.Duration // added before every answer
}

// Defaults returns the zone lab.example. answering documentation-range
// addresses that route nowhere.
func Defaults() Config {
	return Config{
		Zone: "lab.example.",
		A:    net.IPv4(192, 0, 2, 10),
		AAAA: net.ParseIP("2001:db8::10"),
		TTL:  5,
	}
}

// Handler answers queries by Config. It counts what it answered, for tests
// and for the lab's checks that both DNS backends served traffic.
type Handler struct {
	cfg     Config
	queries atomic.Uint64
}

// NewHandler validates cfg and returns its handler.
func NewHandler(cfg Config) (*Handler, error) {
	if _, ok := dns.IsDomainName(cfg.Zone); !ok || cfg.Zone == "" {
		return nil, fmt.Errorf("zone %q: not a domain name", cfg.Zone)
	}
	if dns.CanonicalName(cfg.Zone) == "." {
		return nil, fmt.Errorf("zone %q: the root cannot be the lab's zone (nothing would be NXDOMAIN)", cfg.Zone)
	}
	cfg.Zone = dns.CanonicalName(cfg.Zone)
	if cfg.A == nil || cfg.A.To4() == nil {
		return nil, fmt.Errorf("A record %v: not an IPv4 address", cfg.A)
	}
	if cfg.AAAA == nil || cfg.AAAA.To4() != nil {
		return nil, fmt.Errorf("AAAA record %v: not an IPv6 address", cfg.AAAA)
	}
	if cfg.Latency < 0 {
		return nil, fmt.Errorf("latency %v: must be ≥ 0", cfg.Latency)
	}
	return &Handler{cfg: cfg}, nil
}

// Queries is how many queries the handler has answered.
func (h *Handler) Queries() uint64 { return h.queries.Load() }

// ServeDNS implements dns.Handler.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if h.cfg.Latency > 0 {
		time.Sleep(h.cfg.Latency)
	}
	m := h.answer(r)
	h.queries.Add(1)
	_ = w.WriteMsg(m) // a client that went away is not the server's problem
}

func (h *Handler) answer(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return m
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	if !dns.IsSubDomain(h.cfg.Zone, name) {
		m.Rcode = dns.RcodeNameError
		return m
	}
	m.Authoritative = true
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: h.cfg.TTL}
	switch {
	case q.Qtype == dns.TypeA:
		hdr.Rrtype = dns.TypeA
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: h.cfg.A})
	case q.Qtype == dns.TypeAAAA:
		hdr.Rrtype = dns.TypeAAAA
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: h.cfg.AAAA})
	case q.Qtype == dns.TypeSOA && name == h.cfg.Zone:
		m.Answer = append(m.Answer, h.soa())
	default: // no data: the name exists, the type does not
		m.Ns = append(m.Ns, h.soa())
	}
	return m
}

func (h *Handler) soa() dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: h.cfg.Zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: h.cfg.TTL},
		Ns:      "ns." + h.cfg.Zone,
		Mbox:    "hostmaster." + h.cfg.Zone,
		Serial:  1,
		Refresh: 3600, Retry: 600, Expire: 86400,
		Minttl: h.cfg.TTL,
	}
}

// Server serves one Handler on a UDP socket and a TCP listener.
type Server struct {
	Handler *Handler
	udp     *dns.Server
	tcp     *dns.Server
	done    chan error
	once    sync.Once
}

// Serve starts serving h on pc (UDP) and l (TCP), which the caller opened
// (so a test can open them on 127.0.0.1:0, or inside a network namespace).
// It returns once both are serving. Either may be nil, not both.
func Serve(h *Handler, pc net.PacketConn, l net.Listener) (*Server, error) {
	if pc == nil && l == nil {
		return nil, errors.New("serve DNS: no socket to serve on")
	}
	s := &Server{Handler: h, done: make(chan error, 2)}
	var started sync.WaitGroup
	start := func(srv *dns.Server) {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() { s.done <- srv.ActivateAndServe() }()
	}
	if pc != nil {
		s.udp = &dns.Server{PacketConn: pc, Handler: h}
		start(s.udp)
	}
	if l != nil {
		s.tcp = &dns.Server{Listener: l, Handler: h}
		start(s.tcp)
	}
	started.Wait()
	return s, nil
}

// Shutdown stops both servers and closes their sockets.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	s.once.Do(func() {
		for _, srv := range []*dns.Server{s.udp, s.tcp} {
			if srv != nil {
				if err := srv.ShutdownContext(ctx); err != nil {
					errs = append(errs, err)
				}
			}
		}
	})
	return errors.Join(errs...)
}

// ListenAndServe serves cfg on addr (UDP and TCP) until ctx is cancelled.
func ListenAndServe(ctx context.Context, cfg Config, addr string) error {
	h, err := NewHandler(cfg)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("listen udp %s: %w", addr, err)
	}
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("listen tcp %s: %w", addr, err)
	}
	s, err := Serve(h, pc, l)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-s.done:
		_ = s.Shutdown(context.Background())
		return fmt.Errorf("serve DNS on %s: %w", addr, err)
	}
	shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.Shutdown(shut)
}
