package results

// The counters files keep what the node and the agent said; this tells the
// analysis which of the node's numbers are counts that only grow (a delta
// means something) and which are not. The agent's are typed apart
// (emulator.Counts and emulator.Settings).

// ConntrackGauges are the columns of /proc/net/stat/nf_conntrack that are
// levels, not counts: entries is the number of conntrack entries at that
// moment, so after − before may be negative and is not a "reset". Every
// other column is a per-CPU event counter.
var ConntrackGauges = map[string]bool{"entries": true}
