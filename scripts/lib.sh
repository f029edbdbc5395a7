# shellcheck shell=bash
# Shared helpers for scripts/*.sh. Source it; it defines functions and a few variables only.

# The repository root (the directory above scripts/).
LXCRI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LXCRI_ROOT

# Where setup.sh unpacks the extra containerd versions; integration/src reads the same variable
# with the same default.
LXCRI_TEST_CACHE="${LXCRI_TEST_CACHE:-/var/cache/lxcri-test}"
export LXCRI_TEST_CACHE

# The containerd versions the integration tests run against, besides the system 1.6 one:
# "short-version  exact Debian version  suites to try (first that has it wins)".
# shellcheck disable=SC2034 # used by setup.sh
LXCRI_CONTAINERD_EXTRA=(
    "1.7.24 1.7.24~ds1-6+deb13u1 trixie"
    "2.1.9 2.1.9+ds1-5 sid unstable"
)

log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${0##*/}" "$*" >&2; }
die() {
    printf '[%s] ERROR: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

is_ci() { [[ "${CI:-}" == "true" ]]; }

# problem MSG: a failure that is fatal under CI=true and a warning otherwise.
problem() {
    if is_ci; then
        die "$* (CI=true: failing)"
    fi
    warn "$*"
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }

# Cached directory of one extra containerd version ("1.7.24" -> .../containerd-1.7.24).
containerd_cache_dir() { printf '%s/containerd-%s\n' "$LXCRI_TEST_CACHE" "$1"; }

# The host's Debian codename (bookworm on Debian 12).
host_codename() {
    local codename=""
    if [[ -r /etc/os-release ]]; then
        # shellcheck disable=SC1091
        codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
    fi
    printf '%s\n' "${codename:-bookworm}"
}

# debian_mirrors: print, one per line and without duplicates, the base URIs of the host's own apt
# sources that serve the host's release suite (e.g. "bookworm") with component main. The host's
# apt configuration is the only source of mirror names: nothing is hard-coded here.
debian_mirrors() {
    local codename
    codename="$(host_codename)"
    {
        # apt's own parser understands both the one-line and the deb822 formats.
        # shellcheck disable=SC2016 # $(...) are apt's format fields, not shell
        apt-get indextargets --no-release-info \
            --format '$(TARGET_OF) $(RELEASE) $(COMPONENT) $(REPO_URI)' 2>/dev/null |
            awk -v s="$codename" '$1 == "deb" && $2 == s && $3 == "main" { print $4 }' || true
        # Fallback for an apt without indextargets: read the files directly.
        debian_mirrors_from_files "$codename"
    } | sed -e 's:/*$::' | awk 'NF && !seen[$0]++'
}

debian_mirrors_from_files() {
    local codename="$1" f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        # deb [opts] URI SUITE COMPONENTS...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
            awk -v s="$codename" '$1 == "deb" && $3 == s { for (i = 4; i <= NF; i++) if ($i == "main") print $2 }'
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        # deb822 stanzas separated by blank lines; Enabled: no switches a stanza off.
        awk -v s="$codename" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " s " ") &&
                    (" " comps " ") ~ / main /) {
                    n = split(uris, u, " ")
                    for (i = 1; i <= n; i++) print u[i]
                }
                types = uris = suites = comps = ""; enabled = "yes"
            }
            BEGIN { enabled = "yes" }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
                if (key == "types") types = $0
                else if (key == "uris") uris = $0
                else if (key == "suites") suites = $0
                else if (key == "components") comps = $0
                else if (key == "enabled") enabled = tolower($0)
            }
            END { flush() }
        ' "$f"
    done
}

# apt_signed_by: the `[signed-by=KEYRING] ` of a sources.list line when Debian's archive keyring
# is installed, else nothing (apt then uses its trusted keys).
apt_signed_by() {
    local keyring="/usr/share/keyrings/debian-archive-keyring.gpg"
    if [[ -r "$keyring" ]]; then printf '[signed-by=%s] ' "$keyring"; fi
}

