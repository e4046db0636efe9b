package scenario

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"labrun.dev/labrun/pkg/mitigation"
)

// metricNames are the bounds a cell expectation may set, in the order of
// Bounds (and of the reference).
var metricNames = []string{"p50", "p99", "shareAt5s", "hitShare", "timeouts", "emulatorDrops"}

// expect checks what can be checked of the expect block alone: claim
// numbers and verdicts, patterns, literal values, bounds.
func (v *validator) expect() {
	e := v.s.Expect
	keys := make([]string, 0, len(e.Claims))
	for k := range e.Claims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := "expect.claims." + k
		if n, err := strconv.Atoi(k); err != nil || n < 1 || n > ClaimCount {
			v.bad(p, fmt.Sprintf("unknown claim %q", k), fmt.Sprintf("a claim number from 1 to %d", ClaimCount))
		}
		v.oneOf(p, e.Claims[k], ClaimVerdicts)
	}
	for i, c := range e.Cells {
		p := fmt.Sprintf("expect.cells[%d]", i)
		v.match(p+".match", c.Match)
		if c.Max.empty() && c.Min.empty() {
			v.bad(p, "bounds nothing", "max: and/or min: with any of "+oneOf(metricNames))
		}
		v.bounds(p+".max", c.Max)
		v.bounds(p+".min", c.Min)
		v.minBelowMax(p, c.Min, c.Max)
	}
}

// match checks each pattern's syntax and, where it has no wildcard, that
// its value exists at all.
func (v *validator) match(p string, m Match) {
	known := map[string][]string{
		"podNetwork": PodNetworks, "kubeProxy": KubeProxies, "dns": DNSServers, "resolver": mitigation.Resolvers,
	}
	for _, c := range v.s.Clusters {
		known["cluster"] = append(known["cluster"], c.Name)
	}
	for _, c := range v.s.Chaos {
		known["chaos"] = append(known["chaos"], c.ID())
	}
	for _, f := range m.fields() {
		q := p + "." + f.name
		switch {
		case f.written == "":
		case !validPattern(f.written):
			v.bad(q, fmt.Sprintf("%q is not a valid glob pattern", f.written), "a value, or a pattern with *, ? and [...] (Go's path.Match)")
		case isGlob(f.written):
		case f.name == "mitigation":
			if _, err := mitigation.ParseSet(f.written); err != nil {
				v.bad(q, strings.ReplaceAll(err.Error(), "\n", "; "), oneOf(mitigation.IDs())+", joined with +, or a pattern")
			}
		case !slices.Contains(known[f.name], f.written):
			v.bad(q, fmt.Sprintf("unknown %s %q", f.name, f.written), oneOf(known[f.name])+", or a pattern")
		}
	}
}

func validPattern(p string) bool {
	_, err := path.Match(p, "")
	return err == nil
}

func (v *validator) bounds(p string, b *Bounds) {
	if b == nil {
		return
	}
	for _, d := range []struct {
		name string
		d    *Duration
	}{{"p50", b.P50}, {"p99", b.P99}} {
		if d.d != nil && *d.d < 0 {
			v.bad(p+"."+d.name, fmt.Sprintf("%s is negative", d.d), "a duration of 0s or more, such as 100ms")
		}
	}
	for _, s := range []struct {
		name string
		s    *Share
	}{{"shareAt5s", b.ShareAt5s}, {"hitShare", b.HitShare}} {
		if s.s != nil && !(*s.s >= 0 && *s.s <= 1) { // NaN too
			v.bad(p+"."+s.name, fmt.Sprintf("%g is out of range", float64(*s.s)), "0 to 1, or 0% to 100%")
		}
	}
	if t := b.Timeouts; t != nil && (!(t.Value >= 0) || t.Percent && !(t.Value <= 100)) { // NaN too
		v.bad(p+".timeouts", fmt.Sprintf("%s is out of range", t), "a count of 0 or more, or 0% to 100%")
	}
	if d := b.EmulatorDrops; d != nil && *d < 0 {
		v.bad(p+".emulatorDrops", fmt.Sprintf("%d is negative", *d), "a count of 0 or more")
	}
}

