package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"labrun.dev/labrun/pkg/sample"
)

// Lookup is the part of a Sample that statistics need.
type Lookup struct {
	DurationUS int64
	Result     sample.Result
	NameKind   sample.NameKind
}

// ReadLookups streams the lookups of a cell's samples to fn, like
// ReadSamples, but decodes only duration, result and name kind with a
// hand-written scanner: about ten times faster than encoding/json, which
// analysis of millions of lookups needs. Lines the scanner does not handle
// (summaries, escapes in those fields, anything unusual) go through
// encoding/json, so the two readers agree on every valid file.
func (r RunDir) ReadLookups(cell string, fn func(Lookup)) ([]Probe, error) {
	files, err := r.RawFiles(cell)
	if err != nil {
		return nil, err
	}
	probes := make([]Probe, 0, len(files))
	for _, file := range files {
		p, err := readLookupFile(file, fn)
		if err != nil {
			return probes, err
		}
		probes = append(probes, p)
	}
	return probes, nil
}

func readLookupFile(file string, fn func(Lookup)) (Probe, error) {
	f, err := os.Open(file)
	if err != nil {
		return Probe{}, fmt.Errorf("read samples: %w", err)
	}
	defer f.Close()
	p := Probe{File: file}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 256*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		l, typ, ok := scanLookup(b)
		if !ok {
			var err error
			if l, typ, err = slowLookup(b, &p); err != nil {
				return p, fmt.Errorf("read samples %s: line %d: %w", file, line, err)
			}
		}
		switch typ {
		case sample.TypeSample:
			p.Samples++
			fn(l)
		case sample.TypeSummary:
		default:
			return p, fmt.Errorf("read samples %s: line %d: unknown record type %q (want %q or %q)", file, line, typ, sample.TypeSample, sample.TypeSummary)
		}
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("read samples %s: line %d: %w", file, line+1, err)
	}
	return p, nil
}

// slowLookup decodes a line with encoding/json; a summary is stored in p.
func slowLookup(b []byte, p *Probe) (Lookup, string, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return Lookup{}, "", err
	}
	switch head.Type {
	case sample.TypeSample:
		var s sample.Sample
		if err := json.Unmarshal(b, &s); err != nil {
			return Lookup{}, "", err
		}
		return Lookup{DurationUS: s.DurationUS, Result: s.Result, NameKind: s.NameKind}, head.Type, nil
	case sample.TypeSummary:
		var s sample.Summary
		if err := json.Unmarshal(b, &s); err != nil {
			return Lookup{}, "", err
		}
		p.Summary = &s
	}
	return Lookup{}, head.Type, nil
}

var errNotFlat = errors.New("not a flat object")

// scanLookup reads a flat JSON object of strings, numbers and literals and
// picks out type, duration_us, result and name_kind. ok is false for anything
// it does not handle, including a summary (it has a nested object).
func scanLookup(b []byte) (l Lookup, typ string, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return l, "", false
	}
	i++
	var haveDuration bool
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return l, "", false
		}
		if b[i] == '}' {
			break
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		key, next, esc := scanString(b, i)
		if next < 0 || esc {
			return l, "", false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return l, "", false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return l, "", false
		}
		switch c := b[i]; {
		case c == '"':
			val, next, esc := scanString(b, i)
			if next < 0 {
				return l, "", false
			}
			switch string(key) {
			case "type", "result", "name_kind":
				if esc {
					return l, "", false
				}
				switch string(key) {
				case "type":
					typ = internType(val)
				case "result":
					l.Result = internResult(val)
				case "name_kind":
					l.NameKind = internKind(val)
				}
			}
			i = next
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
				j++
			}
			if string(key) == "duration_us" {
				v, err := strconv.ParseInt(string(b[i:j]), 10, 64)
				if err != nil {
					return l, "", false
				}
				l.DurationUS, haveDuration = v, true
			}
			i = j
		case c == 't' || c == 'f' || c == 'n':
			j := i
			for j < len(b) && b[j] >= 'a' && b[j] <= 'z' {
				j++
			}
			switch string(b[i:j]) {
			case "true", "false", "null":
			default:
				return l, "", false
			}
			i = j
		default: // nested objects and arrays: not a sample line
			return l, "", false
		}
	}
	if typ != sample.TypeSample || !haveDuration || l.Result == "" {
		return l, "", false
	}
	return l, typ, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// scanString reads the string starting at b[i] == '"'; next is the index
// after its closing quote (-1 if malformed), esc whether it holds escapes.
func scanString(b []byte, i int) (val []byte, next int, esc bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, -1, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return b[i+1 : j], j + 1, esc
		}
	}
	return nil, -1, false
}

// The intern functions return constants without allocating for known values.
func internType(v []byte) string {
	switch string(v) {
	case sample.TypeSample:
		return sample.TypeSample
	case sample.TypeSummary:
		return sample.TypeSummary
	}
	return string(v)
}

func internResult(v []byte) sample.Result {
	for _, r := range sample.Results {
		if string(v) == string(r) {
			return r
		}
	}
	return sample.Result(v)
}

func internKind(v []byte) sample.NameKind {
	switch string(v) {
	case string(sample.Short):
		return sample.Short
	case string(sample.FQDN):
		return sample.FQDN
	case string(sample.External):
		return sample.External
	}
	return sample.NameKind(v)
}