# private_apt DIR ARGS...: apt-get -q ARGS with a private apt state in DIR (DIR/sources.list, its
# own lists and cache), leaving the host's apt sources and index untouched.
private_apt() {
    local d="$1"
    shift
    apt-get -q \
        -o "Dir::Etc::SourceList=$d/sources.list" \
        -o "Dir::Etc::SourceParts=/dev/null" \
        -o "Dir::State::Lists=$d/lists" \
        -o "Dir::Cache=$d/cache" \
        -o "APT::Sandbox::User=root" \
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false" \
        -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false" \
        -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false" \
        -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false" \
        -o "Acquire::IndexTargets::deb::Translations::DefaultEnabled=false" \
        "$@"
}

# fetch_containerd SHORT DEBVERSION SUITE...: download the containerd .deb of exactly DEBVERSION
# from the host's mirror with the suite swapped, check its version and unpack it into the cache.
# Returns 0 when the cache holds it afterwards; prints why not otherwise.
fetch_containerd() {
    local short="$1" want="$2"
    shift 2
    local dest marker
    dest="$(containerd_cache_dir "$short")"
    marker="$dest/.deb-version"
    if [[ -x "$dest/usr/bin/containerd" && -x "$dest/usr/bin/ctr" && -r "$marker" &&
        "$(cat "$marker")" == "$want" ]]; then
        return 0
    fi

    local mirrors
    mirrors="$(debian_mirrors)"
    if [[ -z "$mirrors" ]]; then
        warn "containerd $want: no apt source for $(host_codename) main found in /etc/apt/sources.list or /etc/apt/sources.list.d/; add one and re-run"
        return 1
    fi

    local signed
    signed="$(apt_signed_by)"

    local work suite mirror tried=""
    work="$LXCRI_TEST_CACHE/apt"
    mkdir -p "$work"
    for suite in "$@"; do
        while IFS= read -r mirror; do
            local d="$work/$suite" deb
            rm -rf "$d/download"
            mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/download"
            printf 'deb %s%s %s main\n' "$signed" "$mirror" "$suite" >"$d/sources.list"
            tried+=" $mirror($suite)"
            log "containerd $want: looking in $mirror $suite"
            if ! private_apt "$d" update >"$d/update.log" 2>&1; then
                warn "apt-get update of $mirror $suite failed (log: $d/update.log)"
                continue
            fi
            if ! (cd "$d/download" && private_apt "$d" download "containerd=$want") >"$d/download.log" 2>&1; then
                warn "containerd=$want is not in $mirror $suite ($(grep -m1 -E '^E:' "$d/download.log" || echo "see $d/download.log"))"
                continue
            fi
            deb="$(find "$d/download" -maxdepth 1 -name 'containerd_*.deb' | head -n1)"
            local got
            got="$(dpkg-deb -f "$deb" Version 2>/dev/null || true)"
            if [[ "$got" != "$want" ]]; then
                warn "downloaded $deb has version '$got', want '$want'; ignoring it"
                continue
            fi
            rm -rf "$dest.tmp"
            mkdir -p "$dest.tmp"
            dpkg-deb -x "$deb" "$dest.tmp"
            if [[ ! -x "$dest.tmp/usr/bin/containerd" || ! -x "$dest.tmp/usr/bin/ctr" ]]; then
                warn "$deb has no usr/bin/containerd or usr/bin/ctr"
                rm -rf "$dest.tmp"
                continue
            fi
            local says
            says="$("$dest.tmp/usr/bin/containerd" --version 2>&1 || true)"
            if [[ "$says" != *" $short"* ]]; then
                warn "$deb unpacked, but its containerd says '$says', not $short"
                rm -rf "$dest.tmp"
                continue
            fi
            printf '%s\n' "$want" >"$dest.tmp/.deb-version"
            rm -rf "$dest"
            mv "$dest.tmp" "$dest"
            # The private index (tens of MB) is only needed again for another version.
            rm -rf "$d"
            log "containerd $want unpacked into $dest (from $mirror $suite)"
            return 0
        done <<<"$mirrors"
    done
    warn "containerd $want could not be fetched; tried:$tried"
    return 1
}

