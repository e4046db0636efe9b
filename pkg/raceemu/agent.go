package raceemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"labrun.dev/labrun/pkg/iptables"
	"labrun.dev/labrun/pkg/raceemu/nflog"
	"labrun.dev/labrun/pkg/raceemu/nfqueue"
	"labrun.dev/labrun/pkg/results/emulator"
)

// RaceMode says what the race emulator does with a clash.
type RaceMode string

const (
	RaceOff       RaceMode = ""
	RaceEmulate   RaceMode = "emulate"    // drop
	RaceCountOnly RaceMode = "count-only" // count what would be dropped, drop nothing
)

// Mode is the agent's mode: a race mode and/or delay-AAAA, written like the
// mitigation sets, e.g. "emulate", "count-only", "delay-aaaa",
// "emulate+delay-aaaa".
type Mode struct {
	Race      RaceMode
	DelayAAAA bool
}

// ParseMode parses a mode string.
func ParseMode(s string) (Mode, error) {
	var m Mode
	for part := range strings.SplitSeq(s, "+") {
		switch p := strings.TrimSpace(part); p {
		case string(RaceEmulate), string(RaceCountOnly):
			if m.Race != RaceOff {
				return Mode{}, fmt.Errorf("mode %q: %s and %s exclude each other", s, m.Race, p)
			}
			m.Race = RaceMode(p)
		case "delay-aaaa":
			m.DelayAAAA = true
		default:
			return Mode{}, fmt.Errorf("mode %q: unknown part %q (want emulate, count-only, delay-aaaa, joined with +)", s, p)
		}
	}
	return m, nil
}

func (m Mode) String() string {
	var parts []string
	if m.Race != RaceOff {
		parts = append(parts, string(m.Race))
	}
	if m.DelayAAAA {
		parts = append(parts, "delay-aaaa")
	}
	return strings.Join(parts, "+")
}

// Config configures the agent.
type Config struct {
	VIPs        []netip.Addr
	Port        uint16
	Window      time.Duration
	Profile     Profile
	Replicas    int
	Mode        Mode
	Delay       time.Duration // how long AAAA queries are held (delay-aaaa)
	Queue       uint16        // race queue; the delay queue is Queue+1
	MetricsAddr string        // "host:port" or "unix:/path"; empty: no endpoint
	Iptables    string        // "auto", "nft", "legacy" or "iptables"

	Rand func() float64 // uniform in [0, 1); nil: math/rand/v2
	Log  *slog.Logger
	Run  iptables.Runner // nil: iptables.ExecRunner
}

func (c *Config) validate() error {
	var errs []error
	if len(c.VIPs) == 0 {
		errs = append(errs, errors.New("no VIP given"))
	}
	if c.Port == 0 {
		errs = append(errs, errors.New("port must not be 0"))
	}
	if c.Mode.Race == RaceOff && !c.Mode.DelayAAAA {
		errs = append(errs, errors.New("mode does nothing"))
	}
	if c.Mode.Race != RaceOff && c.Window <= 0 {
		errs = append(errs, fmt.Errorf("window must be positive, got %v", c.Window))
	}
	if c.Mode.DelayAAAA && c.Delay <= 0 {
		errs = append(errs, fmt.Errorf("delay must be positive, got %v", c.Delay))
	}
	if c.Queue == 65535 && c.Mode.DelayAAAA {
		errs = append(errs, errors.New("queue 65535 leaves no room for the delay queue (queue+1)"))
	}
	switch c.Iptables {
	case "", "auto", "nft", "legacy", "iptables":
	default:
		errs = append(errs, fmt.Errorf("iptables %q: want auto, nft, legacy or iptables", c.Iptables))
	}
	return errors.Join(errs...)
}

// LockName is the abstract unix socket that marks a running agent
// (emulator.LockName: the runner looks for it too).
const LockName = emulator.LockName

// ErrAlreadyRunning is returned when another agent holds the lock.
var ErrAlreadyRunning = errors.New("another labagent is already running in this network namespace")

func lock() (net.Listener, error) {
	l, err := net.Listen("unix", LockName)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%w (abstract unix socket %s is taken)", ErrAlreadyRunning, LockName)
	}
	if err != nil {
		return nil, fmt.Errorf("take lock %s: %w", LockName, err)
	}
	return l, nil
}

