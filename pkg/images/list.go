package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Row is one image as `images list` shows it.
type Row struct {
	Ref    string
	Size   string
	Status string // present | missing | stale (present, built from other inputs)
	Where  string // docker | cache (a tarball in the artifact cache)
	Source Source // built | pulled | imported
	From   string
}

// List shows the node image, its preloaded images and the lab images for one
// Kubernetes version, without building anything.
func List(ctx context.Context, o Options) ([]Row, error) {
	p, r, err := Prepare(ctx, &o)
	if err != nil {
		return nil, err
	}
	roots, err := p.Roots(o.Addons)
	if err != nil {
		return nil, err
	}
	known := true
	for _, s := range order(roots) {
		if s.Always {
			known = r.latest(s) && known
			continue
		}
		r.keyOf(s)
	}
	var rows []Row
	for _, s := range order(roots) {
		if s.Image == "" {
			continue
		}
		row := Row{Ref: s.Image, Where: "docker", Source: SourceBuilt, From: s.From, Status: "missing", Size: "-"}
		if info, ok := r.Docker.Inspect(ctx, s.Image); ok {
			row.Size, row.Status = humanBytes(info.Size), "present"
			if info.Key != s.Key() || !known {
				row.Status = "stale"
			}
		}
		rows = append(rows, row)
	}
	for _, s := range append(append([]*Step{}, p.Components...), p.Lab...) {
		row := Row{Ref: s.Name, Where: "cache", Source: SourceBuilt, From: s.From, Status: "missing", Size: "-"}
		if ref, err := ImageRef(s); err == nil {
			row.Ref = ref
		}
		if st, err := os.Stat(ImageTar(s)); err == nil {
			row.Status, row.Size = "present", humanBytes(st.Size())
		} else if matches, _ := filepath.Glob(filepath.Join(r.dirOf(s), "*", tarFileName)); len(matches) > 0 {
			row.Status = "stale"
		}
		rows = append(rows, row)
	}
	published, err := publishedRows(o.Cache)
	if err != nil {
		return nil, err
	}
	return append(rows, published...), nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d kB", n>>10)
	}
}
