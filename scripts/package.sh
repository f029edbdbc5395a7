#!/usr/bin/env bash
# Builds the Debian package target/debian/lxcri_<version>_amd64.deb with dpkg-deb:
#   scripts/package.sh                 release build with the dist profile (fat LTO), then package
#   scripts/package.sh --from PROFILE  package what scripts/build.sh already built into
#                                      target/PROFILE (release or dist; the package test uses it)
# Layout: the five binaries in /usr/libexec/lxcri (the shim finds its helpers beside its own
# executable), /usr/bin/containerd-shim-lxcri-v2 and /usr/bin/lxcri as symlinks to them (containerd
# finds the shim on its PATH), /etc/lxcri/config.toml as a conffile, the lxcri(1) man page, shell
# completions, docs. The package's contents come from packaging/ and docs/ only.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LXCRI_ROOT"

profile=dist
build=1
case "${1:-}" in
"") ;;
--from)
    profile="${2:-}"
    build=0
    [[ "$profile" == release || "$profile" == dist ]] ||
        die "--from needs release or dist (the profile scripts/build.sh built), not '${profile}'"
    ;;
-h | --help)
    sed -n '2,9p' "$0"
    exit 0
    ;;
*) die "unknown argument '$1': use --from release|dist or nothing" ;;
esac

for tool in dpkg-deb dpkg-shlibdeps gzip strip; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup.sh (it installs dpkg-dev)"
done