// DetectNetem says whether the kernel has the netem qdisc, by adding one to
// the loopback of a throwaway network namespace: "present", "absent", or
// "unknown: why".
func DetectNetem(ctx context.Context) string {
	cmd := exec.CommandContext(ctx, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	switch {
	case err == nil:
		return "present"
	case strings.Contains(string(out), "qdisc kind is unknown"):
		return "absent"
	}
	return "unknown: " + strings.TrimSpace(err.Error()+" "+string(out))
}

// Run runs the agent until ctx is done: it takes the lock, removes stale
// rules, binds the queues, installs its rules, handles packets, and on the way
// out removes its rules and releases held packets. The final counters go to
// out as one JSON line.
func Run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("labagent config: %w", err)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	run := cfg.Run
	if run == nil {
		run = iptables.ExecRunner
	}
	draw := cfg.Rand
	if draw == nil {
		draw = rand.Float64
	}
	var prob float64
	if cfg.Mode.Race != RaceOff {
		if prob, err = DropProbability(cfg.Profile, cfg.Replicas); err != nil {
			return fmt.Errorf("labagent config: %w", err)
		}
	}

	lk, err := lock()
	if err != nil {
		return err
	}
	defer lk.Close()

	be, err := chooseBackend(ctx, cfg.Iptables, run)
	if err != nil {
		return err
	}
	fw := Firewall{Run: run, Backend: be}
	// Rules left by an agent that was killed still queue packets (bypassed,
	// since nobody listens); remove them before binding.
	n, err := fw.RemoveAll(ctx)
	if err != nil {
		return fmt.Errorf("remove stale rules: %w", err)
	}
	if n > 0 {
		log.Info("removed stale rules of a previous agent", "commands", n)
	}

	info := emulator.Info{
		Mode: cfg.Mode.String(), Iptables: be.IPv4, StartedAt: time.Now().UTC(),
		Settings: emulator.Settings{Probability: &prob, Port: cfg.Port, Queue: cfg.Queue},
	}
	for _, v := range cfg.VIPs {
		info.VIPs = append(info.VIPs, v.String())
	}
	var rules = Rules{VIPs: cfg.VIPs, Port: cfg.Port}
	var queues []uint16
	if cfg.Mode.Race != RaceOff {
		q := cfg.Queue
		rules.RaceQueue = &q
		info.Profile, info.WindowUS = string(cfg.Profile), cfg.Window.Microseconds()
		if cfg.Mode.Race == RaceEmulate {
			queues = append(queues, q)
			info.Observer = "nfqueue"
		} else {
			// count-only only looks: a copy through NFLOG, the packet goes on.
			rules.RaceLog = true
			info.Observer = "nflog (passive)"
		}
	}
	if cfg.Mode.DelayAAAA {
		q := cfg.Queue + 1
		rules.DelayQueue = &q
		queues = append(queues, q)
		info.DelayMS = float64(cfg.Delay) / float64(time.Millisecond)
		info.Netem = DetectNetem(ctx)
		// Even with netem the queue is used: one mechanism, tested here, for
		// every node; the report says which kernel had what.
		info.DelayMethod = "nfqueue (user-space hold)"
		log.Info("delay-aaaa", "netem", info.Netem, "method", info.DelayMethod)
	}

	// Packets then carry the kernel's receive time into the queue (see handle).
	if closeTS, err := enableKernelTimestamps(); err != nil {
		log.Warn("kernel timestamps unavailable; timing packets by the agent's clock", "err", err)
	} else {
		defer closeTS()
	}

	a := &agent{
		cfg: cfg, log: log, info: info,
		tracker:  NewTracker(Policy{Window: cfg.Window, Probability: prob}, draw),
		held:     make(map[uint32]*time.Timer),
		released: make(map[heldQuery]time.Time),
	}
	if len(queues) > 0 {
		if a.conn, err = nfqueue.Open(queues, nfqueue.Options{CopyRange: 512, MaxLen: 4096, FailOpen: true, ReadBuffer: 4 << 20}); err != nil {
			return fmt.Errorf("open nfqueue: %w", err)
		}
	}
	if rules.RaceLog {
		if a.logConn, err = nflog.Open(cfg.Queue, 512, 4<<20, pollInterval); err != nil {
			if a.conn != nil {
				a.conn.Close()
			}
			return fmt.Errorf("open nflog: %w", err)
		}
	}
	defer func() {
		// Rules first, so no new packet is queued; then held packets go; only
		// then the sockets (closing the queue's would drop what is still queued).
		if _, rerr := fw.RemoveAll(context.WithoutCancel(ctx)); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove rules on exit: %w", rerr))
		}
		if a.conn != nil {
			a.releaseHeld()
			if cerr := a.conn.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close nfqueue: %w", cerr))
			}
		}
		if a.logConn != nil {
			if cerr := a.logConn.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close nflog: %w", cerr))
			}
		}
		if out != nil {
			_ = json.NewEncoder(out).Encode(a.snapshot())
		}
	}()

	if cfg.MetricsAddr != "" {
		l, err := listenMetrics(cfg.MetricsAddr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: metricsHandler(a.snapshot), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
	}

	if err := fw.Install(ctx, rules); err != nil {
		return err
	}
	log.Info("labagent running", "mode", info.Mode, "profile", info.Profile, "p", prob, "window", cfg.Window,
		"vips", info.VIPs, "port", cfg.Port, "queue", cfg.Queue, "iptables", be.IPv4, "metrics", cfg.MetricsAddr)
	if err := a.loop(ctx); err != nil {
		return err
	}
	log.Info("labagent stopping: removing rules, releasing held packets")
	return nil
}

