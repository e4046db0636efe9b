package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"labrun.dev/labrun/pkg/sample"
)

// rawResolver speaks DNS itself (miekg/dns) with an explicit socket policy,
// so an experiment can choose the 5-tuple instead of inheriting a library's.
// It reads servers, search list, ndots, timeout and attempts from resolv.conf
// and walks the search list like glibc: A and AAAA for each candidate name,
// the next candidate on NXDOMAIN or no data, stop at an answer or a timeout.
type rawResolver struct {
	conf     *dns.ClientConfig
	policy   string
	timeout  time.Duration
	attempts int
}

var errNoAnswer = errors.New("no answer")

func newRawResolver(cfg Config) (*rawResolver, error) {
	conf, err := readResolvConf(cfg.ResolvConf)
	if err != nil {
		return nil, err
	}
	if len(conf.Servers) == 0 {
		return nil, fmt.Errorf("resolv.conf %s: no nameserver", cfg.ResolvConf)
	}
	r := &rawResolver{conf: conf, policy: cfg.RawPolicy, timeout: time.Duration(conf.Timeout) * time.Second, attempts: conf.Attempts}
	if r.timeout <= 0 {
		r.timeout = 5 * time.Second
	}
	if r.attempts <= 0 {
		r.attempts = 2
	}
	return r, nil
}

func (r *rawResolver) Close() error { return nil }

func (r *rawResolver) Lookup(ctx context.Context, name string) Outcome {
	var failed []string // error rcodes seen on the way, reported if nothing answers
	for _, cand := range r.conf.NameList(name) {
		resps, err := r.pair(ctx, cand)
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, errNoAnswer) {
			return Outcome{Result: sample.Timeout, Err: fmt.Sprintf("%s: %v", cand, err)}
		}
		if err != nil {
			return Outcome{Result: sample.Error, Err: fmt.Sprintf("%s: %v", cand, err)}
		}
		answers := 0
		for _, m := range resps {
			for _, rr := range m.Answer {
				if t := rr.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
					answers++
				}
			}
			if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
				failed = append(failed, fmt.Sprintf("%s %s: %s", cand, dns.TypeToString[m.Question[0].Qtype], dns.RcodeToString[m.Rcode]))
			}
		}
		if answers > 0 {
			return Outcome{Result: sample.OK, Answers: answers}
		}
	}
	if len(failed) > 0 {
		return Outcome{Result: sample.Error, Err: strings.Join(failed, "; ")}
	}
	return Outcome{Result: sample.NXDomain, Err: "NXDOMAIN or no data for every name tried"}
}

// pair asks A and AAAA for one candidate name, server after server, with the
// configured socket policy; it returns both answers.
func (r *rawResolver) pair(ctx context.Context, name string) ([]*dns.Msg, error) {
	var lastErr error
	for _, s := range r.conf.Servers {
		server := net.JoinHostPort(s, r.conf.Port)
		qa, qaaaa := query(name, dns.TypeA), query(name, dns.TypeAAAA)
		var resps []*dns.Msg
		var err error
		if r.policy == SameSocket {
			resps, err = r.exchange(ctx, server, qa, qaaaa)
		} else {
			resps, err = r.exchangeApart(ctx, server, qa, qaaaa)
		}
		if err == nil {
			return resps, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// exchangeApart sends each query from its own socket, in parallel.
func (r *rawResolver) exchangeApart(ctx context.Context, server string, qs ...*dns.Msg) ([]*dns.Msg, error) {
	resps := make([]*dns.Msg, len(qs))
	errs := make([]error, len(qs))
	var wg sync.WaitGroup
	for i, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := r.exchange(ctx, server, q)
			if err == nil {
				resps[i] = got[0]
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return resps, errors.Join(errs...)
}

// exchange sends every query back to back from one new UDP socket and waits
// for all answers; on timeout it re-sends the unanswered ones, same ID, same
// socket, as glibc does.
func (r *rawResolver) exchange(ctx context.Context, server string, qs ...*dns.Msg) ([]*dns.Msg, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", server, err)
	}
	conn := &dns.Conn{Conn: c}
	defer conn.Close()
	got := make([]*dns.Msg, len(qs))
	pending := len(qs)
	for try := 0; try < r.attempts && pending > 0; try++ {
		for i, q := range qs {
			if got[i] == nil {
				if err := conn.WriteMsg(q); err != nil {
					return nil, fmt.Errorf("send to %s: %w", server, err)
				}
			}
		}
		deadline := time.Now().Add(r.timeout)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		if err := conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		for pending > 0 {
			m, err := conn.ReadMsg()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) {
					return nil, fmt.Errorf("receive from %s: %w", server, err)
				}
				continue // a datagram that does not parse: ignore it, as resolvers do
			}
			for i, q := range qs {
				if got[i] == nil && m.Id == q.Id && len(m.Question) == 1 && m.Question[0].Qtype == q.Question[0].Qtype && strings.EqualFold(m.Question[0].Name, q.Question[0].Name) {
					got[i] = m
					pending--
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	if pending > 0 {
		return nil, fmt.Errorf("%s: %w after %d tries of %v", server, errNoAnswer, r.attempts, r.timeout)
	}
	return got, nil
}
