#!/usr/bin/env bash
# Builds the shim (containerd-shim-lxcri-v2), the lxcri CLI and the static lxcri-init, and puts
# lxcri-init beside the shim (the shim looks for it next to its own executable).
#   scripts/build.sh          release build into target/release (the demo and the tests): the CLI
#                             and the monitor with thin LTO, the static shim and init with fat LTO
#   scripts/build.sh --dist   the package's build into target/dist (fat LTO, one codegen unit)
#   scripts/build.sh --debug  debug build into target/debug
# The static init is built with its own --target-dir (target/static) so that the two builds, which
# use different RUSTFLAGS, do not invalidate each other.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

profile=release
case "${1:-}" in
"") ;;
--release) ;;
--dist) profile=dist ;;
--debug) profile=debug ;;
-h | --help)
    sed -n '2,9p' "$0"
    exit 0
    ;;
*) die "unknown argument '$1': use --dist, --debug or nothing (release)" ;;
esac

cd "$LXCRI_ROOT"
target_dir="${CARGO_TARGET_DIR:-$LXCRI_ROOT/target}"
static_dir="$target_dir/static"
triple=x86_64-unknown-linux-gnu
release_flag=()
case "$profile" in
release) release_flag=(--release) ;;
dist) release_flag=(--profile dist) ;;
esac

log "cargo build ${release_flag[*]} (lxcri, lxcri-monitor: linked against the host's liblxc)"
cargo build "${release_flag[@]}" -p lxcri -p lxcri-monitor --bin lxcri --bin lxcri-monitor

# The shim and the init are linked static, non-PIE: the init runs in images without a libc, and
# the shim (one process per container or pod) then maps no shared library at all, which keeps
# its resident memory down. Neither links liblxc (only lxcri-monitor does). --no-default-features
# leaves out lxcri's `identify` feature (containerd's gRPC client, only for the lxcri CLI).
# They are built with the `dist` profile (fat LTO, one codegen unit) for release builds too: the
# thin-LTO release profile made the shim's binary 45% larger and its RSS 14% larger (5.3 -> 6.1 MB
# holding one container), and the shim's RSS is what one more container costs.
static_profile="$profile"
static_flag=("${release_flag[@]}")
if [[ "$profile" == release ]]; then
    static_profile=dist
    static_flag=(--profile dist)
fi
log "cargo build ${static_flag[*]} (containerd-shim-lxcri-v2, lxcri-init: static, --target $triple)"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
    cargo build "${static_flag[@]}" -p lxcri -p lxcri-init --bin containerd-shim-lxcri-v2 --bin lxcri-init --bin lxcri-pause \
    --no-default-features --target "$triple" --target-dir "$static_dir"

out="$target_dir/$profile"
for b in lxcri-init lxcri-pause containerd-shim-lxcri-v2; do
    src="$static_dir/$triple/$static_profile/$b"
    [[ -x "$src" ]] || die "static build produced no $src"
    # Copy through a temporary name so a running test never sees a half-written binary.
    cp -f "$src" "$out/.$b.tmp"
    mv -f "$out/.$b.tmp" "$out/$b"
done

# The init is bind-mounted into images that may have no libc at all: it must be static.
for b in lxcri-init lxcri-pause containerd-shim-lxcri-v2; do
    desc="$(file -b "$out/$b")"
    if [[ "$desc" != *"statically linked"* && "$desc" != *"static-pie linked"* ]]; then
        die "$out/$b is not statically linked ($desc): check that RUSTFLAGS reach its build and that glibc's static libraries (libc6-dev) are installed"
    fi
    if ldd "$out/$b" 2>&1 | grep -q '=>'; then
        die "$out/$b needs shared libraries (ldd: $(ldd "$out/$b" 2>&1 | tr '\n' ' '))"
    fi
done

for b in containerd-shim-lxcri-v2 lxcri lxcri-monitor lxcri-init lxcri-pause; do
    [[ -x "$out/$b" ]] || die "missing $out/$b after the build"
    echo "$out/$b"
done
