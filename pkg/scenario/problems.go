package scenario

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a scenario file, at a line.
type Problem struct {
	File  string
	Line  int    // 0 when unknown
	Field string // dotted path, e.g. clusters[0].dns.replicas
	Msg   string // what is wrong
	Valid string // what would be valid; may be empty
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	if p.Valid != "" {
		b.WriteString("; valid: " + p.Valid)
	}
	return b.String()
}

// Problems is every problem found in one file, sorted by line. It is the error
// Load returns when a scenario is invalid.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sorted orders the problems by line, then field, and drops repeats (two
// keys of one line that are both lists are one problem to fix, said once).
func (ps Problems) sorted() Problems {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), strings.Compare(a.Field, b.Field),
			strings.Compare(a.Msg, b.Msg), strings.Compare(a.Valid, b.Valid))
	})
	return slices.Compact(ps)
}

func oneOf(vs []string) string { return strings.Join(vs, ", ") }