// enableKernelTimestamps holds a socket with SO_TIMESTAMPNS set, which makes
// the kernel stamp every received packet (as tcpdump does): the agent then
// times a packet by its arrival, not by when it read it, which matters on a
// busy node where the agent can be descheduled between two packets of a pair.
// Locally sent packets (OUTPUT) carry no such stamp.
func enableKernelTimestamps() (func(), error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	return func() { syscall.Close(fd) }, nil
}

func chooseBackend(ctx context.Context, name string, run iptables.Runner) (iptables.Backend, error) {
	switch name {
	case "nft", "legacy":
		return iptables.NewBackend(name), nil
	case "iptables":
		return iptables.NewBackend(""), nil
	}
	b, err := iptables.DetectBackend(ctx, run, exec.LookPath)
	if err != nil {
		return iptables.Backend{}, fmt.Errorf("detect iptables: %w", err)
	}
	return b, nil
}

// pollInterval is how often a reader blocked on its socket wakes up to see
// whether the agent is stopping.
const pollInterval = 100 * time.Millisecond

type agent struct {
	cfg     Config
	conn    *nfqueue.Conn // race queue (emulate) and/or delay queue; nil if neither
	logConn *nflog.Conn   // race observer of count-only; nil otherwise
	log     *slog.Logger
	info    emulator.Info
	tracker *Tracker
	c       Counters

	mu   sync.Mutex
	held map[uint32]*time.Timer // delay-queue packet id → its release timer
	// released remembers when each held query was let go: that, not its
	// original receive stamp, is when it reaches conntrack (see race).
	released map[heldQuery]time.Time
}

// heldQuery identifies a DNS query packet: its 5-tuple and DNS message id.
type heldQuery struct {
	tuple Tuple
	id    uint16
}

func queryOf(p Packet) (heldQuery, bool) {
	if len(p.L4Payload) < 2 {
		return heldQuery{}, false
	}
	return heldQuery{p.Tuple, uint16(p.L4Payload[0])<<8 | uint16(p.L4Payload[1])}, true
}

