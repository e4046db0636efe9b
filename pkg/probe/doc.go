// Package probe is the in-pod DNS probe: it resolves a list of names in a
// loop through one real resolver library and writes one sample.Sample per
// lookup (JSON Lines, flushed line by line) and a final sample.Summary.
//
// # Back ends
//
//   - glibc: getaddrinfo(AF_UNSPEC, no AI_ADDRCONFIG) through cgo, in the
//     binary dynamically linked against glibc. glibc reads /etc/resolv.conf and
//     applies ndots, timeout, attempts, single-request, single-request-reopen
//     and use-vc itself.
//   - musl: the same C call in the binary built with musl-gcc and linked
//     statically; musl reads nameserver, search, ndots, timeout and attempts
//     and ignores the rest.
//   - go: Go's pure resolver (net.Resolver{PreferGo: true}); it reads
//     /etc/resolv.conf and sends A and AAAA each from its own socket.
//   - raw: miekg/dns with an explicit socket policy (--raw-socket
//     same-socket: A and AAAA back to back from one UDP socket, as glibc
//     does; socket-per-query: one socket each); servers, search list, ndots,
//     timeout and attempts from resolv.conf; re-sends with the same ID.
//   - grpc-ares, grpc-native: real gRPC C-core (Debian's python3-grpcio 1.51)
//     in Python worker processes (one per concurrent lookup) that the probe
//     drives over stdin/stdout. Each lookup opens a new channel to
//     dns:///NAME:PORT (so it resolves afresh) and makes one unary call with
//     the deadline (3 s by default) to the lab's gRPC server; the worker sets
//     GRPC_DNS_RESOLVER=ares or native and times the lookup itself.
//     DEADLINE_EXCEEDED is a timeout; UNAVAILABLE "DNS resolution failed" is
//     nxdomain when the name does not exist. Answers is always 0 (gRPC does
//     not say how many addresses it got). The lab's gRPC server is
//     `probe --serve-grpc [::]:50051` (same Python, same image); the names
//     must resolve to the address it listens on.
//
// Which libc the binary has is decided by the C compiler, not a flag: glibc's
// headers define __GLIBC__, musl's do not (Libc). Asking the glibc binary for
// the musl back end, or the reverse, is a usage error.
//
// # Results
//
// getaddrinfo's EAI_NONAME and EAI_NODATA (and success with no address) are
// nxdomain; EAI_AGAIN is timeout when the call took at least 1 s (neither
// libc waits less than a second per try, so a quicker EAI_AGAIN was an
// answer: SERVFAIL or REFUSED) and error otherwise; everything else
// (EAI_FAIL, EAI_SYSTEM with its errno, ...) is error, with the libc's text
// and the EAI_ name in ErrorText.
//
// # Building the binaries (run from the module root)
//
// glibc (dynamically linked; needs at run time glibc ≥ the build host's, i.e.
// a Debian bookworm base, and /etc/resolv.conf, /etc/nsswitch.conf, /etc/hosts
// as the pod has them):
//
//	CGO_ENABLED=1 go build -trimpath -o probe-glibc ./cmd/probe
//
// musl (static; needs only /etc/resolv.conf and /etc/hosts at run time, so it
// can go on an empty base; Debian package musl-tools on the build host):
//
//	CGO_ENABLED=1 CC=musl-gcc go build -trimpath \
//	    -ldflags '-linkmode external -extldflags -static' -o probe-musl ./cmd/probe
//
// Both binaries also carry the go and raw back ends. The gRPC back ends need,
// in the image of the glibc binary, Debian's python3 and python3-grpcio
// (the script is embedded in the binary; --python names the interpreter).
// A binary built with CGO_ENABLED=0 has go, raw and the gRPC back ends only.
//
// # Input
//
// Flags override PROBE_* environment variables (see Config and FromEnv);
// POD_NAME and NODE_NAME label the samples. Names are [KIND:]NAME, KIND one of
// short, fqdn (a trailing dot is added) or external. Any bad input is exit
// code 2 before anything is written.
package probe
