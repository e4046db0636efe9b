package collect

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

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
	if err := copySamples(strings.NewReader(probeOutput), &out, log, false); err != nil {
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

// stalled is a log stream that has no more to say but has not ended: a
// container that wrote its last line and has not been seen to exit.
type stalled struct{ asked chan struct{} }

func (s stalled) Read([]byte) (int, error) {
	close(s.asked)
	select {}
}

// TestCopySamplesFollowStopsAtTheSummary: following a probe's log, a summary
// that balances the samples ends the copy without waiting for the stream to
// end; one that does not keeps reading (a line may have been lost).
func TestCopySamplesFollowStopsAtTheSummary(t *testing.T) {
	log := &ProbeLog{}
	done := make(chan error, 1)
	go func() {
		done <- copySamples(io.MultiReader(strings.NewReader(probeOutput), stalled{make(chan struct{})}), io.Discard, log, true)
	}()
	select {
	case err := <-done:
		if err != nil || !log.balanced() || log.Probe.Samples != 2 {
			t.Errorf("err %v, samples %d, balanced %v", err, log.Probe.Samples, log.balanced())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the copy waited for the stream's end after a balanced summary")
	}

	lines := strings.Split(probeOutput, "\n")
	lost := strings.Join(append(lines[:2:2], lines[3:]...), "\n") // the second sample never arrived
	rest := stalled{make(chan struct{})}
	go func() { _ = copySamples(io.MultiReader(strings.NewReader(lost), rest), io.Discard, &ProbeLog{}, true) }()
	select {
	case <-rest.asked:
	case <-time.After(5 * time.Second):
		t.Fatal("an unbalanced summary ended the copy")
	}
}

func TestAccount(t *testing.T) {
	read := func(s string) *ProbeLog {
		l := &ProbeLog{Probe: results.Probe{File: "p"}}
		if err := copySamples(strings.NewReader(s), &bytes.Buffer{}, l, false); err != nil {
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
