package results

// The counters files keep what the node and the agent said, verbatim; these
// tell the analysis which of those numbers are counts that only grow (a
// delta means something) and which are not.

// ConntrackGauges are the columns of /proc/net/stat/nf_conntrack that are
// levels, not counts: entries is the number of conntrack entries at that
// moment, so after − before may be negative and is not a "reset". Every
// other column is a per-CPU event counter.
var ConntrackGauges = map[string]bool{"entries": true}

// EmulatorCounters are the race emulator agent's event counters, the
// uint64 counts of its snapshot (pkg/raceemu Snapshot; a test keeps the
// two in step). The snapshot's other numbers are settings (port, queue,
// window_us, drop_probability, delay_ms): the same before and after, so
// their "delta" would be a meaningless 0, and drop_probability 1 would read
// as a count. Anything not listed here is left out of the deltas.
var EmulatorCounters = map[string]bool{
	"seen": true, "clashes": true, "dropped": true, "would_drop": true, "passed": true,
	"delay_seen": true, "delayed": true,
	"parse_errors": true, "errors": true, "overruns": true, "kernel_errors": true, "kernel_timestamps": true,
}
