# shellcheck shell=bash
# Shared by scripts/vm/*.sh: where the guest image is cached and what it is made of. Source it after
# scripts/lib.sh.

LXCRI_VM_DIR="$LXCRI_ROOT/scripts/vm"

# The image cache: one directory per recipe hash, $LXCRI_VM_CACHE/image-<hash>/{root.img,vmlinuz,
# initrd.img}. Override with LXCRI_VM_CACHE.
LXCRI_VM_CACHE="${LXCRI_VM_CACHE:-/var/cache/lxcri-vm}"

# The Debian release of the guest (the users' Debian 12 / Proxmox VE 8).
# shellcheck disable=SC2034 # used by image.sh
LXCRI_VM_SUITE=bookworm

# vm_image_key: the image's cache key, a hash of everything the image is built from: the recipe
# (image.sh and this file, which holds the package lists) and the files copied into the image.
vm_image_key() {
    cat "$LXCRI_VM_DIR/image.sh" "$LXCRI_VM_DIR/common.sh" "$LXCRI_VM_DIR"/guest/image/* |
        sha256sum | cut -c1-16
}

vm_image_dir() { printf '%s/image-%s\n' "$LXCRI_VM_CACHE" "$(vm_image_key)"; }

# Packages of the guest, installed in this order (apt-get in the chroot, no recommends):
# 1. the stock kernel with its headers (zfs-dkms builds against them), systemd as an init to boot,
#    and the user space that lxcri and the tests use;
# shellcheck disable=SC2034 # used by image.sh
LXCRI_VM_PACKAGES_BASE=(
    linux-image-amd64 linux-headers-amd64 initramfs-tools kmod udev
    systemd systemd-sysv dbus
    lxc containerd runc busybox-static containernetworking-plugins
    iproute2 procps util-linux mount e2fsprogs psmisc coreutils findutils
)
# 2. OpenZFS from contrib: the module is built by DKMS on install.
# shellcheck disable=SC2034 # used by image.sh
LXCRI_VM_PACKAGES_ZFS=(zfs-dkms zfsutils-linux)
