package diagnose

import (
	"reflect"
	"testing"
)

func TestWithCustom(t *testing.T) {
	c := readCorefile(t, "aks.Corefile")
	if !reflect.DeepEqual(c.Imports, []string{"custom/*.server"}) || !reflect.DeepEqual(c.Servers[0].Imports, []string{"custom/*.override"}) {
		t.Fatalf("imports: %q, %q", c.Imports, c.Servers[0].Imports)
	}
	got := WithCustom(c, loadFixture(t, "corefile/aks-custom.yaml").configMaps[CustomCorefileMap])
	if len(got.Servers) != 2 || len(got.Problems) != 0 {
		t.Fatalf("servers %+v, problems %q", got.Servers, got.Problems)
	}
	main, extra := got.Servers[0], got.Servers[1]
	if main.Autopath != "@kubernetes" || main.PodsMode != "insecure" {
		t.Errorf("the override is not merged into the main block: %+v", main)
	}
	if extra.From != "ConfigMap kube-system/coredns-custom key test.server" || !reflect.DeepEqual(extra.Forward, []Forward{{From: ".", To: []string{"10.0.0.53"}}}) {
		t.Errorf("the imported server: %+v", extra)
	}
	// autopath without pods verified is a backfire Predict names.
	f := Facts{CoreDNS: &got}
	if b := Predict(f).Backfires; len(b) != 2 {
		t.Errorf("backfires: %q", b)
	}
	if c.Servers[0].Autopath != "" {
		t.Error("WithCustom changed the Corefile it was given")
	}
	if WithCustom(c, nil).Servers[0].Autopath != "" {
		t.Error("no ConfigMap must change nothing")
	}
}
