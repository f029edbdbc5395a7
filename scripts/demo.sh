#!/usr/bin/env bash
# The main job: set up the machine, build lxcri, start a private containerd and a throw-away ZFS
# pool (a file under zfs-fuse where the kernel has no ZFS), build and import a busybox image, and
# run containers through lxcri, showing that each is a real LXC container whose root filesystem
# is a ZFS clone of its image's base dataset. Stops everything and leaves nothing behind, also
# when interrupted.
#   scripts/demo.sh            containers on ZFS clones
#   scripts/demo.sh --no-zfs   containers on containerd's own mounts (no [zfs] in the config)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LXCRI_ROOT"

use_zfs=1
case "${1:-}" in
"") ;;
--no-zfs) use_zfs=0 ;;
-h | --help)
    sed -n '2,8p' "$0"
    exit 0
    ;;
*) die "unknown argument '$1': use --no-zfs or nothing" ;;
esac

[[ $(id -u) -eq 0 ]] || die "run as root: containerd, LXC and ZFS need it"

log "1/7 setting up the machine (Debian packages, containerd versions)"
scripts/setup.sh
log "2/7 building the shim, the lxcri CLI and the static init"
scripts/build.sh >/dev/null
bin="$LXCRI_ROOT/target/release"

log "3/7 starting a private containerd (lxcri's shim first on its PATH)"
ns=lxcri-demo
containerd_up lxcri-demo "$ns" "$bin"
trap 'containerd_down; zfs_down' EXIT

cfg="$work/lxcri.toml"
if ((use_zfs)); then
    log "4/7 a ZFS pool on a 1 GB sparse file, and the lxcri config that puts rootfs on it"
    zfs_up lxcri-demo 1G
    cat >"$cfg" <<EOF
[zfs]
dataset = "$zfs_pool/lxcri"
mount_root = "$zfs_dir/root"
EOF
else
    log "4/7 no ZFS (--no-zfs): an empty lxcri config, containers use containerd's mounts"
    : >"$cfg"
fi
echo "--- $cfg"
cat "$cfg"
lxcri_run() { ctr_ run --runtime io.containerd.lxcri.v2 --runtime-config-path "$cfg" "$@"; }

log "5/7 building a busybox image with 'lxcri image build' and importing it"
"$bin/lxcri" image build --name local/busybox:latest --busybox --cmd /bin/sh -o "$work/busybox.tar"
ctr_ images import "$work/busybox.tar"

log "6/7 ctr run --rm --runtime io.containerd.lxcri.v2: output, then the exit status"
set +e
lxcri_run --rm local/busybox:latest demo-hello \
    sh -c 'echo "hello from PID $$ in an LXC container named $(hostname), / is $(awk "\$5 == \"/\" {print \$9, \$10}" /proc/self/mountinfo)"; echo "this goes to stderr" >&2; exit 42'
status=$?
set -e
echo "ctr exited with status $status (the container's 'exit 42')"
[[ $status -eq 42 ]] || die "expected status 42"

log "7/7 two detached containers, seen by containerd, by LXC's own tools and by zfs"
lxcri_run -d --memory-limit 67108864 local/busybox:latest demo-sleep sleep 300
lxcri_run -d --annotation io.lxcri.zfs.quota=256M local/busybox:latest demo-sleep2 sleep 300
ctr_ task ls
echo "--- lxc-ls -P /run/lxcri/$ns -f"
lxc-ls -P "/run/lxcri/$ns" -f
echo "--- lxc-info -P /run/lxcri/$ns -n demo-sleep"
lxc-info -P "/run/lxcri/$ns" -n demo-sleep
pid=$(ctr_ task ls | awk '$1=="demo-sleep"{print $2}')
echo "--- /proc/$pid/cgroup (memory limit from --memory-limit):"
grep memory "/proc/$pid/cgroup" || true
if ((use_zfs)); then
    echo "--- zfs list -r -o name,origin,used,refquota $zfs_pool/lxcri: each container a clone of the image's base"
    zfs list -r -o name,origin,used,refquota "$zfs_pool/lxcri"
    echo "--- lxcri layers ls"
    LXCRI_CONFIG="$cfg" "$bin/lxcri" layers ls
fi
for c in demo-sleep demo-sleep2; do ctr_ task kill -s SIGKILL "$c"; done
for c in demo-sleep demo-sleep2; do
    for _ in $(seq 50); do ctr_ task ls | grep -q "$c.*STOPPED" && break; sleep 0.1; done
    ctr_ task delete "$c"
    ctr_ container rm "$c"
done

left=""
for c in demo-sleep demo-sleep2; do
    [[ -e "/run/lxcri/$ns/$c" ]] && left="$left /run/lxcri/$ns/$c"
    grep -q "$c" /proc/self/mountinfo && left="$left mounts($c)"
    ls -d /sys/fs/cgroup/*/"$ns/$c" >/dev/null 2>&1 && left="$left cgroups($c)"
done
if ((use_zfs)); then
    echo "--- after delete: zfs list -r -o name,origin,used $zfs_pool/lxcri (clones destroyed, the base kept for the next container)"
    zfs list -r -o name,origin,used "$zfs_pool/lxcri"
    clones=$(zfs list -H -r -o name "$zfs_pool/lxcri/containers" | tail -n +2)
    [[ -z "$clones" ]] || left="$left clones($clones)"
fi
[[ -z "$left" ]] || die "left behind:$left"
if ((use_zfs)); then
    log "done: the containers ran as LXC containers on ZFS clones; nothing of them is left (the pool goes now)"
else
    log "done: the containers ran as LXC containers; nothing is left behind"
fi
