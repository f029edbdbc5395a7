#!/usr/bin/env bash
# Builds the shim (containerd-shim-lxcri-v2), the lxcri CLI and the static lxcri-init, and puts
# lxcri-init beside the shim (the shim looks for it next to its own executable).
#   scripts/build.sh          release build into target/release
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
--debug) profile=debug ;;
-h | --help)
    sed -n '2,7p' "$0"
    exit 0
    ;;
*) die "unknown argument '$1': use --debug or nothing (release)" ;;
esac

cd "$LXCRI_ROOT"
target_dir="${CARGO_TARGET_DIR:-$LXCRI_ROOT/target}"
static_dir="$target_dir/static"
triple=x86_64-unknown-linux-gnu
release_flag=()
[[ "$profile" == release ]] && release_flag=(--release)

log "cargo build ${release_flag[*]} (containerd-shim-lxcri-v2, lxcri)"
cargo build "${release_flag[@]}" -p lxcri --bin containerd-shim-lxcri-v2 --bin lxcri

log "cargo build ${release_flag[*]} -p lxcri-init (static, --target $triple)"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build "${release_flag[@]}" -p lxcri-init --target "$triple" --target-dir "$static_dir"

out="$target_dir/$profile"
init_src="$static_dir/$triple/$profile/lxcri-init"
[[ -x "$init_src" ]] || die "static build produced no $init_src"
# Copy through a temporary name so a running test never sees a half-written init.
cp -f "$init_src" "$out/.lxcri-init.tmp"
mv -f "$out/.lxcri-init.tmp" "$out/lxcri-init"

# The init is bind-mounted into images that may have no libc at all: it must be static.
desc="$(file -b "$out/lxcri-init")"
if [[ "$desc" != *"statically linked"* && "$desc" != *"static-pie linked"* ]]; then
    die "$out/lxcri-init is not statically linked ($desc): check that RUSTFLAGS reach the build of lxcri-init and that glibc's static libraries (libc6-dev) are installed"
fi
if ldd "$out/lxcri-init" 2>&1 | grep -q '=>'; then
    die "$out/lxcri-init needs shared libraries (ldd: $(ldd "$out/lxcri-init" 2>&1 | tr '\n' ' '))"
fi

for b in containerd-shim-lxcri-v2 lxcri lxcri-init; do
    [[ -x "$out/$b" ]] || die "missing $out/$b after the build"
    echo "$out/$b"
done
