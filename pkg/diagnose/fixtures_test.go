package diagnose

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// loadObjects decodes every document of a recorded multi-document YAML file
// under testdata into typed API objects.
func loadObjects(t *testing.T, name string) []runtime.Object {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufioReader(raw))
	var out []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		out = append(out, obj)
	}
	return out
}

// fixture is a recorded file split by type.
type fixture struct {
	configMaps map[string]*corev1.ConfigMap
	daemonSets []appsv1.DaemonSet
	pods       []corev1.Pod
	objects    []runtime.Object
}

func loadFixture(t *testing.T, name string) fixture {
	t.Helper()
	f := fixture{configMaps: map[string]*corev1.ConfigMap{}}
	for _, o := range loadObjects(t, name) {
		f.objects = append(f.objects, o)
		switch v := o.(type) {
		case *corev1.ConfigMap:
			f.configMaps[v.Name] = v
		case *appsv1.DaemonSet:
			f.daemonSets = append(f.daemonSets, *v)
		case *corev1.Pod:
			f.pods = append(f.pods, *v)
		}
	}
	return f
}

func (f fixture) daemonSet(name string) *appsv1.DaemonSet {
	for i := range f.daemonSets {
		if f.daemonSets[i].Name == name {
			return &f.daemonSets[i]
		}
	}
	return nil
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