// releasedAt returns (and forgets) when a delayed query was released.
func (a *agent) releasedAt(p Packet) (time.Time, bool) {
	q, ok := queryOf(p)
	if !ok {
		return time.Time{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.released[q]
	delete(a.released, q)
	return t, ok
}

func (a *agent) snapshot() emulator.Snapshot {
	return emulator.Snapshot{
		Info: a.info, At: time.Now().UTC(),
		Counts: emulator.Counts{
			Seen: a.c.Seen.Load(), Clashes: a.c.Clashes.Load(), Dropped: a.c.Dropped.Load(),
			WouldDrop: a.c.WouldDrop.Load(), Passed: a.c.Passed.Load(),
			DelaySeen: a.c.DelaySeen.Load(), Delayed: a.c.Delayed.Load(),
			ParseErrors: a.c.ParseErrors.Load(), Errors: a.c.Errors.Load(),
			Overruns: a.overruns(), KernelErrors: a.kernelErrors(),
			KernelTime: a.c.KernelTime.Load(),
		},
		GapsUS: a.c.Gaps.snapshot(),
	}
}

func (a *agent) overruns() uint64 {
	var n uint64
	if a.conn != nil {
		n += a.conn.Overruns.Load()
	}
	if a.logConn != nil {
		n += a.logConn.Overruns.Load()
	}
	return n
}

func (a *agent) kernelErrors() uint64 {
	if a.conn == nil {
		return 0
	}
	return a.conn.KernelErrors.Load()
}

// loop runs a reader per socket until ctx is done or one of them fails.
func (a *agent) loop(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	start := func(read func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := read(ctx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	if a.conn != nil {
		start(a.queueLoop)
	}
	if a.logConn != nil {
		start(a.logLoop)
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// queueLoop reads the queues and sends the verdicts of each burst together.
func (a *agent) queueLoop(ctx context.Context) error {
	// A thread of its own, blocked in recvfrom: one wake-up per burst instead
	// of the poller's two; it cut the added p50 by about 25 µs under load
	// (docs/race-emulator.md).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := a.conn.UseBlockingReads(pollInterval); err != nil {
		return err
	}
	var verdicts []nfqueue.VerdictFor
	for {
		err := a.conn.Receive(func(p nfqueue.Packet) {
			if v, ok := a.handleQueued(p); ok {
				verdicts = append(verdicts, v)
			}
		})
		if errors.Is(err, nfqueue.ErrTimeout) {
			err = nil
		}
		if len(verdicts) > 0 {
			if verr := a.conn.SetVerdicts(verdicts); verr != nil {
				a.c.Errors.Add(uint64(len(verdicts)))
				a.log.Error("send verdicts", "err", verr)
			}
			verdicts = verdicts[:0]
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("labagent: %w", err)
		}
	}
}

// logLoop reads the copies NFLOG sends (count-only).
func (a *agent) logLoop(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for {
		err := a.logConn.Receive(func(p nflog.Packet) { a.race(p.Payload, p.Timestamp) })
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, nflog.ErrTimeout) {
			return fmt.Errorf("labagent: %w", err)
		}
	}
}

// handleQueued decides one queued packet; ok is false when the verdict
// comes later (a held AAAA).
func (a *agent) handleQueued(p nfqueue.Packet) (v nfqueue.VerdictFor, ok bool) {
	v = nfqueue.VerdictFor{Queue: p.Queue, ID: p.ID, Verdict: nfqueue.Accept}
	if a.cfg.Mode.DelayAAAA && p.Queue == a.cfg.Queue+1 {
		a.c.DelaySeen.Add(1)
		pkt, err := ParsePacket(p.Payload)
		if err != nil {
			a.c.ParseErrors.Add(1)
			return v, true
		}
		if qt, isQuery := QueryType(pkt.L4Payload); pkt.Tuple.Proto == protoUDP && isQuery && qt == TypeAAAA {
			a.c.Delayed.Add(1)
			q, _ := queryOf(pkt)
			a.hold(p.Queue, p.ID, q)
			return v, false
		}
		return v, true
	}
	if a.race(p.Payload, p.Timestamp) {
		v.Verdict = nfqueue.Drop
	}
	return v, true
}

// race applies the emulated race to a packet that opens a connection and
// says whether to drop it (only ever in mode emulate). ts is the kernel's
// receive stamp, zero if none.
func (a *agent) race(payload []byte, ts time.Time) (drop bool) {
	pkt, err := ParsePacket(payload)
	if err != nil {
		a.c.ParseErrors.Add(1)
		return false
	}
	now := time.Now()
	// The kernel's receive time, when it has one, is unaffected by how late
	// the agent reads; a clock far off (not set on this path) is ignored.
	if !ts.IsZero() && now.Sub(ts) < time.Second && ts.Sub(now) < time.Second {
		now = ts
		a.c.KernelTime.Add(1)
	}
	// A query held by delay-aaaa keeps its receive stamp, but it reaches
	// conntrack only when released, as after a netem delay. Timed by its
	// stamp it would clash with an A that the agent itself was slow to
	// decide (a loaded node): an artefact of the emulator, not the race.
	if at, ok := a.releasedAt(pkt); ok && at.After(now) {
		now = at
	}
	a.c.Seen.Add(1)
	o := a.tracker.Observe(pkt.Tuple, now)
	if o.Repeat {
		a.c.Gaps.add(o.Gap)
	}
	if o.Clash {
		a.c.Clashes.Add(1)
	}
	switch {
	case o.Drop && a.cfg.Mode.Race == RaceEmulate:
		a.c.Dropped.Add(1)
		return true
	case o.Drop:
		a.c.WouldDrop.Add(1)
	}
	a.c.Passed.Add(1)
	return false
}

// hold accepts a packet after the configured delay.
func (a *agent) hold(q uint16, id uint32, dq heldQuery) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held[id] = time.AfterFunc(a.cfg.Delay, func() {
		a.mu.Lock()
		_, mine := a.held[id]
		delete(a.held, id)
		if mine && a.cfg.Mode.Race != RaceOff { // only the race looks it up
			now := time.Now()
			for k, t := range a.released { // forget what never came back (no race queue)
				if now.Sub(t) > time.Second {
					delete(a.released, k)
				}
			}
			a.released[dq] = now
		}
		a.mu.Unlock()
		if !mine {
			return // released on exit already
		}
		if err := a.conn.SetVerdict(q, id, nfqueue.Accept); err != nil {
			a.c.Errors.Add(1)
			a.log.Error("release delayed packet", "err", err)
		}
	})
}

// releaseHeld accepts every packet still held, at once.
func (a *agent) releaseHeld() {
	a.mu.Lock()
	held := a.held
	a.held = make(map[uint32]*time.Timer)
	a.mu.Unlock()
	var vs []nfqueue.VerdictFor
	for id, t := range held {
		t.Stop()
		vs = append(vs, nfqueue.VerdictFor{Queue: a.cfg.Queue + 1, ID: id, Verdict: nfqueue.Accept})
	}
	if err := a.conn.SetVerdicts(vs); err != nil {
		a.log.Error("release held packets on exit", "err", err)
	}
}
