package probe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"labrun.dev/labrun/pkg/sample"
)

func TestJVMOutcome(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply jvmReply
		want  sample.Result
		err   string
	}{
		{"answers", jvmReply{Answers: 2, TookUS: 900}, sample.OK, ""},
		{"empty", jvmReply{}, sample.NXDomain, "no addresses"},
		{"nxdomain", jvmReply{Exception: "java.net.UnknownHostException", Error: "x.invalid: Name or service not known"}, sample.NXDomain, "java.net.UnknownHostException: x.invalid: Name or service not known"},
		{"timeout", jvmReply{Exception: "java.net.UnknownHostException", Error: "svc: Temporary failure in name resolution", TookUS: 5_000_000}, sample.Timeout, "java.net.UnknownHostException: svc: Temporary failure in name resolution"},
		{"servfail", jvmReply{Exception: "java.net.UnknownHostException", Error: "svc: Temporary failure in name resolution", TookUS: 3000}, sample.Error, "java.net.UnknownHostException: svc: Temporary failure in name resolution"},
		{"other exception", jvmReply{Exception: "java.lang.SecurityException", Error: "no"}, sample.Error, "java.lang.SecurityException: no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := jvmOutcome(tc.reply)
			if got.Result != tc.want || got.Err != tc.err {
				t.Fatalf("jvmOutcome(%+v) = %s %q, want %s %q", tc.reply, got.Result, got.Err, tc.want, tc.err)
			}
			if got.Took != time.Duration(tc.reply.TookUS)*time.Microsecond {
				t.Fatalf("took %v", got.Took)
			}
		})
	}
}

func TestJVMCacheValidate(t *testing.T) {
	for _, tc := range []struct {
		cache string
		ok    bool
	}{{JVMCacheDefaults, true}, {JVMCacheOff, true}, {"", false}, {"30s", false}} {
		c := Defaults()
		c.Backend = JVM
		c.Names = []Name{{Name: "localhost"}}
		c.JVMCache = tc.cache
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("JVMCache %q: Validate() = %v, want ok=%v", tc.cache, err, tc.ok)
		}
	}
}

// TestJVMWorker compiles LabProbe.java with the host's javac, when there is one.
func TestJVMWorker(t *testing.T) {
	javac, err := exec.LookPath("javac")
	if err != nil {
		t.Skip("no javac")
	}
	dir := t.TempDir()
	if out, err := exec.Command(javac, "-d", dir, filepath.Join("jvm", "LabProbe.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v: %s", err, out)
	}
	for _, cache := range []string{JVMCacheDefaults, JVMCacheOff} {
		cfg := Defaults()
		cfg.Backend, cfg.JVMClassPath, cfg.JVMCache, cfg.Concurrency = JVM, dir, cache, 1
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if out := r.Lookup(context.Background(), "localhost"); out.Result != sample.OK || out.Answers == 0 {
			t.Errorf("%s: localhost: %+v", cache, out)
		}
		if out := r.Lookup(context.Background(), "no-such-name.invalid"); out.Result != sample.NXDomain {
			t.Errorf("%s: .invalid: %+v", cache, out)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
	_ = os.Remove(dir)
}
