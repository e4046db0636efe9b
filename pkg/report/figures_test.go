package report

import (
	"html"
	"strings"
	"testing"

	"labrun.dev/labrun/internal/format"
	"labrun.dev/labrun/pkg/analyze"
	"labrun.dev/labrun/pkg/results"
)

// twoCells is a run with one cell under the emulator and one on the bare
// kernel, in that plan order.
func twoCells() *analyze.Analysis {
	measured := func(id, mitigation string, emu bool, d analyze.Deltas) *analyze.Cell {
		c := &analyze.Cell{ID: "default_glibc_" + mitigation, Cluster: "default", Resolver: "glibc", Backend: "glibc",
			Mitigation: mitigation, State: results.Complete, Stats: &analyze.Stats{Count: 10}, Counters: &d, Emulator: emu}
		if emu {
			c.EmulatorProfile = "pre-5.0"
		}
		return c
	}
	return &analyze.Analysis{Cells: []*analyze.Cell{
		measured("a", "none", true, analyze.Deltas{Conntrack: map[string]uint64{"insert_failed": 0, "clashres": 22}, Emulator: map[string]uint64{"dropped": 32}}),
		measured("b", "use-vc", false, analyze.Deltas{Conntrack: map[string]uint64{"insert_failed": 3}}),
	}}
}

func TestCountersFigureKeepsKernelAndEmulatorApart(t *testing.T) {
	fd := Figures(twoCells())
	var names []string
	for _, g := range fd.Counters {
		names = append(names, g.Name)
	}
	if strings.Join(names, ",") != GroupInsertFailed+","+GroupClashResolved+","+GroupEmulatorDropped {
		t.Fatalf("groups = %v", names)
	}
	ins, clash, emu := fd.Counters[0].Bars, fd.Counters[1].Bars, fd.Counters[2].Bars
	if ins[0].Cell != "default_glibc_none" || ins[1].Cell != "default_glibc_use-vc" {
		t.Errorf("rows not in plan order: %+v", ins)
	}
	if ins[0].Value != 0 || ins[0].NotApplicable || ins[1].Value != 3 || clash[0].Value != 22 {
		t.Errorf("kernel bars = %+v, %+v", ins, clash)
	}
	if emu[0].Value != 32 || emu[0].NotApplicable || !emu[1].NotApplicable {
		t.Errorf("emulator bars = %+v: the bare-kernel cell must be n/a, not 0", emu)
	}
}

func TestCellRowSaysWhatRan(t *testing.T) {
	a := twoCells()
	emu, bare := newCellRow(a.Cells[0]), newCellRow(a.Cells[1])
	if emu.RanOn != "emulator pre-5.0" || emu.EmulatorDropped != "+32" || emu.InsertFailed != "+0" || emu.ClashResolved != "+22" {
		t.Errorf("emulator row = %+v", emu)
	}
	// No clashres column (a kernel before 5.10) is not a zero.
	if bare.RanOn != "bare kernel" || bare.EmulatorDropped != "n/a" || bare.InsertFailed != "+3" || bare.ClashResolved != "–" {
		t.Errorf("bare-kernel row = %+v", bare)
	}
	notRun := newCellRow(&analyze.Cell{State: results.NotRun})
	if notRun.EmulatorDropped != "–" || notRun.InsertFailed != "–" {
		t.Errorf("a cell without counters = %+v", notRun)
	}
	page, err := HTML(NewSummary(a), nil)
	if err != nil {
		t.Fatal(err)
	}
	text := html.UnescapeString(string(page)) // html/template writes + as &#43;
	for _, want := range []string{">emulator pre-5.0<", ">bare kernel<", `<td class="num emu">n/a</td>`, `<td class="num kernel">+3</td>`} {
		if !strings.Contains(text, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
}

func TestFormats(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{format.Percent(0), "0 %"}, {format.Percent(0.05), "0.05 %"}, {format.Percent(78.049), "78.0 %"},
		{format.Duration(0.85), "850 µs"}, {format.Duration(2.62), "2.62 ms"}, {format.Duration(5003), "5.00 s"},
		{formatSeconds(1e-5), "10 µs"}, {formatSeconds(0.1), "100 ms"}, {formatSeconds(10), "10 s"},
		{formatShare(1), "100 %"}, {formatShare(0.001), "0.1 %"},
		{intervalText(analyze.Interval{Ratio: 1.1, Low: 0.79, High: 1.54}), "[0.79, 1.54] no difference"},
		{intervalText(analyze.Interval{Ratio: 0.01, Low: 0.005, High: 0.02}), "[0.005, 0.02]"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestUnitTicksLabelEveryDecadeInRange(t *testing.T) {
	var labels []string
	for _, tk := range (unitTicks{format: formatSeconds}).Ticks(1e-4, 13) {
		if tk.Value < 1e-4 || tk.Value > 13 {
			t.Errorf("tick %g outside [1e-4, 13]", tk.Value)
		}
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, ","); got != "100 µs,1 ms,10 ms,100 ms,1 s,10 s" {
		t.Errorf("labels = %s", got)
	}
}
