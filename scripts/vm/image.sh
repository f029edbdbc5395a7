#!/usr/bin/env bash
# Builds the VM lane's guest image once and caches it: Debian 12 (debootstrap from the host's own
# apt mirror), the stock kernel, OpenZFS 2.1 from contrib (zfs-dkms: the module is built here),
# LXC, containerd 1.6, runc, systemd and busybox-static. The result is
#   $LXCRI_VM_CACHE/image-<key>/{root.img,vmlinuz,initrd.img,packages.txt}
# (default /var/cache/lxcri-vm), read-only; <key> hashes this recipe (scripts/vm/common.sh holds
# the package lists) and the files copied into the image, so a changed recipe builds a new image
# and an unchanged one is reused at no cost. Older images are removed after a new one is built.
#   scripts/vm/image.sh          build if missing, print the image directory
#   scripts/vm/image.sh --force  build again even if cached
# Needs root, debootstrap and e2fsprogs (scripts/setup.sh installs them) and the host's mirror.
# Nothing is mounted outside a private mount namespace, so an interrupted build leaves no mount;
# its half-built directory is removed by the next run.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=scripts/vm/common.sh
. "$LXCRI_ROOT/scripts/vm/common.sh"

# The whole script is one function, read completely before it runs: a build takes many minutes,
# and bash would otherwise read an edited script from the middle of a line.
main() {
force=""
case "${1:-}" in
"") ;;
--force) force=1 ;;
-h | --help)
    sed -n '2,14p' "$0"
    exit 0
    ;;
*) die "unknown argument '$1'" ;;
esac

[[ "$(id -u)" == 0 ]] || die "building the guest image needs root (debootstrap, chroot)"
for t in debootstrap mkfs.ext4 unshare chroot; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found: run scripts/setup.sh"
done

dest="$(vm_image_dir)"
if [[ -z "$force" && -r "$dest/root.img" && -r "$dest/vmlinuz" && -r "$dest/initrd.img" ]]; then
    echo "$dest"
    exit 0
fi

mirror="$(debian_mirrors | head -n1)"
[[ -n "$mirror" ]] || die "no apt source for $(host_codename) main in /etc/apt/sources.list{,.d}: the guest image is built from the host's mirror"

mkdir -p "$LXCRI_VM_CACHE"
# One build at a time (another engineer's or CI's run waits, then finds the image built).
exec 8>"$LXCRI_VM_CACHE/build.lock"
flock 8
if [[ -z "$force" && -r "$dest/root.img" ]]; then
    echo "$dest"
    exit 0
fi
# Leftovers of an interrupted build (their mounts died with their namespace).
rm -rf "$LXCRI_VM_CACHE"/build.*

start="$(now_ms)"
work="$(mktemp -d "$LXCRI_VM_CACHE/build.XXXXXX")"
# A failed build's log is kept beside the cache (the half-built directory goes).
trap 'cp -f "$work/build.log" "$LXCRI_VM_CACHE/failed-build.log" 2>/dev/null; rm -rf "$work"' EXIT
root="$work/root"
log "building the guest image in $work (log: $work/build.log; mirror $mirror)"

