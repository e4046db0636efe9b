package collect

import (
	"bytes"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/results"
)

const probeOutput = `{"type":"sample","start_ns":1,"duration_us":612,"resolver":"glibc","name":"a","name_kind":"short","result":"ok","answers":1,"seq":0}
probe: a line on stderr
{"type":"sample","start_ns":2,"duration_us":5004000,"resolver":"glibc","name":"a","name_kind":"short","result":"ok","answers":1,"seq":1}

{"type":"summary","resolver":"glibc","lookups":2,"by_result":{"ok":2},"complete":true}
`

func TestCopySamplesKeepsOnlyTheSampleFormat(t *testing.T) {
	var out bytes.Buffer
	log := &ProbeLog{Probe: results.Probe{File: "p.jsonl"}}
	if err := copySamples(strings.NewReader(probeOutput), &out, log); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "stderr") || strings.Count(out.String(), "\n") != 3 {
		t.Errorf("raw file must hold the three JSON lines only:\n%s", out.String())
	}
	if log.Probe.Samples != 2 || log.Slow != 1 || log.Probe.Summary == nil || log.Probe.Summary.Lookups != 2 {
		t.Errorf("samples %d slow %d summary %+v", log.Probe.Samples, log.Slow, log.Probe.Summary)
	}
	if len(log.Noise) != 1 {
		t.Errorf("noise %q", log.Noise)
	}
}

func TestAccount(t *testing.T) {
	read := func(s string) *ProbeLog {
		l := &ProbeLog{Probe: results.Probe{File: "p"}}
		if err := copySamples(strings.NewReader(s), &bytes.Buffer{}, l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	ok := Account([]*ProbeLog{read(probeOutput), read(probeOutput)})
	if ok.Problem != "" || ok.Probes != 2 || ok.Expected != 4 || ok.Collected != 4 {
		t.Errorf("matching probes: %+v", ok)
	}
	lines := strings.Split(probeOutput, "\n")
	lost := strings.Join(append(lines[:2:2], lines[3:]...), "\n") // the second sample never arrived
	short := Account([]*ProbeLog{read(probeOutput), read(lost)})
	if !strings.Contains(short.Problem, "summary says 2 lookups, file holds 1") || short.Expected != 4 || short.Collected != 3 {
		t.Errorf("a lost sample: %+v", short)
	}
	cut := Account([]*ProbeLog{read("probe: --names: malformed\n")})
	if !strings.Contains(cut.Problem, "no summary line") || !strings.Contains(cut.Problem, "malformed") {
		t.Errorf("a probe that wrote no summary: %+v", cut)
	}
	if none := Account(nil); none.Problem == "" {
		t.Error("no probe at all must be a problem")
	}
}
