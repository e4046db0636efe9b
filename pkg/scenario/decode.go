package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// source remembers where each field of a scenario was written.
type source struct {
	file  string
	lines map[string]int  // field path → line
	one   map[string]bool // oneOrMany fields written in their single form
	// failed are the fields whose value did not decode (a wrong type, a bad
	// scalar): they hold a zero or default that the file never said, so
	// validation keeps quiet about them and about what contains them.
	failed map[string]bool
}

// line returns the line of path, or of its nearest written parent: a defaulted
// field is reported where its parent was written.
func (s source) line(path string) int {
	for {
		if l, ok := s.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return s.lines[""]
		}
		path = path[:i]
	}
}

// has reports whether path was written in the file.
func (s source) has(path string) bool {
	_, ok := s.lines[path]
	return ok
}

// undecoded reports whether path, a field inside it or a field containing it
// failed to decode: a problem found there by validation would be about a
// value the file did not write (a zero, a default, or a part of one).
func (s source) undecoded(path string) bool {
	for f := range s.failed {
		if within(path, f) || within(f, path) {
			return true
		}
	}
	return false
}

// within reports whether inner is outer or lies inside it ("a.b[0].c" is
// within "a.b" and "a.b[0]", not within "a.bc"); everything is within the
// document itself, "".
func within(inner, outer string) bool {
	rest, ok := strings.CutPrefix(inner, outer)
	return ok && (outer == "" || rest == "" || rest[0] == '.' || rest[0] == '[')
}

// elem is the path of element i of a oneOrMany field: the field itself when
// it was written in its single form.
func (s source) elem(path string, i int) string {
	if s.one[path] {
		return path
	}
	return fmt.Sprintf("%s[%d]", path, i)
}

// LoadFile reads, decodes, defaults and validates the scenario in file. An
// invalid scenario returns Problems listing everything wrong with it.
func LoadFile(file string) (*Scenario, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return Parse(file, data)
}

// Parse is LoadFile on data already read; file names it in messages.
//
// What does not decode (unknown fields, wrong types, bad scalars) is
// collected, and the rest is defaulted and validated all the same, so one
// run of labrun validate names every problem of the file, not the first kind.
func Parse(file string, data []byte) (*Scenario, error) {
	s, probs, err := decode(file, data)
	if err != nil {
		return nil, err
	}
	s.setDefaults()
	probs = append(probs, s.validate(len(probs) == 0)...)
	if len(probs) > 0 {
		return nil, probs.sorted()
	}
	return s, nil
}

// decode reads the first YAML document of data into a Scenario. The
// problems are what did not decode; err is set when nothing could be read
// (not YAML, no document): then there is nothing to validate either.
func decode(file string, data []byte) (*Scenario, Problems, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			// No line to point at: a plain error, still naming the file.
			return nil, nil, fmt.Errorf("%s: empty file; want a Scenario", file)
		}
		return nil, nil, Problems{yamlProblem(file, data, err)}
	}
	var probs Problems
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		// The first document is still checked: its problems are real too.
		probs = append(probs, Problem{File: file, Line: min(extra.Line, lineCount(data)), Msg: "more than one YAML document; want one Scenario per file"})
	}
	d := &decoder{
		src:   source{file: file, lines: map[string]int{}, one: map[string]bool{}, failed: map[string]bool{}},
		probs: probs,
		last:  lineCount(data),
	}
	s := &Scenario{}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	d.value(doc, reflect.ValueOf(s).Elem(), "")
	s.src = d.src
	s.Expect.src = d.src
	return s, d.probs, nil
}

// yamlProblem turns a parser error ("yaml: line 3: ...") into a Problem at
// the line it is about. The YAML library's lines need repair: its parser
// (not its scanner) counts them from 0, it leaves out a line 0, and its
// reader and anchor errors carry none; those are found in data instead.
func yamlProblem(file string, data []byte, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ":"); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, strings.TrimSpace(after)
			}
		}
	}
	switch {
	case slices.Contains(yamlParserErrors, msg):
		line++
	case line > 0:
	case slices.Contains(yamlReaderErrors, msg):
		line = lineAt(data, badChar(data))
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		line = lineAt(data, bytes.Index(data, []byte("*"+name)))
	default:
		line = 1 // a scanner error on the first line
	}
	// The end of the stream is on the line after a final line break; an
	// editor shows no such line.
	if last := lineCount(data); line > last {
		line = last
	}
	return Problem{File: file, Line: line, Msg: "not valid YAML: " + msg}
}

// yamlParserErrors are the messages of the YAML library's parser, whose
// lines count from 0 (go.yaml.in/yaml/v3 parserc.go); its scanner's count
// from 1.
var yamlParserErrors = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// yamlReaderErrors are the YAML library's errors about the bytes
// themselves, which carry no line (readerc.go).
var yamlReaderErrors = []string{
	"invalid leading UTF-8 octet",
	"incomplete UTF-8 octet sequence",
	"invalid trailing UTF-8 octet",
	"invalid length of a UTF-8 sequence",
	"invalid Unicode character",
	"control characters are not allowed",
}

// badChar is the offset of the first byte YAML does not accept in data
// read as UTF-8: not UTF-8, or a character outside YAML's printable set.
// It is -1 when there is none (then data was UTF-16, which a scenario is
// not).
func badChar(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		printable := r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
			r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
		if r == utf8.RuneError && n <= 1 || !printable {
			return i
		}
		i += n
	}
	return -1
}

