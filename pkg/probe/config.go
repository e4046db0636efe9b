package probe

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"labrun.dev/labrun/pkg/sample"
)

// Back end names, as they appear in Sample.Resolver.
const (
	Glibc      = "glibc"
	Musl       = "musl"
	Go         = "go"
	Raw        = "raw"
	GRPCAres   = "grpc-ares"
	GRPCNative = "grpc-native"
	JVM        = "jvm" // InetAddress.getAllByName in a Java 17 worker (see jvm.go)
)

// Backends lists every back end in the order the docs use.
var Backends = []string{Glibc, Musl, Go, Raw, GRPCAres, GRPCNative, JVM}

// Socket policies of the raw back end: the knob that decides the 5-tuple.
const (
	SameSocket     = "same-socket"      // A and AAAA in parallel from one socket (glibc's default)
	SocketPerQuery = "socket-per-query" // one socket per query (what single-request-reopen achieves)
)

// Name is one name the probe looks up, as written (no expansion: the
// resolver under test does that).
type Name struct {
	Name string
	Kind sample.NameKind
}

// Config is everything a probe run needs. Build it with FromEnv and flags,
// then call Validate.
type Config struct {
	Backend     string
	Names       []Name
	Rate        float64       // lookups per second over all workers; 0: as fast as the workers go
	Concurrency int           // lookups in flight at once
	Duration    time.Duration // stop issuing lookups after this long; 0: no time limit
	Count       uint64        // stop after this many lookups; 0: no count limit
	ResolvConf  string        // read by every back end, checked before anything is written

	Pod, Node, Cell, Mitigation string

	RawPolicy string // raw: SameSocket or SocketPerQuery
	// KeepResolverState, for glibc and musl, lets the libc keep its per-thread
	// resolver state between lookups. By default each lookup starts from
	// resolv.conf (res_init), as in a new process: glibc otherwise switches a
	// thread to single-request for good after its first A/AAAA timeout, and a
	// long-running probe would hide the race after one 5 s delay per thread.
	KeepResolverState bool
	GRPCPort          int           // grpc-*: port of the dns:///NAME:PORT target
	GRPCDeadline      time.Duration // grpc-*: the RPC deadline; DEADLINE_EXCEEDED counts as timeout
	Python            string        // grpc-*: the python3 that has grpcio
	Java              string        // jvm: the java launcher (openjdk-17-jre-headless)
	JVMClassPath      string        // jvm: the directory holding LabProbe.class
	JVMCache          string        // jvm: JVMCacheDefaults or JVMCacheOff
}

// Defaults returns a Config with the documented defaults.
func Defaults() Config {
	return Config{
		Backend:      Glibc,
		Concurrency:  1,
		Rate:         10,
		Duration:     10 * time.Second,
		ResolvConf:   "/etc/resolv.conf",
		RawPolicy:    SameSocket,
		GRPCPort:     50051,
		GRPCDeadline: 3 * time.Second,
		Python:       "python3",
		Java:         "java",
		JVMClassPath: "/usr/share/labrun/jvm",
		JVMCache:     JVMCacheDefaults,
	}
}

// Environment variables read by FromEnv; flags override them.
const (
	EnvBackend     = "PROBE_BACKEND"
	EnvNames       = "PROBE_NAMES"
	EnvRate        = "PROBE_RATE"
	EnvConcurrency = "PROBE_CONCURRENCY"
	EnvDuration    = "PROBE_DURATION"
	EnvCount       = "PROBE_COUNT"
	EnvCell        = "PROBE_CELL"
	EnvMitigation  = "PROBE_MITIGATION"
	EnvRawPolicy   = "PROBE_RAW_POLICY"
	EnvKeepState   = "PROBE_KEEP_RESOLVER_STATE"
	EnvGRPCPort    = "PROBE_GRPC_PORT"
	EnvPod         = "POD_NAME"
	EnvNode        = "NODE_NAME"
)

// FromEnv overlays the PROBE_* (and POD_NAME, NODE_NAME) variables found by
// getenv on c. A malformed value is an error naming the variable.
func FromEnv(c *Config, getenv func(string) string) error {
	str := func(key string, dst *string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	str(EnvBackend, &c.Backend)
	str(EnvCell, &c.Cell)
	str(EnvMitigation, &c.Mitigation)
	str(EnvRawPolicy, &c.RawPolicy)
	str(EnvPod, &c.Pod)
	str(EnvNode, &c.Node)
	var errs []error
	if v := getenv(EnvKeepState); v != "" {
		keep, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", EnvKeepState, v))
		}
		c.KeepResolverState = keep
	}
	if v := getenv(EnvNames); v != "" {
		names, err := ParseNames(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvNames, err))
		}
		c.Names = names
	}
	if v := getenv(EnvRate); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a number", EnvRate, v))
		}
		c.Rate = r
	}
	if v := getenv(EnvConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not an integer", EnvConcurrency, v))
		}
		c.Concurrency = n
	}
	if v := getenv(EnvDuration); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a duration (e.g. 60s)", EnvDuration, v))
		}
		c.Duration = d
	}
	if v := getenv(EnvCount); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a count", EnvCount, v))
		}
		c.Count = n
	}
	if v := getenv(EnvGRPCPort); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a port", EnvGRPCPort, v))
		}
		c.GRPCPort = n
	}
	return errors.Join(errs...)
}

