#!/usr/bin/env bash
# The main job: set up the machine, build lxcri, start a private containerd, build and import a
# busybox image, and run containers through lxcri, showing that each is a real LXC container.
# Stops everything and leaves nothing behind, also when interrupted.
#   scripts/demo.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LXCRI_ROOT"

[[ $(id -u) -eq 0 ]] || die "run as root: containerd and LXC need it"

log "1/6 setting up the machine (Debian packages, containerd versions)"
scripts/setup.sh
log "2/6 building the shim, the lxcri CLI and the static init"
scripts/build.sh >/dev/null
bin="$LXCRI_ROOT/target/release"

log "3/6 starting a private containerd (lxcri's shim first on its PATH)"
ns=lxcri-demo
containerd_up lxcri-demo "$ns" "$bin"

log "4/6 building a busybox image with 'lxcri image build' and importing it"
"$bin/lxcri" image build --name local/busybox:latest --busybox --cmd /bin/sh -o "$work/busybox.tar"
ctr_ images import "$work/busybox.tar"

log "5/6 ctr run --rm --runtime io.containerd.lxcri.v2: output, then the exit status"
set +e
ctr_ run --rm --runtime io.containerd.lxcri.v2 local/busybox:latest demo-hello \
    sh -c 'echo "hello from PID $$ in an LXC container named $(hostname)"; echo "this goes to stderr" >&2; exit 42'
status=$?
set -e
echo "ctr exited with status $status (the container's 'exit 42')"
[[ $status -eq 42 ]] || die "expected status 42"

log "6/6 a detached container, seen by containerd and by LXC's own tools"
ctr_ run -d --runtime io.containerd.lxcri.v2 --memory-limit 67108864 local/busybox:latest demo-sleep sleep 300
ctr_ task ls
echo "--- lxc-ls -P /run/lxcri/$ns -f"
lxc-ls -P "/run/lxcri/$ns" -f
echo "--- lxc-info -P /run/lxcri/$ns -n demo-sleep"
lxc-info -P "/run/lxcri/$ns" -n demo-sleep
pid=$(ctr_ task ls | awk '$1=="demo-sleep"{print $2}')
echo "--- /proc/$pid/cgroup (memory limit from --memory-limit):"
grep memory "/proc/$pid/cgroup" || true
ctr_ task kill -s SIGKILL demo-sleep
for _ in $(seq 50); do ctr_ task ls | grep -q 'demo-sleep.*STOPPED' && break; sleep 0.1; done
ctr_ task delete demo-sleep
ctr_ container rm demo-sleep

left=""
[[ -e "/run/lxcri/$ns/demo-sleep" ]] && left="$left /run/lxcri/$ns/demo-sleep"
grep -q demo-sleep /proc/self/mountinfo && left="$left mounts"
ls -d /sys/fs/cgroup/*/"$ns"/demo-sleep >/dev/null 2>&1 && left="$left cgroups"
[[ -z "$left" ]] || die "left behind:$left"
log "done: both containers ran as LXC containers; nothing is left behind"
