#!/usr/bin/env bash
# Boots the cached guest image once under qemu with a payload and brings its results back:
#   scripts/vm/boot.sh MODE PAYLOAD_DIR OUT_DIR [LIMIT_SECONDS]
# MODE: minimal (a bash script as PID 1, cgroup2 alone; fast) or systemd (systemd as PID 1).
# PAYLOAD_DIR must hold cmd.sh (run in the guest by guest/run.sh with /payload as its directory)
# and whatever it needs; it is copied onto an ext4 disk of its own (mkfs.ext4 -d, no loop mount)
# together with scripts/vm/guest. The image itself is never written (-drive snapshot=on).
# Afterwards OUT_DIR holds the guest's /payload/out (cmd.log, rc, guest-info.txt, dmesg.log, and in
# systemd mode journal.log and failed-units.txt) and serial.log. The guest gets LIMIT seconds
# (default 600) for cmd.sh; qemu as a whole gets LIMIT + 180 s for boot and shutdown, then it is
# killed and the end of the serial log is printed. Exits with cmd.sh's status (124: time limit;
# 125: no status came back).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=scripts/vm/common.sh
. "$LXCRI_ROOT/scripts/vm/common.sh"

(($# >= 3)) || die "usage: $0 MODE PAYLOAD_DIR OUT_DIR [LIMIT_SECONDS]"
mode="$1" payload="$2" outdir="$3" limit="${4:-600}"
case "$mode" in
minimal) init_arg="init=/usr/local/sbin/lxcri-vm-init" ;;
systemd) init_arg="init=/lib/systemd/systemd lxcri.mode=systemd systemd.show_status=false" ;;
*) die "unknown mode '$mode': minimal or systemd" ;;
esac
[[ -r "$payload/cmd.sh" ]] || die "$payload/cmd.sh is missing"
command -v qemu-system-x86_64 >/dev/null 2>&1 || die "qemu-system-x86_64 not found: run scripts/setup.sh (qemu-system-x86 from $(host_codename)-backports)"
for t in mkfs.ext4 debugfs e2fsck; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found: run scripts/setup.sh (e2fsprogs)"
done
image="$(vm_image_dir)"
[[ -r "$image/root.img" ]] || die "no guest image in $image: run scripts/vm/image.sh"

work="$(mktemp -d /var/tmp/lxcri-vm.XXXXXX)"
qemu_pid=""
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    if [[ -n "$qemu_pid" ]] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill -KILL "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- the payload disk ---------------------------------------------------------------------------
mkdir -p "$work/p"
cp -a "$payload"/. "$work/p/"
mkdir -p "$work/p/guest" "$work/p/out"
cp -a "$LXCRI_VM_DIR/guest/run.sh" "$work/p/guest/run.sh"
echo "$limit" >"$work/p/limit"
size_mb=$(($(du -sm "$work/p" | cut -f1) * 11 / 10 + 512))
truncate -s "${size_mb}M" "$work/payload.img"
mkfs.ext4 -q -L lxcri-payload -d "$work/p" "$work/payload.img" ||
    die "mkfs.ext4 -d of the payload failed"
rm -rf "$work/p"

# --- boot -------------------------------------------------------------------------------------
mkdir -p "$outdir"
rm -rf "${outdir:?}"/*
serial="$outdir/serial.log"
# TCG: /dev/kvm on these machines is a nested variant that hangs Debian's kernel.
# cgroup_no_v1=all: cgroup2 alone, as on the users' hosts (systemd 252 mounts it unified anyway).
append="root=/dev/vda rw console=ttyS0 panic=1 loglevel=4 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 $init_arg"
log "booting the guest ($mode mode, limit ${limit} s; serial log: $serial)"
start="$(now_ms)"
qemu-system-x86_64 \
    -name lxcri-vm -machine q35 -accel tcg,thread=multi -cpu max -smp 2 -m "${LXCRI_VM_MEMORY_MB:-4096}" \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$append" \
    -drive "file=$image/root.img,format=raw,if=virtio,snapshot=on" \
    -drive "file=$work/payload.img,format=raw,if=virtio" \
    -nic none -display none -monitor none -serial "file:$serial" -no-reboot \
    </dev/null >"$outdir/qemu.log" 2>&1 &
qemu_pid=$!
deadline=$(($(date +%s) + limit + 180))
while kill -0 "$qemu_pid" 2>/dev/null; do
    if (($(date +%s) >= deadline)); then
        warn "the guest did not power off within $((limit + 180)) s: killing qemu; end of the serial log:"
        tail -n 40 "$serial" >&2 || true
        kill -KILL "$qemu_pid" 2>/dev/null || true
        break
    fi
    sleep 1
done
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=""
log "guest stopped after $((($(now_ms) - start) / 1000)) s"

# --- results ---------------------------------------------------------------------------------------
# A guest that did not unmount cleanly may have its last writes in the journal: replay it first.
e2fsck -fy "$work/payload.img" >"$outdir/e2fsck.log" 2>&1 || true
debugfs -R "rdump /out $work" "$work/payload.img" >"$outdir/debugfs.log" 2>&1 || true
if [[ -d "$work/out" ]]; then
    cp -a "$work/out"/. "$outdir/"
fi
if [[ ! -r "$outdir/rc" ]]; then
    warn "no status came back from the guest; end of the serial log:"
    tail -n 40 "$serial" >&2 || true
    exit 125
fi
exit "$(cat "$outdir/rc")"