# install_contrib PKG...: install Debian packages from the host release's contrib component (e.g.
# libzfslinux-dev) without touching the host's apt sources; see install_from_suite.
install_contrib() {
    install_from_suite "$(host_codename)" "main contrib" "$@"
}

# install_from_suite SUITE COMPONENTS PKG...: install Debian packages from SUITE (e.g. bookworm,
# bookworm-backports) with COMPONENTS (e.g. "main contrib") without touching the host's apt
# sources: a private sources list (the host's own mirrors with that suite) with its own lists and
# cache under $LXCRI_TEST_CACHE/apt, used for this one apt-get update and install (packages of
# SUITE are pinned above the host's for that install only via -t SUITE). Packages already
# installed are skipped, so a second run does nothing. Returns 0 when all are installed afterwards.
install_from_suite() {
    local suite="$1" comps="$2"
    shift 2
    local missing=() p status
    for p in "$@"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
        [[ "$status" == "installed" ]] || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ "$(id -u)" != 0 ]]; then
        warn "${missing[*]} ($suite $comps) missing and not root: run 'sudo $0'"
        return 1
    fi

    local codename mirrors mirror
    codename="$(host_codename)"
    mirrors="$(debian_mirrors)"
    if [[ -z "$mirrors" ]]; then
        warn "${missing[*]}: no apt source for $codename main found in /etc/apt/sources.list or /etc/apt/sources.list.d/; add one and re-run"
        return 1
    fi
    local signed
    signed="$(apt_signed_by)"

    local d="$LXCRI_TEST_CACHE/apt/$suite-${comps// /-}"
    rm -rf "$d"
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
    while IFS= read -r mirror; do
        # The host release itself too: SUITE's packages may depend on it.
        printf 'deb %s%s %s %s\n' "$signed" "$mirror" "$codename" "$comps"
        [[ "$suite" == "$codename" ]] || printf 'deb %s%s %s %s\n' "$signed" "$mirror" "$suite" "$comps"
    done <<<"$mirrors" >"$d/sources.list"
    log "installing ${missing[*]} from $suite $comps ($(tr '\n' ' ' <<<"$mirrors"))"
    if ! private_apt "$d" update >"$d/update.log" 2>&1; then
        warn "apt-get update of $suite $comps failed (log: $d/update.log)"
        return 1
    fi
    if ! DEBIAN_FRONTEND=noninteractive private_apt "$d" install -y --no-install-recommends \
        -t "$suite" "${missing[@]}" >"$d/install.log" 2>&1; then
        warn "apt-get install ${missing[*]} from $suite $comps failed ($(grep -m1 -E '^E:' "$d/install.log" || echo "see $d/install.log"))"
        return 1
    fi
    # The private index (tens of MB) is not needed once the packages are in.
    rm -rf "$d"
    return 0
}

# remove_dir_and_mounts DIR: lazily unmounts whatever is mounted at or below DIR (deepest first),
# then removes DIR.
remove_dir_and_mounts() {
    grep -o " $1[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$1"
}

# A private containerd for the demo and the benchmarks. `containerd_up PREFIX NS BINDIR` makes a
# work dir under /tmp (short socket paths), starts containerd with BINDIR first on its PATH and
# waits until it answers; `ctr_` talks to it in namespace NS; `containerd_down` (set as the EXIT
# trap) removes every task and container, stops containerd and leaves nothing behind.
containerd_up() {
    work="$(mktemp -d "/tmp/$1.XXXXXX")"
    ctr_ns="$2"
    containerd_pid=""
    trap containerd_down EXIT
    cat >"$work/config.toml" <<EOC
version = 2
root = "$work/root"
state = "$work/state"
[grpc]
  address = "$work/c.sock"
[ttrpc]
  address = "$work/c.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
EOC
    PATH="$3:$PATH" containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
    containerd_pid=$!
    for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
    ctr_ version >/dev/null || die "containerd did not start: see $work/containerd.log"
}

ctr_() { ctr -a "$work/c.sock" -n "$ctr_ns" "$@"; }

