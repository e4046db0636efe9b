package sample

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTripAndReadAll(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	in := []*Sample{
		{StartNS: 1, DurationUS: 5003000, Resolver: "glibc", Name: "api.lab.example", NameKind: External, Result: OK, Answers: 2, Seq: 0},
		{StartNS: 2, DurationUS: 900, Resolver: "glibc", Name: "nope.invalid", NameKind: FQDN, Result: NXDomain, ErrorText: "EAI_NONAME", Seq: 1},
	}
	for _, s := range in {
		if err := enc.Sample(s); err != nil {
			t.Fatal(err)
		}
	}
	sum := &Summary{Resolver: "glibc", Lookups: 2, ByResult: map[Result]uint64{OK: 1, NXDomain: 1}, Complete: true}
	if err := enc.Summary(sum); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	out, gotSum, err := ReadAll(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) || !reflect.DeepEqual(gotSum, sum) {
		t.Errorf("round trip changed the records:\n%+v\n%+v", out, gotSum)
	}

	cases := []struct{ name, input, want string }{
		{"cut before the summary", strings.SplitAfter(buf.String(), "\n")[0], "no summary line after 1 samples"},
		{"not JSON", "garbage\n", "line 1"},
		{"unknown record", `{"type":"other"}` + "\n", `unknown record type "other"`},
	}
	for _, c := range cases {
		if _, _, err := ReadAll(strings.NewReader(c.input)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
}
