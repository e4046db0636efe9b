package site

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, installed by make deps
// (hack/apt-packages.txt); the test never downloads a browser.
const chromiumPath = "/usr/bin/chromium"

// pageFacts is what a page shows the crawler.
type pageFacts struct {
	Links  []string `json:"links"`
	IDs    []string `json:"ids"`
	Images []struct {
		Src          string `json:"src"`
		NaturalWidth int    `json:"naturalWidth"`
	} `json:"images"`
}

const factsJS = `({
  links: Array.from(document.querySelectorAll("a[href]"), a => a.href),
  ids: Array.from(document.querySelectorAll("[id]"), e => e.id),
  images: Array.from(document.images, i => ({src: i.currentSrc || i.src, naturalWidth: i.complete ? i.naturalWidth : 0})),
})`

// browserLog collects, from the browser's events, everything that makes a
// page fail: console errors, exceptions, failed requests and requests that
// leave the site.
type browserLog struct {
	host string
	mu   sync.Mutex
	page string
	errs []string
}

func (b *browserLog) add(format string, args ...any) {
	b.errs = append(b.errs, b.page+": "+fmt.Sprintf(format, args...))
}

func (b *browserLog) on(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			b.add("console.%s %s", e.Type, argsText(e.Args))
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		b.add("exception at %s:%d: %s", d.URL, d.LineNumber, text)
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError {
			b.add("browser log (%s): %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		u, err := url.Parse(e.Request.URL)
		if err != nil || (u.Scheme != "data" && u.Host != b.host) {
			b.add("request leaves the site: %s", e.Request.URL)
		}
	case *network.EventLoadingFailed:
		b.add("request failed: %s %s", e.Type, e.ErrorText)
	case *network.EventResponseReceived:
		if e.Response.Status >= 400 {
			b.add("HTTP %d for %s", e.Response.Status, e.Response.URL)
		}
	}
}

func argsText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
	}
	return strings.Join(parts, " ")
}

func TestIntegrationSiteInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: drives a headless chromium over the site (make test-integration)")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Debian's chromium at %s (%v): run `make deps`, which installs hack/apt-packages.txt", chromiumPath, err)
	}
	root := t.TempDir()
	out := filepath.Join(root, "site")
	// Every page of every kind must be reached, and sorting by date puts
	// the oldest run first.
	oldest := runOld
	want := []string{"/index.html", "/claims.html", "/latest.html", "/runs/" + runA1 + "/index.html", "/runs/" + runB + "/index.html",
		"/cells/default_glibc_none.html"}
	// LABRUN_SITE_RUNS=results/ checks a site of real runs the same way.
	if real := os.Getenv("LABRUN_SITE_RUNS"); real != "" {
		res := build(t, out, real)
		t.Logf("site of %d real runs from %s", len(res.Index.Runs), real)
		want = []string{"/index.html", "/claims.html", "/latest.html"}
		for _, r := range res.Index.Runs {
			if oldest == runOld || r.Date.Before(runDate(res.Index, oldest)) {
				oldest = r.Name
			}
			want = append(want, "/runs/"+r.Name+"/index.html")
		}
	} else {
		writeFixture(t, filepath.Join(root, "results"))
		res := build(t, out, filepath.Join(root, "results"))
		if len(res.Index.Runs) != 5 {
			t.Fatalf("%d runs in the site, want 5", len(res.Index.Runs))
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.FileServer(http.Dir(out))}}
	srv.Start()
	defer srv.Close()
	base, _ := url.Parse(srv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	blog := &browserLog{host: base.Host}
	if err := chromedp.Listen(bctx, blog.on); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}

	shots := os.Getenv("LABRUN_SCREENSHOTS")
	visited := map[string]pageFacts{}
	queue := []string{"/index.html"}
	var assets []string
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if _, ok := visited[path]; ok {
			continue
		}
		blog.mu.Lock()
		blog.page = path
		blog.mu.Unlock()
		if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+path)); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		facts, err := chromedp.Run(bctx, chromedp.Evaluate[pageFacts](factsJS))
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		visited[path] = facts
		for _, img := range facts.Images {
			if img.NaturalWidth == 0 {
				t.Errorf("%s: image %s did not load", path, trimData(img.Src))
			}
		}
		for _, l := range facts.Links {
			u, err := url.Parse(l)
			if err != nil || u.Host != base.Host {
				t.Errorf("%s: link %s leaves the site", path, l)
				continue
			}
			if strings.HasSuffix(u.Path, ".html") || strings.HasSuffix(u.Path, "/") {
				queue = append(queue, u.Path)
			} else if !slices.Contains(assets, u.Path) {
				assets = append(assets, u.Path)
			}
		}
		if shots != "" {
			if name := screenshotName(path); name != "" {
				png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatalf("screenshot %s: %v", path, err)
				}
				if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	// Links to files other than pages (index.json, summary.json, plots).
	for _, p := range assets {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Errorf("link %s: %v", p, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("link %s: HTTP %d", p, resp.StatusCode)
		}
	}
	// Every fragment names an element of its page.
	for path, f := range visited {
		for _, l := range f.Links {
			u, _ := url.Parse(l)
			if target, ok := visited[u.Path]; ok && u.Fragment != "" && !slices.Contains(target.IDs, u.Fragment) {
				t.Errorf("%s: link %s: no element with id %q", path, l, u.Fragment)
			}
		}
	}
	// The sorting script runs: the date column sorts oldest first on a click.
	blog.mu.Lock()
	blog.page = "/index.html (sorting)"
	blog.mu.Unlock()
	first, err := chromedp.Run(bctx, func(ctx context.Context, tg *chromedp.Target) (string, error) {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/index.html"), chromedp.Click(`#runs th`)); err != nil {
			return "", err
		}
		return chromedp.Evaluate[string](`document.querySelector("#runs tbody tr td:nth-child(2)").textContent.trim()`)(ctx, tg)
	})
	if err != nil {
		t.Fatalf("sort the runs: %v", err)
	}
	if first != oldest {
		t.Errorf("after sorting by date, the first row is %q, want the oldest, %s", first, oldest)
	}

	blog.mu.Lock()
	defer blog.mu.Unlock()
	for _, e := range blog.errs {
		t.Error(e)
	}
	for _, w := range want {
		if _, ok := visited[w]; !ok {
			t.Errorf("the crawl never reached %s", w)
		}
	}
	t.Logf("%d pages and %d other files crawled, all in-site; %d browser problems", len(visited), len(assets), len(blog.errs))
}

// screenshotName names the screenshot of the pages docs/site.md shows.
func screenshotName(path string) string {
	switch {
	case path == "/index.html":
		return "site-index.png"
	case path == "/claims.html":
		return "site-claims.png"
	case path == "/latest.html":
		return "site-latest.png"
	case path == "/cells/default_glibc_single-request-reopen.html":
		return "site-cell-history.png"
	case path == "/runs/"+runA2+"/index.html":
		return "site-run.png"
	}
	return ""
}

func trimData(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// runDate is the date of a run of the index (the zero time for none).
func runDate(idx *Index, name string) time.Time {
	for _, r := range idx.Runs {
		if r.Name == name {
			return r.Date
		}
	}
	return time.Time{}
}