containerd_down() {
    set +e
    if [[ -n "${containerd_pid:-}" ]]; then
        for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task kill -s SIGKILL "$id" >/dev/null 2>&1; done
        sleep 0.5
        for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task delete -f "$id" >/dev/null 2>&1; done
        for id in $(ctr_ container ls -q 2>/dev/null); do ctr_ container rm "$id" >/dev/null 2>&1; done
        kill "$containerd_pid" 2>/dev/null
        wait "$containerd_pid" 2>/dev/null
    fi
    if [[ -n "${work:-}" ]]; then
        remove_dir_and_mounts "$work"
    fi
}

# A throw-away ZFS pool on a sparse file, for the demo and the benchmarks. `zfs_up NAME SIZE`
# makes pool NAME (a leftover of an interrupted run by that name is destroyed first) on a file in
# a new /tmp directory and sets zfs_pool and zfs_dir. ZFS is the kernel's when `zpool list`
# answers; otherwise zfs-fuse is started (with extended attributes) and stopped again by
# `zfs_down` if no other pool is left on it. The integration tests' lock and pid file are shared,
# so the demo, the benchmarks and the tests can run at the same time. `zfs_down` destroys the
# pool (retrying while zfs-fuse says busy) and removes the directory.
ZFS_FUSE_LOCK=/run/lxcri-test-zfs-fuse.lock
ZFS_FUSE_PID=/run/lxcri-test-zfs-fuse.pid

zfs_up() {
    zfs_pool="$1"
    zfs_started=""
    zfs_dir="$(mktemp -d "/tmp/$1-zfs.XXXXXX")"
    command -v zpool >/dev/null 2>&1 || die "zpool not found: run scripts/setup.sh (it installs zfs-fuse) or install zfsutils-linux"
    {
        flock 9
        if ! zpool list >/dev/null 2>&1; then
            command -v zfs-fuse >/dev/null 2>&1 || die "ZFS does not answer (zpool list) and zfs-fuse is not installed: run scripts/setup.sh"
            rm -f "$ZFS_FUSE_PID"
            # fd 9 (the lock) must not stay open in the daemon.
            zfs-fuse --enable-xattr --pidfile "$ZFS_FUSE_PID" 9>&- || die "zfs-fuse did not start (is /dev/fuse there?)"
            for _ in $(seq 150); do zpool list >/dev/null 2>&1 && break; sleep 0.1; done
            zpool list >/dev/null 2>&1 || die "zfs-fuse started but zpool list does not answer"
            zfs_started="$(cat "$ZFS_FUSE_PID" 2>/dev/null || true)"
        fi
    } 9>"$ZFS_FUSE_LOCK"
    if zpool list -H -o name "$zfs_pool" >/dev/null 2>&1; then
        warn "destroying the pool $zfs_pool left by an interrupted run"
        zpool destroy -f "$zfs_pool" 9>&- || die "cannot destroy the old pool $zfs_pool: zpool destroy -f $zfs_pool"
    fi
    truncate -s "$2" "$zfs_dir/pool.img"
    zpool create -m "$zfs_dir/mnt" "$zfs_pool" "$zfs_dir/pool.img" 2>/dev/null ||
        die "zpool create $zfs_pool failed"
}

zfs_down() {
    set +e
    [[ -n "${zfs_pool:-}" ]] || return 0
    local i
    for i in $(seq 30); do
        zpool list -H -o name "$zfs_pool" >/dev/null 2>&1 || break
        zpool destroy -f "$zfs_pool" 2>/dev/null && break
        sleep 0.3
    done
    zpool list -H -o name "$zfs_pool" >/dev/null 2>&1 && warn "pool $zfs_pool is still there: zpool destroy -f $zfs_pool"
    if [[ -n "$zfs_started" ]]; then
        {
            flock 9
            if [[ -z "$(zpool list -H -o name 2>/dev/null)" ]]; then
                kill "$zfs_started" 2>/dev/null
                for i in $(seq 100); do kill -0 "$zfs_started" 2>/dev/null || break; sleep 0.1; done
                rm -f "$ZFS_FUSE_PID"
            fi
        } 9>"$ZFS_FUSE_LOCK"
    fi
    remove_dir_and_mounts "$zfs_dir"
    zfs_pool=""
}
