package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"labrun.dev/labrun/pkg/sample"
)

// ErrUnavailable says a back end cannot run in this binary (for example glibc
// in the musl build, or the libc back ends in a build without cgo).
var ErrUnavailable = errors.New("back end not available in this binary")

// New returns the back end cfg.Backend names. cfg must have been validated.
func New(cfg Config) (Resolver, error) {
	switch cfg.Backend {
	case Glibc, Musl:
		if Libc() != cfg.Backend {
			have := Libc()
			if have == "" {
				have = "none (built without cgo)"
			}
			return nil, fmt.Errorf("back end %s: %w: this probe's libc is %s; use the %s build", cfg.Backend, ErrUnavailable, have, cfg.Backend)
		}
		return libcResolver{keepState: cfg.KeepResolverState}, nil
	case Go:
		return goResolver{r: &net.Resolver{PreferGo: true}}, nil
	case Raw:
		return newRawResolver(cfg)
	case GRPCAres, GRPCNative:
		return newGRPCResolver(cfg)
	case JVM:
		return newJVMResolver(cfg)
	}
	return nil, fmt.Errorf("unknown back end %q", cfg.Backend)
}

// goResolver is Go's own resolver: it reads /etc/resolv.conf itself and sends
// A and AAAA in parallel, each from its own socket.
type goResolver struct{ r *net.Resolver }

func (g goResolver) Lookup(ctx context.Context, name string) Outcome {
	addrs, err := g.r.LookupIPAddr(ctx, name)
	if err == nil {
		return Outcome{Result: sample.OK, Answers: len(addrs)}
	}
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		return Outcome{Result: sample.NXDomain, Err: err.Error()}
	case errors.As(err, &de) && de.IsTimeout:
		return Outcome{Result: sample.Timeout, Err: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return Outcome{Result: sample.Timeout, Err: err.Error()}
	}
	return Outcome{Result: sample.Error, Err: err.Error()}
}

func (goResolver) Close() error { return nil }

// gaiTimeoutFloor separates EAI_AGAIN that came from timeouts from EAI_AGAIN
// that came from an answer (SERVFAIL, REFUSED): neither glibc nor musl waits
// less than one second per try, so a quicker EAI_AGAIN was answered.
const gaiTimeoutFloor = time.Second

// gaiOutcome maps getaddrinfo's return code to a result. Codes are passed in
// so the mapping is tested without a libc.
func gaiOutcome(rc int, codes gaiCodes, text string, took time.Duration, answers int) Outcome {
	switch rc {
	case 0:
		if answers == 0 {
			return Outcome{Result: sample.NXDomain, Err: "no addresses"}
		}
		return Outcome{Result: sample.OK, Answers: answers}
	case codes.NoName, codes.NoData:
		return Outcome{Result: sample.NXDomain, Err: text}
	case codes.Again:
		if took >= gaiTimeoutFloor {
			return Outcome{Result: sample.Timeout, Err: text}
		}
		return Outcome{Result: sample.Error, Err: text + " (answered quickly: SERVFAIL or REFUSED, not a timeout)"}
	}
	return Outcome{Result: sample.Error, Err: text}
}

// gaiCodes are the libc's EAI_* values that gaiOutcome tells apart.
type gaiCodes struct{ NoName, NoData, Again int }
