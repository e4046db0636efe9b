package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestImportStoresEachTaggedImage(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")

	// One image, named as `docker save` names Docker Hub images (no registry):
	// it is found under the published name too.
	single := filepath.Join(dir, "weave.tar")
	weave, _ := name.NewTag("weaveworks/weave-kube:2.8.1")
	if err := tarball.WriteToFile(single, weave, testImage(t, "weave")); err != nil {
		t.Fatal(err)
	}
	got, err := Import(cache, single)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Source != SourceImported || got[0].From != single || got[0].Ref != "weaveworks/weave-kube:2.8.1" {
		t.Fatalf("Import = %+v", got)
	}
	rec, ok := FindStored(cache, "docker.io/weaveworks/weave-kube:2.8.1")
	if !ok || rec.Source != SourceImported {
		t.Fatalf("FindStored(docker.io/weaveworks/weave-kube:2.8.1) = %+v, %v", rec, ok)
	}
	if _, err := tarball.ImageFromPath(rec.Tarball, &weave); err != nil {
		t.Errorf("stored tarball: %v", err)
	}

	// Two images in one file: each is stored on its own.
	multi := filepath.Join(dir, "calico.tar")
	node, _ := name.NewTag("quay.io/calico/node:v3.31.3")
	cni, _ := name.NewTag("quay.io/calico/cni:v3.31.3")
	if err := tarball.MultiRefWriteToFile(multi, map[name.Reference]v1.Image{node: testImage(t, "node"), cni: testImage(t, "cni")}); err != nil {
		t.Fatal(err)
	}
	got, err = Import(cache, multi)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("Import of two images stored %d", len(got))
	}
	for _, ref := range []name.Tag{node, cni} {
		rec, ok := FindStored(cache, ref.String())
		if !ok {
			t.Errorf("%s not stored", ref)
			continue
		}
		img, err := tarball.ImageFromPath(rec.Tarball, &ref)
		if err != nil {
			t.Errorf("%s: %v", ref, err)
			continue
		}
		if d, _ := img.Digest(); d.String() != rec.Digest {
			t.Errorf("%s: tarball holds %s, record says %s", ref, d, rec.Digest)
		}
	}
	all, _ := StoredImages(cache)
	if len(all) != 3 {
		t.Errorf("StoredImages: %d, want 3", len(all))
	}
}

func TestImportRefusesWhatItCannotName(t *testing.T) {
	dir := t.TempDir()
	notTar := filepath.Join(dir, "x.tar")
	os.WriteFile(notTar, []byte("not a tarball"), 0o644)
	if _, err := Import(filepath.Join(dir, "cache"), notTar); err == nil || !strings.Contains(err.Error(), "not a docker-loadable tarball") {
		t.Errorf("Import of a non-tarball: %v", err)
	}
	untagged := filepath.Join(dir, "untagged.tar")
	d, _ := name.NewDigest("quay.io/x/y@sha256:" + strings.Repeat("0", 64))
	if err := tarball.MultiRefWriteToFile(untagged, map[name.Reference]v1.Image{d: testImage(t, "u")}); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(filepath.Join(dir, "cache"), untagged); err == nil || !strings.Contains(err.Error(), "no repo:tag") {
		t.Errorf("Import of an untagged image: %v", err)
	}
	if all, _ := StoredImages(filepath.Join(dir, "cache")); len(all) != 0 {
		t.Errorf("refused imports stored %d images", len(all))
	}
}

func TestPublishedRowsShowEachImageSource(t *testing.T) {
	cache := t.TempDir()
	file := filepath.Join(t.TempDir(), "node-cache.tar")
	tag, _ := name.NewTag("registry.k8s.io/dns/k8s-dns-node-cache:1.22.28")
	if err := tarball.WriteToFile(file, tag, testImage(t, "node-cache")); err != nil {
		t.Fatal(err)
	}
	extra, _ := name.NewTag("example.org/tools/dig:1")
	extraFile := filepath.Join(t.TempDir(), "dig.tar")
	if err := tarball.WriteToFile(extraFile, extra, testImage(t, "dig")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{file, extraFile} {
		if _, err := Import(cache, f); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := publishedRows(cache)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := LoadPublished()
	if len(rows) != len(list)+1 {
		t.Fatalf("%d rows, want %d published + 1 other import", len(rows), len(list))
	}
	by := map[string]Row{}
	for _, r := range rows {
		by[r.Ref] = r
	}
	if r := by["registry.k8s.io/dns/k8s-dns-node-cache:1.22.28"]; r.Status != "present" || r.Source != SourceImported {
		t.Errorf("imported node-cache row: %+v", r)
	}
	if r := by["example.org/tools/dig:1"]; r.Status != "present" || r.Source != SourceImported {
		t.Errorf("other imported image row: %+v", r)
	}
	if r := by["quay.io/calico/node:v3.31.3"]; r.Status != "missing" || r.Source != SourcePulled || !strings.Contains(r.From, "images pull calico-node") {
		t.Errorf("calico-node row: %+v", r)
	}
	if r := by["registry.k8s.io/dns/k8s-dns-kube-dns:1.22.28"]; r.Status != "missing" || !strings.Contains(r.From, "pinned sha256:df85f1572425") {
		t.Errorf("kube-dns row: %+v", r)
	}
}

func TestStoredFor(t *testing.T) {
	cache := t.TempDir()
	if _, err := StoredFor(cache, "podNetwork=weave"); err == nil || !strings.Contains(err.Error(), "weave-kube (docker.io/weaveworks/weave-kube:2.8.1)") || !strings.Contains(err.Error(), "weave-npc") {
		t.Errorf("nothing stored: %v", err)
	}
	tag, _ := name.NewTag("docker.io/weaveworks/weave-kube:2.8.1")
	f := filepath.Join(t.TempDir(), "weave-kube.tar")
	if err := tarball.WriteToFile(f, tag, testImage(t, "weave-kube")); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(cache, f); err != nil {
		t.Fatal(err)
	}
	got, err := StoredFor(cache, "podNetwork=weave")
	if err == nil || strings.Contains(err.Error(), "weave-kube") || !strings.Contains(err.Error(), "weave-npc") {
		t.Errorf("weave-kube stored, weave-npc not: %v", err)
	}
	if len(got) != 1 || got[0].Ref != "docker.io/weaveworks/weave-kube:2.8.1" {
		t.Errorf("StoredFor = %+v", got)
	}
	if got, err := StoredFor(cache, "podNetwork=default"); err != nil || len(got) != 0 {
		t.Errorf("an axis value needing no published image: %+v, %v", got, err)
	}
}
