package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse holds the loader to what labrun validate promises on any input:
// it never panics; an error is either Problems, each at a line of the file,
// or a plain error naming the file; a scenario it accepts is accepted again
// as it records it (results/<run>/scenario.yaml), with the same cells.
//
// make test-unit runs it for a bounded time; crashers go to testdata/fuzz.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, glob := range []string{"../../scenarios/*.yaml", "testdata/*.yaml"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, files...)
	}
	if len(seeds) < 10 {
		f.Fatalf("%d seed files; want the scenarios and the testdata", len(seeds))
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	const file = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(file, data)
		if err != nil {
			probs, ok := err.(Problems)
			if !ok {
				if !strings.HasPrefix(err.Error(), file+": ") {
					t.Fatalf("plain error %q does not name %s", err, file)
				}
				return
			}
			if len(probs) == 0 {
				t.Fatal("an empty Problems as error")
			}
			n := yamlLines(data)
			for _, p := range probs {
				if p.File != file || p.Line < 1 || p.Line > n || p.Msg == "" {
					t.Fatalf("problem %q: want %s, a line from 1 to %d and a message", p, file, n)
				}
			}
			return
		}
		out, err := s.Marshal()
		if err != nil {
			t.Fatalf("marshal a valid scenario: %v", err)
		}
		again, err := Parse(file, out)
		if err != nil {
			t.Fatalf("the valid scenario as recorded does not load:\n%s\n%v", out, err)
		}
		if a, b := cellIDs(s.Expand()), cellIDs(again.Expand()); a != b {
			t.Fatalf("the valid scenario as recorded expands differently:\n%s\nvs\n%s", a, b)
		}
	})
}

// yamlLines counts the lines of data as YAML breaks them (\r\n, \r, \n and,
// in the YAML library, U+0085, U+2028, U+2029); a final break ends the last
// line.
func yamlLines(data []byte) int {
	s := strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n").Replace(string(data))
	n := strings.Count(s, "\n")
	if !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}
