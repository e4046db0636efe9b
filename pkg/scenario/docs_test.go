package scenario

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// leafFields lists the dotted paths of every leaf field of the schema, as the
// reference writes them: lists of entries get "[]", except a oneOrMany field
// (load, chaos), which is documented in its single form. A type with its own
// YAML text (Rate, Duration, Amount) is one field.
func leafFields(typ reflect.Type, path string) []string {
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct || typ.PkgPath() != reflect.TypeFor[Scenario]().PkgPath() ||
		reflect.PointerTo(typ).Implements(unmarshalerType) {
		return []string{path}
	}
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			continue
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		t := f.Type
		oneOrMany := f.Tag.Get("labrun") == "oneOrMany"
		if t.Kind() == reflect.Slice {
			t = t.Elem()
			if oneOrMany && t.Kind() == reflect.Slice {
				t = t.Elem() // names: a list of lists of names
			}
			if t.Kind() == reflect.Struct && (!oneOrMany || f.Type.Elem().Kind() == reflect.Slice) {
				p += "[]"
			}
		}
		out = append(out, leafFields(t, p)...)
	}
	return out
}

// docs/scenario-reference.md must describe every field of the schema.
func TestDocsDescribeEveryField(t *testing.T) {
	doc, err := os.ReadFile("../../docs/scenario-reference.md")
	if err != nil {
		t.Fatal(err)
	}
	fields := leafFields(reflect.TypeFor[Scenario](), "")
	if len(fields) < 20 {
		t.Fatalf("only %d fields found: %v", len(fields), fields)
	}
	for _, f := range fields {
		if !strings.Contains(string(doc), "| `"+f+"` |") {
			t.Errorf("docs/scenario-reference.md has no row for %s", f)
		}
	}
}