// lineCount is how many lines data has (at least 1), a final line break
// ending the last line rather than starting another.
func lineCount(data []byte) int {
	n := lineAt(data, len(data))
	if n > 1 && (bytes.HasSuffix(data, []byte("\n")) || bytes.HasSuffix(data, []byte("\r")) ||
		bytes.HasSuffix(data, []byte("\u0085")) || bytes.HasSuffix(data, []byte("\u2028")) || bytes.HasSuffix(data, []byte("\u2029"))) {
		n--
	}
	return n
}

// lineAt is the line, from 1, of offset off in data, with line breaks as
// YAML has them: \n, \r\n, \r, and U+0085, U+2028, U+2029. An offset of -1
// (not found) is line 1.
func lineAt(data []byte, off int) int {
	line := 1
	for i := 0; i < off && i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		switch {
		case r == '\r' && i+1 < len(data) && data[i+1] == '\n':
			n = 2
			line++
		case r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029:
			line++
		}
		i += n
	}
	return line
}

// decoder walks YAML nodes into Go values strictly: unknown fields, wrong
// kinds and bad scalars are problems, all collected, each with its line.
type decoder struct {
	src   source
	probs Problems
	last  int // the file's last line
	// values counts the values decoded: aliases (*name) can repeat a
	// value many times over, so a small file could take hours.
	values int
}

// maxValues is far more values than any scenario has (the nightly matrix
// has some 300).
const maxValues = 100_000

// line is where node n was written. The YAML library puts a value left out
// at the very end ("---", "a:") on the line after the last one; it is
// reported on the last.
func (d *decoder) line(n *yaml.Node) int { return min(n.Line, d.last) }

func (d *decoder) problem(line int, path, msg, valid string) {
	d.probs = append(d.probs, Problem{File: d.src.file, Line: line, Field: path, Msg: msg, Valid: valid})
}

// mistyped is a problem with the value at path itself: the field keeps its
// zero value, which validation must not judge.
func (d *decoder) mistyped(line int, path, msg string) {
	d.problem(line, path, msg, "")
	d.src.failed[path] = true
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	n = deref(n)
	if d.values++; d.values > maxValues {
		if d.values == maxValues+1 { // at the value repeated too often
			d.mistyped(d.line(n), "", fmt.Sprintf("more than %d values; aliases (*name) repeating values too often?", maxValues))
		}
		return
	}
	d.src.lines[path] = d.line(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the zero value, defaulted later
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.mistyped(d.line(n), path, "want a single value, got "+kindName(n))
			return
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.mistyped(d.line(n), path, err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Map:
		d.dict(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.mistyped(d.line(n), path, "want a list, got "+kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.mistyped(d.line(n), path, "want a mapping of fields, got "+kindName(n))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.problem(d.line(k), path, "want a field name, got "+kindName(k), oneOf(names))
			continue
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(d.line(k), p, fmt.Sprintf("written twice (first on line %d)", first), "each field once")
			continue
		}
		seen[k.Value] = d.line(k)
		fi, ok := fields[k.Value]
		if !ok {
			d.problem(d.line(k), p, "unknown field", oneOf(names))
			continue
		}
		f := v.Type().Field(fi)
		if f.Tag.Get("labrun") == "oneOrMany" && single(val, f.Type) {
			d.src.one[p] = true
			s := reflect.MakeSlice(f.Type, 1, 1)
			d.value(val, s.Index(0), p)
			v.Field(fi).Set(s)
			continue
		}
		d.value(val, v.Field(fi), p)
	}
}

// dict decodes a mapping with keys of the user's choosing (expect.claims)
// into a map from string; each entry's path is path.KEY.
func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.mistyped(d.line(n), path, "want a mapping, got "+kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("scenario decoder: map keys must be strings")
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := path + "." + k.Value
		if k.Kind != yaml.ScalarNode {
			d.problem(d.line(k), path, "want a single value as key, got "+kindName(k), "")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(d.line(k), p, fmt.Sprintf("written twice (first on line %d)", first), "each key once")
			continue
		}
		seen[k.Value] = d.line(k)
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(val, e, p)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

// single reports whether node n is the single form of a oneOrMany field of
// type t ([]T): a mapping for []struct, a list of non-lists for [][]T.
func single(n *yaml.Node, t reflect.Type) bool {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		return n.Kind == yaml.MappingNode
	}
	if t.Elem().Kind() != reflect.Slice || len(n.Content) == 0 {
		return false
	}
	return deref(n.Content[0]).Kind != yaml.SequenceNode
}

// deref is the node an alias (*name) stands for, or n itself.
func deref(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.mistyped(d.line(n), path, "want a single value, got "+kindName(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if err != nil {
			d.mistyped(d.line(n), path, fmt.Sprintf("want a whole number, got %q", n.Value))
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			d.mistyped(d.line(n), path, fmt.Sprintf("want a number, got %q", n.Value))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if err := n.Decode(&b); err != nil {
			d.mistyped(d.line(n), path, fmt.Sprintf("want true or false, got %q", n.Value))
			return
		}
		v.SetBool(b)
	default:
		panic("scenario decoder: unsupported field kind " + v.Kind().String())
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	default:
		return "something else"
	}
}

// Marshal writes the scenario, defaults filled in, as YAML: what a run records
// as results/<run>/scenario.yaml.
func (s *Scenario) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("marshal scenario: %w", err)
	}
	return b.Bytes(), enc.Close()
}
