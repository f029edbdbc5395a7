#!/bin/bash
# Runs inside the guest, from the payload disk: run.sh MODE (minimal | systemd). Prepares the
# system the way the users' hosts are (cgroup2 alone with the controllers delegated, shared mount
# propagation, the zfs module), runs the payload's command (/payload/cmd.sh) with a time limit,
# writes its status and the guest's logs to /payload/out, then stops everything cleanly (containerd
# and shims killed, zfs unmounted, pools exported, the payload unmounted) and powers off.
# In minimal mode this script is PID 1; in systemd mode it is lxcri-vm.service's ExecStart.
set -uo pipefail
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mode="${1:-minimal}"

# Run from /run, not from the payload, so that the payload can be unmounted at the end (through
# bash: the initramfs mounts /run noexec).
if [[ "${0}" != /run/lxcri-vm-run.sh ]]; then
    mountpoint -q /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
    cp "$0" /run/lxcri-vm-run.sh
    exec bash /run/lxcri-vm-run.sh "$@"
fi
cd /

say() { printf '[lxcri-vm %s] %s\n' "$(cut -d' ' -f1 /proc/uptime)" "$*" >/dev/console; }
out=/payload/out
mkdir -p "$out"
limit="$(cat /payload/limit 2>/dev/null || echo 600)"

prepare_minimal() {
    mountpoint -q /sys/fs/cgroup || mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
    local c ctrls
    read -ra ctrls </sys/fs/cgroup/cgroup.controllers
    for c in "${ctrls[@]}"; do
        echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || say "cannot enable $c"
    done
    mkdir -p /dev/pts /dev/shm /dev/mqueue
    mountpoint -q /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
    mountpoint -q /dev/shm || mount -t tmpfs -o mode=1777 tmpfs /dev/shm
    mountpoint -q /dev/mqueue || mount -t mqueue mqueue /dev/mqueue
    mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
    mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null
    # systemd makes every mount shared; containerd and LXC expect it.
    mount --make-rshared /
    hostname lxcri-vm
    ip link set lo up
    # The zfs module needs the disks' device nodes and udev's zvol rules.
    /lib/systemd/systemd-udevd --daemon
    udevadm trigger --action=add
    udevadm settle --timeout=30
}

if [[ "$mode" == minimal ]]; then
    prepare_minimal
fi
# /tmp stays on the root disk (not tmpfs): the tests' pool files and images would take the
# guest's memory otherwise.
modprobe zfs || say "modprobe zfs failed"
# /dev/fuse (the spec tests hand it to a container), as on a stock host.
modprobe fuse || say "modprobe fuse failed"

{
    echo "mode=$mode"
    uname -a
    echo "cgroup: $(stat -fc %T /sys/fs/cgroup) controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
    echo "subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
    echo "zfs: $(cat /sys/module/zfs/version 2>/dev/null || echo none)"
    echo "init: $(cat /proc/1/comm)"
} >"$out/guest-info.txt" 2>&1
say "ready after $(cut -d' ' -f1 /proc/uptime) s ($mode mode), running cmd.sh (limit ${limit} s)"

export CI="${CI:-true}" HOME=/root LANG=C.UTF-8
export LXCRI_VM=1 LXCRI_VM_MODE="$mode" LXCRI_BIN_DIR=/payload/bin LXCRI_TEST_CACHE=/payload/cache
rc=0
timeout -k 10 "$limit" bash /payload/cmd.sh >"$out/cmd.log" 2>&1 || rc=$?
echo "$rc" >"$out/rc"
say "cmd.sh exited $rc after $(cut -d' ' -f1 /proc/uptime) s"

# --- logs and a clean stop ---------------------------------------------------------------------
dmesg >"$out/dmesg.log" 2>&1
if [[ "$mode" == systemd ]]; then
    systemctl list-units --failed --all --no-legend --plain >"$out/failed-units.txt" 2>&1
    journalctl -b --no-pager -o short-monotonic >"$out/journal.log" 2>&1
fi
# Whatever the command left running (containerd, shims, monitors, containers) goes now.
pkill -KILL -x containerd 2>/dev/null
pkill -KILL -f containerd-shim 2>/dev/null
pkill -KILL -f lxcri-monitor 2>/dev/null
sleep 1
zfs unmount -a 2>/dev/null
left="$(zpool list -H -o name 2>/dev/null)"
zpool export -a 2>/dev/null || say "zpool export -a failed; pools: $left"
echo "pools at the end: ${left:-none}" >>"$out/guest-info.txt"
sync
cd /
umount /payload || umount -l /payload
say "payload unmounted, powering off"
if [[ "$mode" == minimal ]]; then
    sync
    echo o >/proc/sysrq-trigger
    sleep 30
fi
# systemd mode: a clean power-off through systemd (the unit's own SuccessAction= sits in the wrong
# section of the image's lxcri-vm.service and is ignored by systemd 252).
systemctl poweroff --no-block
exit 0
