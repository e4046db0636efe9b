package collect

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"labrun.dev/labrun/pkg/results"
)

// ConntrackStats are a network namespace's conntrack statistics summed over
// CPUs, keyed by the column names of /proc/net/stat/nf_conntrack (entries,
// clashres, found, insert, insert_failed, drop, early_drop, search_restart…).
// Which columns exist depends on the kernel: clashres appeared in 5.10.
// The gauges (results.ConntrackGauges: entries) hold one value for the
// namespace, repeated on every CPU row: taken once, never summed.
type ConntrackStats map[string]uint64

// ParseConntrackStat parses /proc/net/stat/nf_conntrack: a header of column
// names, then one row of hex numbers per CPU. It only parses: the bytes may
// come from a file, a `docker exec cat`, or a namespace reader.
func ParseConntrackStat(r io.Reader) (ConntrackStats, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read conntrack stat header: %w", err)
		}
		return nil, fmt.Errorf("conntrack stat: empty input")
	}
	cols := strings.Fields(sc.Text())
	if len(cols) == 0 || cols[0] != "entries" {
		return nil, fmt.Errorf("conntrack stat: header %q does not start with entries", sc.Text())
	}
	stats := ConntrackStats{}
	rows := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		rows++
		if len(f) != len(cols) {
			return nil, fmt.Errorf("conntrack stat: cpu row %d has %d fields, header has %d", rows, len(f), len(cols))
		}
		for i, s := range f {
			v, err := strconv.ParseUint(s, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("conntrack stat: cpu row %d, column %s: %w", rows, cols[i], err)
			}
			if results.ConntrackGauges[cols[i]] {
				if rows == 1 {
					stats[cols[i]] = v
				}
				continue
			}
			stats[cols[i]] += v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read conntrack stat: %w", err)
	}
	if rows == 0 {
		return nil, fmt.Errorf("conntrack stat: no cpu rows")
	}
	return stats, nil
}

// conntrackToolNames maps `conntrack -S` names to the /proc column names
// where they differ, so both sources can be compared key by key.
var conntrackToolNames = map[string]string{
	"clash_resolve": "clashres",
	"error":         "icmp_error",
}

// ParseConntrackS parses the output of `conntrack -S` (one line per CPU of
// key=value pairs, decimal), sums over CPUs, and names the keys as
// /proc/net/stat/nf_conntrack does (clash_resolve → clashres, error →
// icmp_error). A line without cpu= (e.g. "entries N" from some versions) is
// taken as a global value.
func ParseConntrackS(r io.Reader) (ConntrackStats, error) {
	stats := ConntrackStats{}
	sc := bufio.NewScanner(r)
	lines := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		lines++
		if len(f) == 2 && !strings.Contains(f[0], "=") { // "entries 246"
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("conntrack -S line %d: %w", lines, err)
			}
			stats[f[0]] = v
			continue
		}
		for _, kv := range f {
			k, vs, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("conntrack -S line %d: %q is not key=value", lines, kv)
			}
			if k == "cpu" {
				continue
			}
			v, err := strconv.ParseUint(vs, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("conntrack -S line %d, %s: %w", lines, k, err)
			}
			if n, ok := conntrackToolNames[k]; ok {
				k = n
			}
			stats[k] += v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read conntrack -S: %w", err)
	}
	if lines == 0 {
		return nil, fmt.Errorf("conntrack -S: empty output")
	}
	return stats, nil
}

// CrossCheck compares the keys both sources have and returns one line per
// key whose values differ by more than tolerance (the two are read at
// different moments). Keys present in only one source are not compared.
func CrossCheck(proc, tool ConntrackStats, tolerance uint64) []string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(proc)) {
		tv, ok := tool[k]
		if !ok || results.ConntrackGauges[k] {
			continue
		}
		pv := proc[k]
		if max(pv, tv)-min(pv, tv) > tolerance {
			diffs = append(diffs, fmt.Sprintf("%s: /proc %d, conntrack -S %d", k, pv, tv))
		}
	}
	return diffs
}

// Delta is after − before per key. Counters only grow, but entries is a
// gauge and may shrink, hence signed. A key missing on one side counts as 0.
func Delta(before, after ConntrackStats) map[string]int64 {
	d := make(map[string]int64, len(after))
	for k, v := range after {
		d[k] = int64(v) - int64(before[k])
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			d[k] = -int64(v)
		}
	}
	return d
}

// ReadConntrackStat reads the statistics of the calling process's network
// namespace.
func ReadConntrackStat() (ConntrackStats, error) {
	return readConntrackStatFile("/proc/self/net/stat/nf_conntrack")
}

func readConntrackStatFile(path string) (ConntrackStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read conntrack stats: %w", err)
	}
	defer f.Close()
	s, err := ParseConntrackStat(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ReadConntrackStatInNetns reads the statistics of a network namespace given
// by a path such as /run/netns/NAME or /proc/PID/ns/net. The file is opened
// from a thread that joined the namespace (/proc/thread-self/net follows the
// thread's namespace; /proc/self/net follows the main thread's).
func ReadConntrackStatInNetns(nsPath string) (ConntrackStats, error) {
	type result struct {
		s   ConntrackStats
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{err: fmt.Errorf("open own netns: %w", err)}
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			ch <- result{err: fmt.Errorf("open netns: %w", err)}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter netns %s: %w", nsPath, err)}
			return
		}
		s, rerr := readConntrackStatFile("/proc/thread-self/net/stat/nf_conntrack")
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and dies with this goroutine, so no other
			// goroutine runs in the wrong namespace.
			ch <- result{err: fmt.Errorf("leave netns %s: %w", nsPath, err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{s, rerr}
	}()
	r := <-ch
	return r.s, r.err
}

// NetnsPath is the path of a named network namespace (ip netns add NAME).
func NetnsPath(name string) string { return filepath.Join("/run/netns", name) }
