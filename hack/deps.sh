#!/usr/bin/env bash
# Prepares a fresh Debian machine for the lab, idempotently, and says what it did:
#   1. installs the Debian packages of hack/apt-packages.txt, and docker.io where
#      no Docker daemon is installed (a CI runner's docker-ce conflicts with
#      docker.io; a fresh lab machine has a docker client but no dockerd);
#      a package the distribution does not have (an Ubuntu runner has no
#      `chromium` package) is named and skipped;
#   2. when `docker run --privileged` cannot work (the host's bounding set lacks
#      CAP_SYS_RESOURCE, see docs/offline-images.md), builds and registers the
#      labrun-runc wrapper as Docker's default runtime;
#   3. starts dockerd in the background when none runs, and waits for `docker info`;
#   4. loads the kernel modules the axes use, where the kernel has modules
#      (hack/kernel-modules.sh: IPVS, openvswitch); hostcheck says what is present.
set -euo pipefail
cd "$(dirname "$0")/.."

changed=0
say() { printf 'deps: %s\n' "$*" >&2; }
did() { say "$*"; changed=1; }
[ "$(id -u)" = 0 ] || { say "must run as root (apt-get, dockerd, network namespaces)"; exit 1; }

# 1. Packages.
mapfile -t want < <(grep -vE '^\s*(#|$)' hack/apt-packages.txt)
command -v dockerd >/dev/null 2>&1 || want=(docker.io "${want[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # apt-get update exits 0 when a mirror fails to answer, and every package
  # would then look absent from the distribution: fail on any error, after
  # a few tries (the mirror is the one way packages reach this machine).
  for try in 1 2 3; do
    apt-get update -qq --error-on=any >/dev/null && break
    [ $try = 3 ] && { say "apt-get update failed 3 times: the Debian mirror of /etc/apt/sources.list does not answer"; exit 1; }
    say "apt-get update failed (try $try of 3); again in 5 s"; sleep 5
  done
  installable=()
  for p in "${missing[@]}"; do
    # Not `apt-cache policy | grep -q`: grep quits at the match, apt-cache
    # dies of SIGPIPE and pipefail turns the match into "no such package".
    policy=$(apt-cache policy "$p" 2>/dev/null || true)
    if [[ $policy == *"Candidate: "[^\(]* ]]; then
      installable+=("$p")
    else
      say "skipped $p: this distribution has no such package (hack/apt-packages.txt says what needs it)"
    fi
  done
  if [ ${#installable[@]} -gt 0 ]; then
    say "installing ${installable[*]} (apt-get)"
    apt-get install -y -qq --no-install-recommends "${installable[@]}" >/dev/null
    did "installed ${installable[*]}"
  fi
fi

# 2. The wrapper runtime, only where the bounding set lacks CAP_SYS_RESOURCE (bit 24).
bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
need_wrapper=0
(( (0x$bnd >> 24) & 1 )) || need_wrapper=1
daemon_json=/etc/docker/daemon.json
restart_dockerd=0
if [ $need_wrapper = 1 ]; then
  bin=/usr/local/bin/labrun-runc
  tmp=$(mktemp)
  CGO_ENABLED=0 go build -trimpath -o "$tmp" ./cmd/labrun-runc
  if ! cmp -s "$tmp" "$bin" 2>/dev/null; then
    install -m 0755 "$tmp" "$bin"
    did "installed $bin (drops capabilities the host cannot grant, clamps oom_score_adj and rlimits)"
  fi
  rm -f "$tmp"
  want_json='{
  "runtimes": {"labrun-runc": {"path": "/usr/local/bin/labrun-runc"}},
  "default-runtime": "labrun-runc"
}'
  if [ ! -f "$daemon_json" ] || ! grep -q '"default-runtime": "labrun-runc"' "$daemon_json"; then
    if [ -s "$daemon_json" ] && ! grep -q labrun-runc "$daemon_json"; then
      cp "$daemon_json" "$daemon_json.labrun-backup"
      say "kept the previous $daemon_json as $daemon_json.labrun-backup"
    fi
    mkdir -p /etc/docker
    printf '%s\n' "$want_json" >"$daemon_json"
    did "registered labrun-runc as Docker's default runtime in $daemon_json"
    restart_dockerd=1
  fi
fi

# 3. dockerd.
docker_ok() { timeout 10 docker info >/dev/null 2>&1; }
if docker_ok && [ $restart_dockerd = 1 ]; then
  say "restarting dockerd to load $daemon_json"
  pkill -TERM -x dockerd || true
  for _ in $(seq 50); do pgrep -x dockerd >/dev/null || break; sleep 0.2; done
fi
if ! docker_ok; then
  mkdir -p /var/log
  setsid nohup "$(command -v dockerd || echo /usr/sbin/dockerd)" >/var/log/labrun-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 150); do docker_ok && break; sleep 0.2; done
  docker_ok || { say "dockerd did not answer within 30 s; see /var/log/labrun-dockerd.log"; tail -20 /var/log/labrun-dockerd.log >&2; exit 1; }
  did "started dockerd (log: /var/log/labrun-dockerd.log)"
fi

# Every kind node runs systemd, kubelet and containerd, each holding inotify
# instances: with the kernel's default of 128 per user, a few clusters exhaust
# them and new nodes exit before systemd starts (kind: "could not find a log
# line that matches Reached target"). Raise the limits as kind's known-issues
# page advises.
for kv in fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288; do
  k=${kv%=*} v=${kv#*=}
  if [ "$(sysctl -n "$k" 2>/dev/null || echo 0)" -lt "$v" ]; then
    sysctl -qw "$kv" && did "raised $kv (kind nodes need inotify instances)"
  fi
done

# Check the one thing the lab needs from Docker: privileged containers. (Only
# with an image of the lab's own: none can be pulled; `images build` makes it.)
base=labrun/debian:bookworm-node
if docker image inspect "$base" >/dev/null 2>&1; then
  if ! out=$(docker run --rm --privileged --entrypoint /bin/true "$base" 2>&1); then
    say "docker run --privileged fails: $out"
    say "the labrun-runc wrapper should prevent this: check $daemon_json and /var/log/labrun-dockerd.log"
    exit 1
  fi
fi

# 4. Kernel modules (none on a kernel that loads no modules, as here).
hack/kernel-modules.sh

[ $changed = 1 ] || say "nothing to do: packages installed, Docker running$([ $need_wrapper = 1 ] && echo ' with labrun-runc')"
