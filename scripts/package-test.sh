#!/usr/bin/env bash
# Tests the Debian package in a clean Debian root:
#   1. a minbase bookworm root made by debootstrap from the host's own mirror, cached under
#      $LXCRI_TEST_CACHE/pkgroot-<key> (key: suite, mirror, variant, Depends) with its apt lists
#      and the Depends' .debs downloaded; each run works on an overlay of it, so the cache stays
#      clean;
#   2. scripts/package.sh --from release (the binaries scripts/build.sh built), then lintian on the
#      .deb: no errors allowed;
#   3. apt installs the .deb there (its Depends resolved by apt), containerd is started from that
#      root with a private config and socket, `lxcri check` passes its shim, init, liblxc, config
#      and containerd checks, a busybox image built by `lxcri image build` is
#      imported and one container runs through the packaged shim (ctr run --rm --runtime
#      io.containerd.lxcri.v2); its output is checked;
#   4. dpkg -r: every file dpkg -L listed is gone except the conffile; dpkg -P: the conffile and
#      /etc/lxcri are gone too.
# Leaves nothing mounted or running, also on failure. Needs root, debootstrap, lintian, overlayfs;
# without them it fails under CI=true and skips (saying why) otherwise.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LXCRI_ROOT"

case "${1:-}" in
"") ;;
-h | --help)
    sed -n '2,17p' "$0"
    exit 0
    ;;
*) die "unknown argument '$1': $0 takes none" ;;
esac

skip() {
    problem "package test skipped: $*"
    exit 0
}
[[ "$(id -u)" == 0 ]] || skip "not root (debootstrap, chroot and containerd need root)"
for tool in debootstrap lintian dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool not found: run scripts/setup.sh"
done
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || skip "the kernel has no overlayfs (the test root is an overlay of the cached one)"

start_ms="$(now_ms)"
elapsed() { printf '%d.%01d s' $((($(now_ms) - start_ms) / 1000)) $((($(now_ms) - start_ms) % 1000 / 100)); }

# --- 1. the cached clean root -------------------------------------------------------------------
suite="$(host_codename)"
mirror="$(debian_mirrors | head -n1)"
[[ -n "$mirror" ]] || die "no apt source for $suite main in the host's apt configuration: add one (see scripts/lib.sh debian_mirrors)"
# The Depends the root's apt cache holds, so that the install needs no network on a warm run.
depends=(liblxc1 containerd)
key="$(printf '%s\n' "$suite" "$mirror" minbase "${depends[*]}" v1 | sha256sum | cut -c1-12)"
base="$LXCRI_TEST_CACHE/pkgroot-$suite-$key"
if [[ ! -f "$base/.complete" ]]; then
    log "debootstrap --variant=minbase $suite from $mirror into $base (cached for the next runs)"
    rm -rf "$base" "$base.tmp"
    mkdir -p "$LXCRI_TEST_CACHE"
    debootstrap --variant=minbase "$suite" "$base.tmp" "$mirror" >"$LXCRI_TEST_CACHE/pkgroot-debootstrap.log" 2>&1 ||
        die "debootstrap failed: see $LXCRI_TEST_CACHE/pkgroot-debootstrap.log"
    # Download (not install) the Depends, with the root's own apt.
    mount -t proc proc "$base.tmp/proc"
    trap 'umount "$base.tmp/proc" 2>/dev/null' EXIT
    set +e
    chroot "$base.tmp" apt-get -q update >"$LXCRI_TEST_CACHE/pkgroot-apt.log" 2>&1 &&
        chroot "$base.tmp" env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --download-only \
            --no-install-recommends "${depends[@]}" >>"$LXCRI_TEST_CACHE/pkgroot-apt.log" 2>&1
    rc=$?
    set -e
    umount "$base.tmp/proc"
    trap - EXIT
    ((rc == 0)) || die "apt-get in the new root failed: see $LXCRI_TEST_CACHE/pkgroot-apt.log"
    touch "$base.tmp/.complete"
    mv "$base.tmp" "$base"
    log "root cached ($(elapsed))"
fi

# --- 2. the package and lintian -----------------------------------------------------------------
deb="$(scripts/package.sh --from release | tail -n1)"
[[ -f "$deb" ]] || die "scripts/package.sh printed no .deb"
log "lintian $deb ($(elapsed))"
# --fail-on error: warnings and infos are shown, errors fail the test.
lintian --fail-on error --tag-display-limit 0 "$deb" || die "lintian found errors in $deb (above)"

# --- 3. an overlay of it; install, run a container ---------------------------------------------
work="$(mktemp -d /tmp/lxcri-pkgtest.XXXXXX)"
root="$work/root"
containerd_pid=""
cleanup() {
    set +e
    if [[ -n "$containerd_pid" ]]; then
        chroot "$root" ctr -a /run/ctd/c.sock -n pkgtest task kill -s SIGKILL pkgtest >/dev/null 2>&1
        sleep 0.3
        chroot "$root" ctr -a /run/ctd/c.sock -n pkgtest task delete -f pkgtest >/dev/null 2>&1
        chroot "$root" ctr -a /run/ctd/c.sock -n pkgtest container rm pkgtest >/dev/null 2>&1
        kill "$containerd_pid" 2>/dev/null
        wait "$containerd_pid" 2>/dev/null
    fi
    # Anything still running from the test root (a shim, a monitor): ours, ended by pid.
    local p
    for p in /proc/[0-9]*; do
        [[ "$(readlink "$p/root" 2>/dev/null)" == "$root" ]] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    remove_dir_and_mounts "$work"
}
trap cleanup EXIT
mkdir -p "$work/upper" "$work/ovl-work" "$root"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/ovl-work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
# containerd's root, state and socket, and lxcri's /run/lxcri, on a tmpfs: overlayfs snapshots
# cannot have their upper directories on the overlay root itself.
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

