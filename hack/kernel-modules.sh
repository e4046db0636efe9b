#!/usr/bin/env bash
# Loads the kernel modules the lab's axes use, where the kernel has them as
# modules and they are not loaded yet: IPVS and its schedulers (kube-proxy
# ipvs), openvswitch (Weave Net's fastdp). On a kernel that loads no modules
# (no /proc/modules, as on the lab's own machines) it does nothing. Whether a
# feature is then present is `labrun hostcheck`'s to say (pkg/hostcheck), never
# this script's: a module that does not load is named, not an error.
# Run as root: by hack/deps.sh (make deps), and by the nightly's plan job.
set -euo pipefail

say() { printf 'kernel-modules: %s\n' "$*" >&2; }
if [ ! -e /proc/modules ]; then
  say "this kernel loads no modules: nothing to load"
  exit 0
fi
if ! command -v modprobe >/dev/null 2>&1; then
  say "no modprobe on this host: nothing loaded"
  exit 0
fi
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh openvswitch; do
  if grep -q "^$m " /proc/modules; then
    continue
  fi
  if modprobe "$m" 2>/dev/null; then
    say "loaded $m (or it is built in)"
  else
    say "cannot load $m: labrun hostcheck says what that leaves out"
  fi
done