# The version: the workspace's, and the newest entry of packaging/changelog must say the same.
version="$(awk -F'"' '/^\[workspace.package\]/ { w = 1; next } /^\[/ { w = 0 } w && $1 ~ /^version *= */ { print $2; exit }' Cargo.toml)"
[[ -n "$version" ]] || die "no version in [workspace.package] of Cargo.toml"
changelog_version="$(sed -n '1s/^lxcri (\([^)]*\)).*/\1/p' packaging/changelog)"
[[ "$changelog_version" == "$version" ]] ||
    die "packaging/changelog's newest entry is '${changelog_version:-unreadable}', Cargo.toml says $version: add a changelog entry for $version (same format) at the top"
arch="$(dpkg --print-architecture)"
[[ "$arch" == amd64 ]] || die "the package is built for amd64 (the static builds use x86_64-unknown-linux-gnu); this machine is $arch"

if ((build)); then
    log "building with the $profile profile (fat LTO: takes several minutes)"
    scripts/build.sh "--$profile" >/dev/null
fi
target_dir="${CARGO_TARGET_DIR:-$LXCRI_ROOT/target}"
bin="$target_dir/$profile"
binaries=(containerd-shim-lxcri-v2 lxcri lxcri-monitor lxcri-init lxcri-pause)
for b in "${binaries[@]}"; do
    [[ -x "$bin/$b" ]] || die "$bin/$b is missing: run scripts/build.sh --$profile first (or scripts/package.sh without --from)"
done

out="$target_dir/debian"
root="$out/lxcri_${version}_$arch"
deb="$out/lxcri_${version}_$arch.deb"
rm -rf "$root" "$deb"
umask 022
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/libexec/lxcri" "$root/etc/lxcri" \
    "$root/usr/share/doc/lxcri" "$root/usr/share/man/man1" "$root/usr/share/lintian/overrides" \
    "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d"

for b in "${binaries[@]}"; do
    install -m 0755 "$bin/$b" "$root/usr/libexec/lxcri/$b"
    # As dh_strip does: cargo's strip = "symbols" leaves some sections lintian counts as unstripped.
    strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/libexec/lxcri/$b"
done
ln -s ../libexec/lxcri/containerd-shim-lxcri-v2 "$root/usr/bin/containerd-shim-lxcri-v2"
ln -s ../libexec/lxcri/lxcri "$root/usr/bin/lxcri"

install -m 0644 packaging/config.toml "$root/etc/lxcri/config.toml"
install -m 0644 packaging/lintian-overrides "$root/usr/share/lintian/overrides/lxcri"

# The man pages (lxcri.1, lxcri-image-build.1, ...) and the completions come from the CLI's own
# clap definition.
"$bin/lxcri" man --dir "$root/usr/share/man/man1"
gzip -9n "$root"/usr/share/man/man1/*.1
chmod 0644 "$root"/usr/share/man/man1/*
"$bin/lxcri" completion bash >"$root/usr/share/bash-completion/completions/lxcri"
"$bin/lxcri" completion zsh >"$root/usr/share/zsh/vendor-completions/_lxcri"
"$bin/lxcri" completion fish >"$root/usr/share/fish/vendor_completions.d/lxcri.fish"
chmod 0644 "$root"/usr/share/*/completions/lxcri "$root"/usr/share/zsh/vendor-completions/_lxcri \
    "$root"/usr/share/fish/vendor_completions.d/lxcri.fish

doc="$root/usr/share/doc/lxcri"
install -m 0644 packaging/copyright "$doc/copyright"
gzip -9n <packaging/changelog >"$doc/changelog.gz"
gzip -9n <README.md >"$doc/README.md.gz"
for f in docs/*.md; do
    # shellcheck disable=SC2094 # reads docs/X.md, writes $doc/X.md.gz
    gzip -9n <"$f" >"$doc/$(basename "$f").gz"
done
chmod 0644 "$doc"/*

# Depends: the shared libraries of the two dynamically linked binaries (libc6, liblxc1, ...), as
# dpkg-shlibdeps finds them, and containerd. dpkg-shlibdeps wants a debian/control to read.
shlib_work="$(mktemp -d)"
trap 'rm -rf "$shlib_work"' EXIT
mkdir -p "$shlib_work/debian"
printf 'Source: lxcri\n\nPackage: lxcri\nArchitecture: %s\n' "$arch" >"$shlib_work/debian/control"
shlibs="$(cd "$shlib_work" && dpkg-shlibdeps -O "$root/usr/libexec/lxcri/lxcri" \
    "$root/usr/libexec/lxcri/lxcri-monitor" 2>"$shlib_work/err" | sed -n 's/^shlibs:Depends=//p')" ||
    die "dpkg-shlibdeps failed: $(cat "$shlib_work/err")"
[[ "$shlibs" == *liblxc* ]] || die "dpkg-shlibdeps found no liblxc dependency ($shlibs): lxcri-monitor must link liblxc"
# The static binaries contain glibc's code: Built-Using names the glibc they were built with.
built_using="$(dpkg-query -W -f='${source:Package} (= ${source:Version})' libc6-dev 2>/dev/null)" ||
    die "libc6-dev is not installed: the static shim and init are linked against it (run scripts/setup.sh)"

installed_size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
cat >"$root/DEBIAN/control" <<EOF
Package: lxcri
Version: $version
Architecture: $arch
Maintainer: lxcri maintainers <maintainers@users.noreply.b-seed-f550b950.example>
Installed-Size: $installed_size
Depends: $shlibs, containerd (>= 1.6~) | containerd.io (>= 1.6~)
Recommends: lxc
Suggests: busybox-static, zfsutils-linux | zfs-fuse
Built-Using: $built_using
Section: admin
Priority: optional
Description: containerd shim v2 running OCI containers as LXC containers
 lxcri is a containerd shim v2, containerd-shim-lxcri-v2: containerd uses it
 for containers whose runtime is io.containerd.lxcri.v2 (ctr run --runtime
 io.containerd.lxcri.v2, or a Kubernetes RuntimeClass through containerd's
 CRI plugin). Each OCI container runs as a real LXC container through liblxc,
 visible to lxc-ls and lxc-info; root filesystems can be ZFS clones of a
 per-image base dataset.
 .
 The package holds the shim, its LXC monitor (lxcri-monitor, the only binary
 that links liblxc), the static container init (lxcri-init), the pause binary
 for pods (lxcri-pause) and the lxcri admin command: image validation and
 building, ZFS layer management, node checks.
EOF
printf '/etc/lxcri/config.toml\n' >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

# Reproducible: every file's mtime is the last commit's time.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
log "built $deb ($(du -k "$deb" | cut -f1) KiB, installed $installed_size KiB); Depends: $shlibs, containerd (>= 1.6~) | containerd.io (>= 1.6~)"
echo "$deb"
