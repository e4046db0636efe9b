// Package sample defines the record every probe writes for each lookup, and the
// summary line that closes a probe's output. Both are JSON Lines; the format is
// versioned and documented in docs/results-format.md.
//
// One flat record per lookup, units in the field names, a sequence number: the
// collector proves nothing was lost by comparing a probe's Summary with the
// Samples it received.
package sample

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// The 5 s symptom, in the samples' unit (µs): glibc's and musl's default
// resolver timeout, and how near a multiple of it a lookup must end to count
// as "at a 5 s multiple". The progress line's slow lookups and the analysis's
// delayed ones use these same numbers.
const (
	RetryTimeoutUS   = 5_000_000
	RetryToleranceUS = 500_000
	// SlowUS is the least a lookup at a 5 s multiple can take.
	SlowUS = RetryTimeoutUS - RetryToleranceUS
)

// Result is the outcome of one lookup.
type Result string

const (
	OK       Result = "ok"       // at least one address came back
	NXDomain Result = "nxdomain" // the name does not exist (or has no address)
	Timeout  Result = "timeout"  // the resolver gave up waiting
	Error    Result = "error"    // anything else; ErrorText says what
)

// Results lists every Result in report order.
var Results = []Result{OK, NXDomain, Timeout, Error}

// NameKind says how a name relates to the cluster's search list.
type NameKind string

const (
	Short    NameKind = "short"    // relies on the search list (kubernetes.default)
	FQDN     NameKind = "fqdn"     // absolute, trailing dot: no search expansion
	External NameKind = "external" // a name of the lab's synthetic outside zone
)

// Sample is one lookup.
type Sample struct {
	Type       string   `json:"type"`           // always "sample"
	StartNS    int64    `json:"start_ns"`       // wall clock at the start, Unix ns
	DurationUS int64    `json:"duration_us"`    // how long the lookup took, µs
	Cell       string   `json:"cell,omitempty"` // the cell that ran it
	Resolver   string   `json:"resolver"`       // probe back end: glibc, musl, grpc-ares, ...
	Mitigation string   `json:"mitigation,omitempty"`
	Name       string   `json:"name"`
	NameKind   NameKind `json:"name_kind"`
	Result     Result   `json:"result"`
	ErrorText  string   `json:"error,omitempty"`
	Answers    int      `json:"answers"`
	Pod        string   `json:"pod,omitempty"`
	Node       string   `json:"node,omitempty"`
	Seq        uint64   `json:"seq"` // 0, 1, 2, ... per probe process
}

// Summary is the last line of a probe's output.
type Summary struct {
	Type     string `json:"type"` // always "summary"
	Resolver string `json:"resolver"`
	Pod      string `json:"pod,omitempty"`
	Node     string `json:"node,omitempty"`
	// Variant names the back end's variant when it has one: for jvm, the
	// address cache that ran ("defaults" or "nocache").
	Variant  string            `json:"variant,omitempty"`
	Lookups  uint64            `json:"lookups"`
	ByResult map[Result]uint64 `json:"by_result"`
	// Complete is false when the probe stopped before its planned end (signal).
	Complete bool `json:"complete"`
}

const (
	TypeSample  = "sample"
	TypeSummary = "summary"
)

// Encoder writes Samples and a Summary as JSON Lines.
type Encoder struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// NewEncoder returns an Encoder writing to w. Call Flush when done.
func NewEncoder(w io.Writer) *Encoder {
	bw := bufio.NewWriter(w)
	return &Encoder{w: bw, enc: json.NewEncoder(bw)}
}

// Sample writes one sample line.
func (e *Encoder) Sample(s *Sample) error {
	s.Type = TypeSample
	return e.enc.Encode(s)
}

// Summary writes the summary line.
func (e *Encoder) Summary(s *Summary) error {
	s.Type = TypeSummary
	return e.enc.Encode(s)
}

// Flush writes buffered lines out.
func (e *Encoder) Flush() error { return e.w.Flush() }

// Decoder reads a probe's JSON Lines output.
type Decoder struct {
	sc   *bufio.Scanner
	line int
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	return &Decoder{sc: sc}
}

// Next returns the next record: exactly one of sample and summary is non-nil.
// It returns io.EOF at the end. Lines that are not JSON objects of a known type
// are an error naming the line.
func (d *Decoder) Next() (*Sample, *Summary, error) {
	for d.sc.Scan() {
		d.line++
		b := d.sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", d.line, err)
		}
		switch head.Type {
		case TypeSample:
			var s Sample
			if err := json.Unmarshal(b, &s); err != nil {
				return nil, nil, fmt.Errorf("line %d: %w", d.line, err)
			}
			return &s, nil, nil
		case TypeSummary:
			var s Summary
			if err := json.Unmarshal(b, &s); err != nil {
				return nil, nil, fmt.Errorf("line %d: %w", d.line, err)
			}
			return nil, &s, nil
		default:
			return nil, nil, fmt.Errorf("line %d: unknown record type %q (want %q or %q)", d.line, head.Type, TypeSample, TypeSummary)
		}
	}
	if err := d.sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("line %d: %w", d.line+1, err)
	}
	return nil, nil, io.EOF
}

// ReadAll reads a probe's whole output: its samples and its summary line. A
// stream that ends without a summary is an error (the probe did not finish).
func ReadAll(r io.Reader) ([]*Sample, *Summary, error) {
	dec := NewDecoder(r)
	var samples []*Sample
	for {
		s, sum, err := dec.Next()
		if err == io.EOF {
			return samples, nil, fmt.Errorf("no summary line after %d samples", len(samples))
		}
		if err != nil {
			return samples, nil, err
		}
		if sum != nil {
			return samples, sum, nil
		}
		samples = append(samples, s)
	}
}