// minBelowMax: a lower bound above the upper one can never hold.
func (v *validator) minBelowMax(p string, lo, hi *Bounds) {
	if lo == nil || hi == nil {
		return
	}
	above := func(name string, l, h float64, ls, hs fmt.Stringer) {
		if l > h {
			v.bad(p+".min."+name, fmt.Sprintf("min %s is above max %s", ls, hs), "min at most max")
		}
	}
	if lo.P50 != nil && hi.P50 != nil {
		above("p50", float64(*lo.P50), float64(*hi.P50), lo.P50, hi.P50)
	}
	if lo.P99 != nil && hi.P99 != nil {
		above("p99", float64(*lo.P99), float64(*hi.P99), lo.P99, hi.P99)
	}
	if lo.ShareAt5s != nil && hi.ShareAt5s != nil {
		above("shareAt5s", float64(*lo.ShareAt5s), float64(*hi.ShareAt5s), lo.ShareAt5s, hi.ShareAt5s)
	}
	if lo.HitShare != nil && hi.HitShare != nil {
		above("hitShare", float64(*lo.HitShare), float64(*hi.HitShare), lo.HitShare, hi.HitShare)
	}
	if l, h := lo.Timeouts, hi.Timeouts; l != nil && h != nil && l.Percent == h.Percent {
		above("timeouts", l.Value, h.Value, l, h)
	}
	if l, h := lo.EmulatorDrops, hi.EmulatorDrops; l != nil && h != nil && *l > *h {
		v.bad(p+".min.emulatorDrops", fmt.Sprintf("min %d is above max %d", *l, *h), "min at most max")
	}
}

// expectCells checks each selector against the scenario's cells, so that a
// typo cannot pass silently: it must match a cell the lab runs, and bounds
// that only some back ends or chaos have must fit every cell it matches.
// It needs a valid scenario (Expand).
func (v *validator) expectCells() {
	cells := v.s.Expand()
	for i, ce := range v.s.Expect.Cells {
		p := fmt.Sprintf("expect.cells[%d]", i)
		var runs, notRun []Cell
		for _, c := range cells {
			switch {
			case !ce.Match.Matches(c):
			case c.Runs():
				runs = append(runs, c)
			default:
				notRun = append(notRun, c)
			}
		}
		switch {
		case len(runs) == 0 && len(notRun) == 0:
			v.bad(p+".match", fmt.Sprintf("%s matches no cell of the scenario", ce.Match), v.cellValues(ce.Match, cells))
			continue
		case len(runs) == 0:
			v.bad(p+".match", fmt.Sprintf("%s matches only cells the lab does not run (%s: %s)", ce.Match, notRun[0].ID, notRun[0].NotRun),
				"a selector matching a cell that runs (labrun plan lists them)")
			continue
		}
		for _, b := range []struct {
			name string
			b    *Bounds
		}{{"max", ce.Max}, {"min", ce.Min}} {
			if b.b == nil {
				continue
			}
			q := p + "." + b.name
			if b.b.HitShare != nil {
				if c, ok := firstWithout(runs, func(c Cell) bool { return c.Backend == mitigation.GRPCAres || c.Backend == mitigation.GRPCNative }); ok {
					v.bad(q+".hitShare", fmt.Sprintf("hitShare is for gRPC calls, but %s matches %s (back end %s)", ce.Match, c.ID, c.Backend),
						"a selector of grpc-ares or grpc-native cells only; shareAt5s for the others")
				}
			}
			if b.b.EmulatorDrops != nil {
				if c, ok := firstWithout(runs, Cell.UnderEmulator); ok {
					v.bad(q+".emulatorDrops", fmt.Sprintf("%s matches %s, which runs without the race emulator", ce.Match, c.ID),
						"a selector of cells under chaos.raceEmulator only")
				}
			}
		}
	}
}

func firstWithout(cells []Cell, keep func(Cell) bool) (Cell, bool) {
	for _, c := range cells {
		if !keep(c) {
			return c, true
		}
	}
	return Cell{}, false
}

// cellValues lists the values the scenario's cells take for each field the
// selector uses: what it could have matched.
func (v *validator) cellValues(m Match, cells []Cell) string {
	var parts []string
	for _, f := range m.fields() {
		if f.written == "" {
			continue
		}
		var vals []string
		for _, c := range cells {
			if val := f.value(c); !slices.Contains(vals, val) {
				vals = append(vals, val)
			}
		}
		parts = append(parts, f.name+" "+strings.Join(vals, ", "))
	}
	return "the scenario's cells have " + strings.Join(parts, "; ")
}
