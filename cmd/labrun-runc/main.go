// Command labrun-runc is an OCI runtime wrapper that lets `docker run
// --privileged` work on hosts whose bounding set lacks CAP_SYS_RESOURCE (such as
// this lab's VMs, FACTS.md). runc asks for every capability of a privileged
// container and fails with "unable to apply caps: operation not permitted".
//
// Before handing over to the real runc it rewrites the OCI spec it is given
// (config.json of the bundle on create/run, the --process file on exec):
//   - drops every capability the host cannot grant (not in our bounding set),
//   - clamps oomScoreAdj to >= 0 (it cannot go below 0 without CAP_SYS_RESOURCE),
//   - clamps rlimits to the current hard limits.
//
// Everything else in the spec is kept byte for byte as JSON values. hack/deps.sh
// installs it and registers it as Docker's default runtime.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// realRuncPaths are where Debian's runc package puts runc, in order.
var realRuncPaths = []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"}

func main() {
	if err := rewriteSpec(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "labrun-runc:", err)
		os.Exit(1)
	}
	runc := os.Getenv("LABRUN_REAL_RUNC")
	for _, p := range realRuncPaths {
		if runc != "" {
			break
		}
		if _, err := os.Stat(p); err == nil {
			runc = p
		}
	}
	if runc == "" {
		fmt.Fprintf(os.Stderr, "labrun-runc: no runc in %v (apt-get install runc)\n", realRuncPaths)
		os.Exit(1)
	}
	args := append([]string{runc}, os.Args[1:]...)
	if err := syscall.Exec(runc, args, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "labrun-runc: exec %s: %v\n", runc, err)
		os.Exit(1)
	}
}

// rewriteSpec finds the spec file runc is about to read, if any, and fixes it.
func rewriteSpec(args []string) error {
	cmd, bundle, process := parseArgs(args)
	switch {
	case (cmd == "create" || cmd == "run") && bundle != "":
		return editJSON(bundle+"/config.json", func(spec map[string]any) {
			if p, ok := spec["process"].(map[string]any); ok {
				fixProcess(p)
			}
		})
	case cmd == "exec" && process != "":
		return editJSON(process, fixProcess)
	}
	return nil
}

// parseArgs returns the runc subcommand and the values of --bundle/-b and --process/-p.
func parseArgs(args []string) (cmd, bundle, process string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() string {
			if j := strings.IndexByte(a, '='); j >= 0 {
				return a[j+1:]
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "--bundle" || a == "-b" || strings.HasPrefix(a, "--bundle="):
			bundle = val()
		case a == "--process" || a == "-p" || strings.HasPrefix(a, "--process="):
			process = val()
		case a == "--root" || a == "--log" || a == "--log-format" || a == "--criu" || a == "--console-socket" || a == "--pid-file":
			i++ // skip the flag's value
		case cmd == "" && !strings.HasPrefix(a, "-"):
			cmd = a
		}
	}
	return cmd, bundle, process
}

func editJSON(path string, fix func(map[string]any)) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("parse spec %s: %w", path, err)
	}
	fix(spec)
	out, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode spec %s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

// fixProcess edits an OCI "process" object in place.
func fixProcess(p map[string]any) {
	if caps, ok := p["capabilities"].(map[string]any); ok {
		allowed := boundingSet()
		for set, v := range caps {
			list, ok := v.([]any)
			if !ok {
				continue
			}
			kept := list[:0]
			for _, c := range list {
				if name, ok := c.(string); ok && allowed[name] {
					kept = append(kept, c)
				}
			}
			caps[set] = kept
		}
	}
	if adj, ok := p["oomScoreAdj"].(float64); ok && adj < 0 {
		p["oomScoreAdj"] = 0
	}
	if rl, ok := p["rlimits"].([]any); ok {
		for _, r := range rl {
			m, ok := r.(map[string]any)
			if !ok {
				continue
			}
			res, ok := rlimitResource[fmt.Sprint(m["type"])]
			if !ok {
				continue
			}
			var cur unix.Rlimit
			if unix.Getrlimit(res, &cur) != nil {
				continue
			}
			for _, k := range []string{"hard", "soft"} {
				if v, ok := m[k].(float64); ok && uint64(v) > cur.Max {
					m[k] = cur.Max
				}
			}
		}
	}
}

var rlimitResource = map[string]int{
	"RLIMIT_NOFILE":  unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":   unix.RLIMIT_NPROC,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_CORE":    unix.RLIMIT_CORE,
}

// boundingSet returns the capability names in this process's bounding set.
func boundingSet() map[string]bool {
	set := map[string]bool{}
	for i, name := range capNames {
		if ok, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(i), 0, 0, 0); err == nil && ok == 1 {
			set[name] = true
		}
	}
	return set
}

// capNames is the kernel's capability numbering (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}
