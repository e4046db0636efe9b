package results

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"labrun.dev/labrun/pkg/sample"
)

func TestScanLookupAgreesWithEncodingJSON(t *testing.T) {
	lines := []string{
		`{"type":"sample","start_ns":1,"duration_us":5001234,"resolver":"glibc","name":"a","name_kind":"short","result":"timeout","answers":0,"seq":3}`,
		`{ "seq": 3, "answers": 2, "result" : "ok", "duration_us" : 17, "type" : "sample", "name_kind":"external", "error":"x \"quoted\" y" }`,
		`{"type":"sample","duration_us":-4,"result":"nxdomain","name":"w\u00e9ird","name_kind":"fqdn","ok":true,"z":null}`,
	}
	for _, line := range lines {
		l, typ, ok := scanLookup([]byte(line))
		if !ok || typ != "sample" {
			t.Errorf("scanLookup(%s): ok=%v typ=%q", line, ok, typ)
			continue
		}
		var s sample.Sample
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatal(err)
		}
		if l.DurationUS != s.DurationUS || l.Result != s.Result || l.NameKind != s.NameKind {
			t.Errorf("scanLookup(%s) = %+v, encoding/json says %+v", line, l, s)
		}
	}
	// Lines the scanner leaves to encoding/json.
	for _, line := range []string{
		`{"type":"summary","resolver":"glibc","lookups":1,"by_result":{"ok":1},"complete":true}`,
		`{"type":"sample","duration_us":1.5e3,"result":"ok"}`,
		`{"type":"sample","result":"ok"}`,
		`{"type":"sam\u0070le","duration_us":1,"result":"ok"}`,
		`["not","an","object"]`,
		`{"type":"sample","duration_us":1,"result":"ok"`,
	} {
		if _, _, ok := scanLookup([]byte(line)); ok {
			t.Errorf("scanLookup(%s) accepted a line it should leave to encoding/json", line)
		}
	}
}

func TestReadLookupsMatchesReadSamples(t *testing.T) {
	run, _ := Create(t.TempDir(), "r")
	dir := run.RawDir("c")
	os.MkdirAll(dir, 0o755)
	content := strings.Join([]string{
		`{"type":"sample","duration_us":10,"resolver":"glibc","name":"a","name_kind":"short","result":"ok","answers":1,"seq":0}`,
		``,
		`{"type":"sample","duration_us":5000010,"resolver":"glibc","name":"b","name_kind":"external","result":"ok","error":"\t","answers":1,"seq":1}`,
		`{"type":"sample","duration_us":2e1,"resolver":"glibc","name":"b","name_kind":"external","result":"error","answers":0,"seq":2}`,
		`{"type":"summary","resolver":"glibc","lookups":3,"by_result":{"ok":2,"error":1},"complete":true}`,
	}, "\n")
	os.WriteFile(filepath.Join(dir, "p.jsonl"), []byte(content), 0o644)
	var fast, slow []Lookup
	pf, errf := run.ReadLookups("c", func(l Lookup) { fast = append(fast, l) })
	ps, errs := run.ReadSamples("c", func(s *sample.Sample) {
		slow = append(slow, Lookup{DurationUS: s.DurationUS, Result: s.Result, NameKind: s.NameKind})
	})
	// 2e1 is not an integer: both readers must refuse the file the same way.
	if (errf == nil) != (errs == nil) {
		t.Fatalf("ReadLookups err %v, ReadSamples err %v: they disagree", errf, errs)
	}
	if errs == nil {
		if len(fast) != len(slow) || pf[0].Samples != ps[0].Samples || pf[0].Summary.Lookups != ps[0].Summary.Lookups {
			t.Errorf("fast %+v %+v\nslow %+v %+v", fast, pf, slow, ps)
		}
	}
	os.WriteFile(filepath.Join(dir, "p.jsonl"), []byte(strings.Replace(content, `"duration_us":2e1`, `"duration_us":20`, 1)), 0o644)
	fast, slow = nil, nil
	pf, errf = run.ReadLookups("c", func(l Lookup) { fast = append(fast, l) })
	ps, errs = run.ReadSamples("c", func(s *sample.Sample) {
		slow = append(slow, Lookup{DurationUS: s.DurationUS, Result: s.Result, NameKind: s.NameKind})
	})
	if errf != nil || errs != nil {
		t.Fatal(errf, errs)
	}
	if len(fast) != 3 || len(slow) != 3 || pf[0].Summary == nil || pf[0].Summary.Lookups != 3 || pf[0].Samples != ps[0].Samples {
		t.Fatalf("fast %+v %+v\nslow %+v", fast, pf, slow)
	}
	for i := range fast {
		if fast[i] != slow[i] {
			t.Errorf("lookup %d: fast %+v, slow %+v", i, fast[i], slow[i])
		}
	}
	os.WriteFile(filepath.Join(dir, "p.jsonl"), []byte(`{"type":"bogus"}`), 0o644)
	if _, err := run.ReadLookups("c", func(Lookup) {}); err == nil || !strings.Contains(err.Error(), "line 1: unknown record type") {
		t.Errorf("unknown type: %v", err)
	}
}
