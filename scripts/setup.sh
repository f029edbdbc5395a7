#!/usr/bin/env bash
# Installs what lxcri needs to build and test on Debian 12, idempotently:
#   - the Debian packages (apt-get only when one is missing),
#   - containerd 1.7 and 2.1 unpacked into $LXCRI_TEST_CACHE (default /var/cache/lxcri-test),
#     never installed over the system containerd 1.6,
#   - a check that the Rust toolchain (cargo, rustfmt, clippy) is there.
# Under CI=true any missing piece is fatal; otherwise it is a warning.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_ms="$(now_ms)"

PACKAGES=(
    containerd runc lxc lxc-dev libclang-dev pkg-config zfs-fuse busybox-static
    containernetworking-plugins iproute2 jq
    # Building: a C toolchain for the lxc-sys / bindgen build scripts and the static init.
    build-essential
    # scripts/build.sh checks the static init with file(1).
    file
    # Fetching the extra containerd versions: the archive key and dpkg-deb.
    debian-archive-keyring dpkg apt ca-certificates
    # Harness helpers: ps/pgrep for diagnostics, mount/umount.
    procps util-linux
    # protoc: containerd-client's generated gRPC code (crate ctrd-identity, lxcri CLI only) and
    # the CRI tests' client (k8s-cri) compile protobuf definitions with it.
    protobuf-compiler
    # The VM lane (scripts/vm): debootstrap builds the guest image, mkfs.ext4 -d and debugfs make
    # and read its disks without a loop mount, qemu-img (qemu-utils) inspects images.
    # The Debian package (scripts/package.sh: dpkg-deb, dpkg-shlibdeps from dpkg-dev) and its test
    # (scripts/package-test.sh: a debootstrap'ed bookworm root, lintian).
    debootstrap e2fsprogs qemu-utils dpkg-dev lintian
)

# From Debian's contrib component (not enabled on a stock host): the OpenZFS userland libraries
# and headers that layerfs's optional `libzetta` feature links (scripts/test.sh builds it).
CONTRIB_PACKAGES=(libzfslinux-dev)

# From the host release's backports (bookworm-backports on Debian 12): the emulator of the VM lane
# (scripts/vm). The host's qemu-utils already comes from backports and conflicts with bookworm's
# QEMU 7.2 packages, so qemu-system-x86 must come from there too.
BACKPORTS_PACKAGES=(qemu-system-x86)

# --- Debian packages -------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
    [[ "$status" == "installed" ]] || missing+=("$p")
done

pkg_summary="all ${#PACKAGES[@]} present"
if ((${#missing[@]} > 0)); then
    log "installing missing packages: ${missing[*]}"
    if [[ "$(id -u)" != 0 ]]; then
        problem "packages missing (${missing[*]}) and not root: run 'sudo $0'"
        pkg_summary="MISSING: ${missing[*]}"
    elif ! DEBIAN_FRONTEND=noninteractive apt-get -q update; then
        problem "apt-get update failed: check /etc/apt/sources.list and the network"
        pkg_summary="MISSING: ${missing[*]}"
    elif ! DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${missing[@]}"; then
        problem "apt-get install ${missing[*]} failed (see the apt output above)"
        pkg_summary="MISSING: ${missing[*]}"
    else
        pkg_summary="installed ${missing[*]}"
    fi
fi

contrib_summary="all ${#CONTRIB_PACKAGES[@]} present"
if ! install_contrib "${CONTRIB_PACKAGES[@]}"; then
    problem "${CONTRIB_PACKAGES[*]} could not be installed from Debian contrib: cargo build -p layerfs --features libzetta will fail"
    contrib_summary="MISSING: ${CONTRIB_PACKAGES[*]}"
fi

backports_summary="all ${#BACKPORTS_PACKAGES[@]} present"
if ! install_from_suite "$(host_codename)-backports" main "${BACKPORTS_PACKAGES[@]}"; then
    problem "${BACKPORTS_PACKAGES[*]} could not be installed from $(host_codename)-backports: the VM lane (scripts/vm) cannot run"
    backports_summary="MISSING: ${BACKPORTS_PACKAGES[*]}"
fi

# --- extra containerd versions ---------------------------------------------------------------------
ctr_summary=()
sys_ver="$(/usr/bin/containerd --version 2>/dev/null | awk '{print $3}' || true)"
ctr_summary+=("system ${sys_ver:-MISSING} (/usr/bin)")
if [[ -z "$sys_ver" ]]; then
    problem "/usr/bin/containerd does not run: install the Debian package containerd"
fi
for entry in "${LXCRI_CONTAINERD_EXTRA[@]}"; do
    read -r short want suites <<<"$entry"
    # shellcheck disable=SC2086 # suites is a list on purpose
    if fetch_containerd "$short" "$want" $suites; then
        ctr_summary+=("$want ($(containerd_cache_dir "$short")/usr/bin)")
    else
        problem "containerd $want is missing from $(containerd_cache_dir "$short"): the tests against it will fail"
        ctr_summary+=("$want MISSING")
    fi
done

# --- Rust toolchain -------------------------------------------------------------------------------
rust_summary=""
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    problem "cargo not found: install Rust stable (https://rustup.rs: 'rustup toolchain install stable --component rustfmt,clippy'), then put ~/.cargo/bin on PATH"
    rust_summary="MISSING cargo"
else
    rust_summary="$(cargo --version 2>/dev/null)"
    for comp in fmt clippy; do
        if ! cargo "$comp" --version >/dev/null 2>&1; then
            problem "cargo $comp is missing: run 'rustup component add $([[ $comp == fmt ]] && echo rustfmt || echo clippy)'"
            rust_summary+=", MISSING cargo-$comp"
        fi
    done
fi

# --- summary --------------------------------------------------------------------------------------
elapsed=$(($(now_ms) - start_ms))
{
    echo "setup summary:"
    echo "  debian packages: $pkg_summary"
    echo "  debian contrib:  $contrib_summary"
    echo "  backports:       $backports_summary"
    for c in "${ctr_summary[@]}"; do echo "  containerd:      $c"; done
    echo "  rust:            $rust_summary"
    printf '  took:            %d.%03d s\n' $((elapsed / 1000)) $((elapsed % 1000))
} >&2