# No service starts inside the test root (the usual policy-rc.d of a chroot).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
cp "$deb" "$root/tmp/"
log "apt install ./$(basename "$deb") in the clean $suite root ($(elapsed))"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends \
    "/tmp/$(basename "$deb")" >"$work/install.log" 2>&1 || {
    cat "$work/install.log" >&2
    die "apt install of the package failed (above)"
}
# shellcheck disable=SC2016 # dpkg-query's format fields, not shell
installed="$(chroot "$root" dpkg-query -W -f='${Version} ${db:Status-Status}' lxcri)"
[[ "$installed" == *" installed" ]] || die "dpkg says lxcri is '$installed' after the install"
chroot "$root" dpkg -L lxcri >"$work/files"
for f in /usr/bin/containerd-shim-lxcri-v2 /usr/bin/lxcri /usr/libexec/lxcri/lxcri-init \
    /usr/libexec/lxcri/lxcri-monitor /usr/libexec/lxcri/lxcri-pause /etc/lxcri/config.toml \
    /usr/share/man/man1/lxcri.1.gz /usr/share/bash-completion/completions/lxcri; do
    grep -qx "$f" "$work/files" || die "dpkg -L lxcri does not list $f"
done
grep -qx /etc/lxcri/config.toml "$root/var/lib/dpkg/info/lxcri.conffiles" ||
    die "/etc/lxcri/config.toml is not a conffile"

version_out="$(chroot "$root" lxcri --version)"
echo "$version_out"
grep -q '^liblxc [0-9]' <<<"$version_out" || die "lxcri --version names no liblxc version: $version_out"
chroot "$root" containerd-shim-lxcri-v2 --version >/dev/null || die "the packaged shim does not run"

mkdir -p "$root/run/ctd"
cat >"$root/run/ctd/config.toml" <<EOF
version = 2
root = "/run/ctd/root"
state = "/run/ctd/state"
[grpc]
  address = "/run/ctd/c.sock"
[ttrpc]
  address = "/run/ctd/c.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
EOF
chroot "$root" env PATH=/usr/sbin:/usr/bin:/sbin:/bin containerd --config /run/ctd/config.toml \
    >"$work/containerd.log" 2>&1 &
containerd_pid=$!
ctr_pkg() { chroot "$root" ctr -a /run/ctd/c.sock -n pkgtest "$@"; }
for _ in $(seq 100); do ctr_pkg version >/dev/null 2>&1 && break; sleep 0.1; done
ctr_pkg version >/dev/null 2>&1 || {
    cat "$work/containerd.log" >&2
    die "the packaged root's containerd did not start (log above)"
}

# lxcri check finds the shim through the /usr/bin symlink and its helpers beside the real file.
check_out="$(chroot "$root" env PATH=/usr/sbin:/usr/bin:/sbin:/bin lxcri check --address /run/ctd/c.sock 2>&1 || true)"
echo "$check_out"
for c in shim init liblxc config containerd; do
    grep -q "^ok   $c " <<<"$check_out" || die "lxcri check in the installed root: no 'ok   $c' line (output above)"
done

# The image: built by the project's own `lxcri image build` (it needs the host's /bin/busybox).
"$LXCRI_ROOT/target/release/lxcri" image build --name local/busybox:latest --busybox --cmd /bin/sh \
    -o "$root/tmp/busybox.tar" >/dev/null
ctr_pkg images import /tmp/busybox.tar >/dev/null
log "ctr run --rm --runtime io.containerd.lxcri.v2 through the package ($(elapsed))"
set +e
# shellcheck disable=SC2016 # expanded by the container's shell
out="$(ctr_pkg run --rm --runtime io.containerd.lxcri.v2 local/busybox:latest pkgtest \
    sh -c 'echo "hello from the package, pid $$"; exit 7' 2>&1)"
status=$?
set -e
echo "$out"
if [[ "$out" != "hello from the package, pid 1" || $status -ne 7 ]]; then
    tail -n 30 "$work/containerd.log" >&2
    die "expected 'hello from the package, pid 1' and status 7, got status $status (containerd's log above)"
fi
kill "$containerd_pid"
wait "$containerd_pid" 2>/dev/null || true
containerd_pid=""

# --- 4. remove and purge ------------------------------------------------------------------------
chroot "$root" dpkg -r lxcri >/dev/null
left=()
while IFS= read -r f; do
    [[ "$f" == /etc/lxcri/config.toml ]] && continue
    # Directories shared with other packages (/usr/bin, /usr/share/man/...) stay.
    [[ -d "$root$f" && ! -L "$root$f" ]] && continue
    [[ -e "$root$f" || -L "$root$f" ]] && left+=("$f")
done <"$work/files"
((${#left[@]} == 0)) || die "dpkg -r left files of the package: ${left[*]}"
[[ -d "$root/usr/libexec/lxcri" ]] && die "dpkg -r left /usr/libexec/lxcri"
[[ -f "$root/etc/lxcri/config.toml" ]] || die "dpkg -r removed the conffile /etc/lxcri/config.toml (it must stay until purge)"
chroot "$root" dpkg -P lxcri >/dev/null
[[ -e "$root/etc/lxcri" ]] && die "dpkg -P left /etc/lxcri"
# shellcheck disable=SC2016 # dpkg-query's format field
status="$(chroot "$root" dpkg-query -W -f='${db:Status-Status}' lxcri 2>/dev/null || true)"
[[ -z "$status" || "$status" == not-installed ]] || die "dpkg says lxcri is '$status' after the purge"
log "ok: lintian clean of errors, installed into a clean $suite root, ran a container, removed and purged cleanly ($(elapsed))"