# Everything that mounts (proc, sys, dev for the chroot) runs in its own mount namespace: the
# mounts vanish with it, whatever happens.
build_root() {
    set -euo pipefail
    local mirror="$1" root="$2"
    shift 2
    debootstrap --variant=minbase --components=main,contrib "$LXCRI_VM_SUITE" "$root" "$mirror"

    # Smaller and faster: no docs, man pages or translations; no fsync per file.
    cat >"$root/etc/dpkg/dpkg.cfg.d/lxcri-vm" <<'EOC'
force-unsafe-io
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOC
    printf 'deb %s %s main contrib\n' "$mirror" "$LXCRI_VM_SUITE" >"$root/etc/apt/sources.list"
    # The kernel's postinst must not try to find a boot loader.
    printf 'do_symlinks = yes\nlink_in_boot = yes\n' >"$root/etc/kernel-img.conf"

    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --bind /dev "$root/dev"
    mount -t devpts devpts "$root/dev/pts"
    local apt=(chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
        apt-get -q -y --no-install-recommends -o Dpkg::Options::=--force-confold)
    "${apt[@]}" update
    "${apt[@]}" install "${LXCRI_VM_PACKAGES_BASE[@]}"
    "${apt[@]}" install "${LXCRI_VM_PACKAGES_ZFS[@]}"
    local kver
    kver="$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)"
    [[ -n "$(find "$root/lib/modules/$kver" -name 'zfs.ko*' -print -quit)" ]] ||
        die "zfs-dkms built no zfs.ko for kernel $kver"
    # shellcheck disable=SC2016 # dpkg-query's format, not shell
    chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' >"$root/.packages.txt"
    "${apt[@]}" clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/lib/dkms/*/*/build "$root"/usr/src/zfs-*
    umount "$root/dev/pts" "$root/dev" "$root/sys" "$root/proc"
}
export -f build_root die log
export LXCRI_VM_SUITE
# shellcheck disable=SC2016 # expanded by the inner bash
LXCRI_VM_PACKAGES_BASE_S="${LXCRI_VM_PACKAGES_BASE[*]}" LXCRI_VM_PACKAGES_ZFS_S="${LXCRI_VM_PACKAGES_ZFS[*]}" \
    unshare --mount --propagation private bash -c '
        LXCRI_VM_PACKAGES_BASE=($LXCRI_VM_PACKAGES_BASE_S)
        LXCRI_VM_PACKAGES_ZFS=($LXCRI_VM_PACKAGES_ZFS_S)
        build_root "$@"' build_root "$mirror" "$root" >"$work/build.log" 2>&1 ||
    die "building the guest's root failed: $(tail -n 20 "$work/build.log")"
log "root built in $((($(now_ms) - start) / 1000)) s"

# --- configuration of the guest ---------------------------------------------------------------
echo lxcri-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 lxcri-vm\n' >"$root/etc/hosts"
printf '/dev/vda / ext4 defaults 0 1\n' >"$root/etc/fstab"
# root without a password: the console is only the serial log file.
sed -i 's|^root:[^:]*:|root::|' "$root/etc/shadow"
install -m 0755 "$LXCRI_VM_DIR/guest/image/lxcri-vm-init" "$root/usr/local/sbin/lxcri-vm-init"
install -m 0755 "$LXCRI_VM_DIR/guest/image/lxcri-vm-systemd" "$root/usr/local/sbin/lxcri-vm-systemd"
install -m 0644 "$LXCRI_VM_DIR/guest/image/lxcri-vm.service" "$root/etc/systemd/system/lxcri-vm.service"
ln -sf /etc/systemd/system/lxcri-vm.service "$root/etc/systemd/system/multi-user.target.wants/lxcri-vm.service"
# The tests start their own containerd instances and LXC containers; the packaged services, the
# gettys and the ZFS event daemon only slow the boot down under emulation.
for u in containerd.service lxc.service lxc-net.service lxc-monitord.service zfs-zed.service \
    getty@tty1.service serial-getty@ttyS0.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
done
mkdir -p "$root/etc/systemd/system.conf.d"
printf '[Manager]\nDefaultTimeoutStopSec=15s\n' >"$root/etc/systemd/system.conf.d/lxcri-vm.conf"
# zfs-dkms built the module for the image's kernel; load it at boot (systemd mode).
echo zfs >"$root/etc/modules-load.d/zfs.conf"

kver="$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)"
cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/initrd.img"
mv "$root/.packages.txt" "$work/packages.txt"

# --- the disk -----------------------------------------------------------------------------------
# ext4 filled from the directory (no loop mount), with 6 GiB free for pools, images and containers
# (sparse: only what is written takes space; each run writes to a throw-away overlay anyway).
used_mb="$(du -sm "$root" | cut -f1)"
truncate -s "$((used_mb + 6144))M" "$work/root.img"
mkfs.ext4 -q -L lxcri-root -d "$root" "$work/root.img" >>"$work/build.log" 2>&1 ||
    die "mkfs.ext4 -d of the guest's root failed (see $work/build.log)"
rm -rf "$root"
chmod 0444 "$work/root.img" "$work/vmlinuz" "$work/initrd.img" "$work/packages.txt"
echo "$kver" >"$work/kernel-version"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
# Older images (another recipe) are of no use any more.
find "$LXCRI_VM_CACHE" -mindepth 1 -maxdepth 1 -name 'image-*' ! -path "$dest" -exec rm -rf {} +
log "guest image ready in $((($(now_ms) - start) / 1000)) s: $dest (kernel $kver, $(grep -E '^(zfsutils-linux|lxc|containerd|systemd) ' "$dest/packages.txt" | tr '\n' ' '))"
echo "$dest"
}

main "$@"
