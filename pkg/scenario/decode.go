package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// source remembers where each field of a scenario was written.
type source struct {
	file  string
	lines map[string]int  // field path → line
	one   map[string]bool // oneOrMany fields written in their single form
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
func Parse(file string, data []byte) (*Scenario, error) {
	s, probs := decode(file, data)
	if len(probs) > 0 {
		return nil, probs.sorted()
	}
	s.setDefaults()
	if probs := s.validate(); len(probs) > 0 {
		return nil, probs.sorted()
	}
	return s, nil
}

func decode(file string, data []byte) (*Scenario, Problems) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{File: file, Msg: "empty file; want a Scenario"}}
		}
		return nil, Problems{yamlProblem(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Problems{{File: file, Line: extra.Line, Msg: "more than one YAML document; want one Scenario per file"}}
	}
	d := &decoder{src: source{file: file, lines: map[string]int{}, one: map[string]bool{}}}
	s := &Scenario{}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	d.value(doc, reflect.ValueOf(s).Elem(), "")
	s.src = d.src
	s.Expect.src = d.src
	return s, d.probs
}

// yamlProblem turns a parser error ("yaml: line 3: ...") into a Problem.
func yamlProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ":"); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, strings.TrimSpace(after)
			}
		}
	}
	return Problem{File: file, Line: line, Msg: "not valid YAML: " + msg}
}

// decoder walks YAML nodes into Go values strictly: unknown fields, wrong
// kinds and bad scalars are problems, all collected, each with its line.
type decoder struct {
	src   source
	probs Problems
}

func (d *decoder) problem(line int, path, msg, valid string) {
	d.probs = append(d.probs, Problem{File: d.src.file, Line: line, Field: path, Msg: msg, Valid: valid})
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.src.lines[path] = n.Line
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the zero value, defaulted later
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.problem(n.Line, path, "want a single value, got "+kindName(n), "")
			return
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.problem(n.Line, path, err.Error(), "")
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
			d.problem(n.Line, path, "want a list, got "+kindName(n), "")
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
		d.problem(n.Line, path, "want a mapping of fields, got "+kindName(n), "")
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
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(k.Line, p, fmt.Sprintf("written twice (first on line %d)", first), "each field once")
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := fields[k.Value]
		if !ok {
			d.problem(k.Line, p, "unknown field", oneOf(names))
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
		d.problem(n.Line, path, "want a mapping, got "+kindName(n), "")
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
			d.problem(k.Line, path, "want a single value as key, got "+kindName(k), "")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(k.Line, p, fmt.Sprintf("written twice (first on line %d)", first), "each key once")
			continue
		}
		seen[k.Value] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(val, e, p)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

// single reports whether node n is the single form of a oneOrMany field of
// type t ([]T): a mapping for []struct, a list of non-lists for [][]T.
func single(n *yaml.Node, t reflect.Type) bool {
	if n.Kind != yaml.SequenceNode {
		return n.Kind == yaml.MappingNode
	}
	if t.Elem().Kind() != reflect.Slice || len(n.Content) == 0 {
		return false
	}
	return n.Content[0].Kind != yaml.SequenceNode
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.problem(n.Line, path, "want a single value, got "+kindName(n), "")
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if err != nil {
			d.problem(n.Line, path, fmt.Sprintf("want a whole number, got %q", n.Value), "")
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			d.problem(n.Line, path, fmt.Sprintf("want a number, got %q", n.Value), "")
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if err := n.Decode(&b); err != nil {
			d.problem(n.Line, path, fmt.Sprintf("want true or false, got %q", n.Value), "")
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