// ParseNames parses a comma-separated list of [KIND:]NAME, KIND being short,
// fqdn or external. Without a kind, a name with a trailing dot is fqdn and any
// other is short. Kind fqdn adds the trailing dot if it is missing, so
// "fqdn:api.lab.example" is looked up as "api.lab.example.".
func ParseNames(list string) ([]Name, error) {
	var names []Name
	var errs []error
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		n, err := ParseName(item)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		names = append(names, n)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no names in %q", list)
	}
	return names, nil
}

// ParseName parses one [KIND:]NAME (see ParseNames).
func ParseName(item string) (Name, error) {
	kind, name, found := strings.Cut(item, ":")
	if !found {
		name, kind = kind, ""
	}
	n := Name{Name: name}
	switch sample.NameKind(kind) {
	case "":
		n.Kind = sample.Short
		if dns.IsFqdn(name) {
			n.Kind = sample.FQDN
		}
	case sample.Short, sample.External:
		n.Kind = sample.NameKind(kind)
	case sample.FQDN:
		n.Kind = sample.FQDN
		n.Name = dns.Fqdn(name)
	default:
		return Name{}, fmt.Errorf("name %q: unknown kind %q (want short, fqdn or external)", item, kind)
	}
	if n.Kind == sample.Short && dns.IsFqdn(n.Name) {
		return Name{}, fmt.Errorf("name %q: kind short but the name ends with a dot (absolute names are kind fqdn)", item)
	}
	if _, ok := dns.IsDomainName(n.Name); !ok || n.Name == "." || !hostnameChars(n.Name) {
		return Name{}, fmt.Errorf("name %q: not a valid domain name", item)
	}
	return n, nil
}

// Validate reports every problem of c together. It also checks that the
// resolv.conf is readable and parses, because every back end depends on it.
func (c *Config) Validate() error {
	var errs []error
	if !knownBackend(c.Backend) {
		errs = append(errs, fmt.Errorf("unknown back end %q (want one of %s)", c.Backend, strings.Join(Backends, ", ")))
	}
	if len(c.Names) == 0 {
		errs = append(errs, errors.New("no names to look up (--names or "+EnvNames+")"))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %v: must be ≥ 0 (0: as fast as possible)", c.Rate))
	}
	if c.Concurrency < 1 || c.Concurrency > 4096 {
		errs = append(errs, fmt.Errorf("concurrency %d: must be 1..4096", c.Concurrency))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration %v: must be ≥ 0", c.Duration))
	}
	if c.Duration == 0 && c.Count == 0 {
		errs = append(errs, errors.New("neither a duration nor a count: the probe would never end"))
	}
	if c.JVMCache != JVMCacheDefaults && c.JVMCache != JVMCacheOff {
		errs = append(errs, fmt.Errorf("jvm cache variant %q: want %s or %s", c.JVMCache, JVMCacheDefaults, JVMCacheOff))
	}
	if c.RawPolicy != SameSocket && c.RawPolicy != SocketPerQuery {
		errs = append(errs, fmt.Errorf("raw socket policy %q: want %s or %s", c.RawPolicy, SameSocket, SocketPerQuery))
	}
	if c.GRPCPort < 1 || c.GRPCPort > 65535 {
		errs = append(errs, fmt.Errorf("grpc port %d: must be 1..65535", c.GRPCPort))
	}
	if c.GRPCDeadline <= 0 {
		errs = append(errs, fmt.Errorf("grpc deadline %v: must be > 0", c.GRPCDeadline))
	}
	if _, err := readResolvConf(c.ResolvConf); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// hostnameChars allows what a resolver library accepts in a host name; DNS
// itself allows more, but getaddrinfo would reject or mangle it.
func hostnameChars(name string) bool {
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return !strings.Contains(name, "..") && !strings.HasPrefix(name, ".")
}

func knownBackend(b string) bool {
	for _, k := range Backends {
		if b == k {
			return true
		}
	}
	return false
}

// readResolvConf parses path the way the raw back end needs it; for the
// others it only proves the file is there and readable.
func readResolvConf(path string) (*dns.ClientConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("resolv.conf: %w", err)
	}
	defer f.Close()
	conf, err := dns.ClientConfigFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("resolv.conf %s: %w", path, err)
	}
	return conf, nil
}
