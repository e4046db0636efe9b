// Package emulator is the race emulator agent's counters as JSON: what the
// agent (pkg/raceemu, cmd/labagent) serves at /counters, and what a run's
// counters/<cell>.json keeps of it before and after a cell. It is a format
// package, like pkg/sample for the probe: the agent and the host both import
// it, and it imports nothing of labrun.
package emulator

import (
	"encoding/json"
	"time"
)

// LockName is the abstract unix socket an agent holds while it runs, one per
// node network namespace: a second agent there refuses to start, and the
// runner knows the last cell's agents are gone when no node lists it in
// /proc/net/unix. Abstract sockets belong to a network namespace and vanish
// with their process, even on SIGKILL, so a dead agent never blocks the next.
const LockName = "@labrun-agent"

// Counts are the agent's event counters: they only grow while it runs, so
// after − before counts what happened during a cell. Race-queue packets are
// those that open a connection toward a VIP; delay-queue packets are every
// UDP packet toward a VIP, seen before conntrack.
type Counts struct {
	Seen         uint64 `json:"seen"`         // race queue: packets seen
	Clashes      uint64 `json:"clashes"`      // race queue: within the window of an earlier packet of their 5-tuple
	Dropped      uint64 `json:"dropped"`      // race queue: dropped (emulate)
	WouldDrop    uint64 `json:"would_drop"`   // race queue: would have been dropped (count-only)
	Passed       uint64 `json:"passed"`       // race queue: accepted
	DelaySeen    uint64 `json:"delay_seen"`   // delay queue: packets seen
	Delayed      uint64 `json:"delayed"`      // delay queue: AAAA queries held
	ParseErrors  uint64 `json:"parse_errors"` // packets the agent could not read (accepted)
	Errors       uint64 `json:"errors"`       // verdicts that could not be sent
	Overruns     uint64 `json:"overruns"`     // times the kernel could not deliver queued packets (failed open)
	KernelErrors uint64 `json:"kernel_errors"`
	KernelTime   uint64 `json:"kernel_timestamps"` // race-queue packets timed by the kernel's timestamp
}

// ByName returns the counts keyed by their JSON names.
func (c Counts) ByName() map[string]uint64 {
	b, _ := json.Marshal(c) // uint64 fields: this cannot fail, nor can the way back
	m := map[string]uint64{}
	_ = json.Unmarshal(b, &m)
	return m
}

// Settings are the agent's numeric settings: the same before and after a
// cell, so they are kept with the counts but are no counts.
type Settings struct {
	// Probability that a clash drops. Nil only in a counters file written
	// before it was recorded whole (labrun kept it only when 0 or 1).
	Probability *float64 `json:"drop_probability,omitempty"`
	WindowUS    int64    `json:"window_us"`
	// DelayMS is the AAAA delay, 0 without delay-aaaa (a counters file
	// written before it was recorded whole lacks a fractional one).
	DelayMS float64 `json:"delay_ms,omitempty"`
	Port    uint16  `json:"port"`
	Queue   uint16  `json:"queue"`
}

// Info describes the running agent; it goes with every snapshot.
type Info struct {
	Mode    string `json:"mode"`
	Profile string `json:"profile,omitempty"` // the kernel imitated: pre-5.0 or 5.0-5.5
	Settings
	DelayMethod string `json:"delay_method,omitempty"`
	Netem       string `json:"netem,omitempty"`
	// Observer is how race packets reach the agent: nfqueue, or nflog (passive) in count-only.
	Observer  string    `json:"observer,omitempty"`
	Iptables  string    `json:"iptables"`
	VIPs      []string  `json:"vips"`
	StartedAt time.Time `json:"started_at"`
}

// Snapshot is the agent's counters at one moment: its /counters.
type Snapshot struct {
	Info
	At time.Time `json:"at"`
	Counts
	// GapsUS counts, per bucket (upper bound in µs, "+Inf" for the last),
	// the gaps between a packet and the previous one of its 5-tuple, as
	// seen by the race queue.
	GapsUS map[string]uint64 `json:"gap_us_le"`
}

// Record is what a counters file keeps of a snapshot (NodeCounters'
// emulator_before and emulator_after): its counts and numeric settings.
type Record struct {
	Counts
	Settings
}

// Record is what a counters file keeps of s.
func (s Snapshot) Record() *Record { return &Record{Counts: s.Counts, Settings: s.Settings} }

// MarshalJSON writes the fields sorted by name, as the conntrack counters
// beside them are (and as these were when the file kept a map).
func (r Record) MarshalJSON() ([]byte, error) {
	type fields Record // the same fields, without this method
	b, err := json.Marshal(fields(r))
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}
