#!/usr/bin/env bash
# Benchmarks lxcri against runc's shim on one private containerd, same image, in one run, and
# prints medians and the ratio lxcri/runc:
#   (a) `ctr run --rm IMG ID /bin/sh -c true`, N runs each, alternating;
#   (b) RSS of the shim process holding one running container (lxcri's monitor shown too);
#   (c) 20 containers started concurrently (`ctr run -d`): total wall time and p95 start latency;
#   exec latency (`ctr task exec ID true`);
#   (d) rootfs on ZFS (a throw-away pool: zfs-fuse on a file where the kernel has no ZFS), images
#       of 10 MB and 500 MB: `ctr run --rm` once the image's base exists, lxcri on ZFS clones vs
#       runc on overlayfs, and the ratio 500 MB / 10 MB of each; the first container of an image
#       (the base build) in MB/s; pool space used by 20 containers of the 500 MB image against
#       the image's base alone (skip with LXCRI_BENCH_ZFS=0);
#   then image-core's benches: validation vs deserialisation, streaming digest vs sha256sum.
# The machines are noisy: read medians. Usage: scripts/bench.sh [N] (default 20).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$LXCRI_ROOT"
[[ $(id -u) -eq 0 ]] || die "run as root"
N="${1:-20}"
CONC=20

scripts/setup.sh >/dev/null
scripts/build.sh >/dev/null 2>&1 || scripts/build.sh
bin="$LXCRI_ROOT/target/release"
containerd_up lxcri-bench bench "$bin"
"$bin/lxcri" image build --name local/busybox:latest --busybox --cmd /bin/sh -o "$work/bb.tar" >/dev/null
ctr_ images import "$work/bb.tar" >/dev/null

# median of numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END{if(NR==0){print "nan"} else if(NR%2){print a[(NR+1)/2]} else {printf "%.1f\n",(a[NR/2]+a[NR/2+1])/2}}'; }
p95() { sort -n | awk '{a[NR]=$1} END{i=int(NR*0.95+0.999); if(i<1)i=1; if(i>NR)i=NR; print a[i]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "nan" }'; }
declare -A RT=([lxcri]=io.containerd.lxcri.v2 [runc]=io.containerd.runc.v2)

echo "== (a) ctr run --rm IMG ID /bin/sh -c true, $N runs each (alternating), ms"
# one warm-up each
for r in lxcri runc; do ctr_ run --rm --runtime "${RT[$r]}" local/busybox:latest "warm-$r" /bin/sh -c true; done
: >"$work/a-lxcri"; : >"$work/a-runc"
for i in $(seq "$N"); do
    for r in lxcri runc; do
        t0=$(now_ms)
        ctr_ run --rm --runtime "${RT[$r]}" local/busybox:latest "a-$r-$i" /bin/sh -c true
        echo $(($(now_ms) - t0)) >>"$work/a-$r"
    done
done
a_l=$(median <"$work/a-lxcri"); a_r=$(median <"$work/a-runc")
echo "lxcri median ${a_l} ms, runc median ${a_r} ms, ratio lxcri/runc $(ratio "$a_l" "$a_r") (target <= 1.0)"

echo "== (b) RSS of the shim holding one running container, kB"
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
shim_pid() { # shim of container $1 whose binary name matches $2
    pgrep -f -- "$2.*-id $1( |$)" | head -1
}
for r in lxcri runc; do ctr_ run -d --runtime "${RT[$r]}" local/busybox:latest "b-$r" sleep 300; done
sleep 1
s_l=$(shim_pid b-lxcri containerd-shim-lxcri-v2); s_r=$(shim_pid b-runc containerd-shim-runc-v2)
[[ -n "$s_l" && -n "$s_r" ]] || die "could not find the shim processes"
r_l=$(rss "$s_l"); r_r=$(rss "$s_r")
mon=$(pgrep -f -- "lxcri-monitor .* b-lxcri$" | head -1 || true)
r_m=$([[ -n "$mon" ]] && rss "$mon" || echo 0)
echo "lxcri shim ${r_l} kB (plus its LXC monitor ${r_m} kB), runc shim ${r_r} kB"
echo "ratio lxcri/runc: shim alone $(ratio "$r_l" "$r_r") (target <= 0.35), shim+monitor $(ratio $((r_l + r_m)) "$r_r")"
for r in lxcri runc; do
    ctr_ task kill -s SIGKILL "b-$r"
done
sleep 0.5
for r in lxcri runc; do ctr_ task delete "b-$r" >/dev/null; ctr_ container rm "b-$r"; done

echo "== exec latency: ctr task exec ID true, $N runs each (alternating), ms"
for r in lxcri runc; do ctr_ run -d --runtime "${RT[$r]}" local/busybox:latest "x-$r" sleep 300; done
: >"$work/x-lxcri"; : >"$work/x-runc"
for i in $(seq "$N"); do
    for r in lxcri runc; do
        t0=$(now_ms)
        ctr_ task exec --exec-id "e$i" "x-$r" true
        echo $(($(now_ms) - t0)) >>"$work/x-$r"
    done
done
x_l=$(median <"$work/x-lxcri"); x_r=$(median <"$work/x-runc")
echo "lxcri median ${x_l} ms, runc median ${x_r} ms, ratio lxcri/runc $(ratio "$x_l" "$x_r")"
for r in lxcri runc; do ctr_ task kill -s SIGKILL "x-$r"; done
sleep 0.5
for r in lxcri runc; do ctr_ task delete "x-$r" >/dev/null; ctr_ container rm "x-$r"; done

echo "== (c) $CONC containers started concurrently (ctr run -d), wall ms and p95 start ms"
for r in lxcri runc; do
    : >"$work/c-$r"
    t0=$(now_ms)
    pids=()
    for i in $(seq "$CONC"); do
        (s=$(now_ms); ctr_ run -d --runtime "${RT[$r]}" local/busybox:latest "c-$r-$i" sleep 300 >/dev/null && echo $(($(now_ms) - s)) >>"$work/c-$r") &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    wall=$(($(now_ms) - t0))
    echo "$wall" >"$work/c-$r-wall"
    started=$(wc -l <"$work/c-$r")
    for i in $(seq "$CONC"); do ctr_ task kill -s SIGKILL "c-$r-$i" >/dev/null 2>&1 || true; done
    sleep 1
    for i in $(seq "$CONC"); do ctr_ task delete "c-$r-$i" >/dev/null 2>&1; ctr_ container rm "c-$r-$i" >/dev/null 2>&1; done
    echo "$r: $started/$CONC started, wall ${wall} ms, p95 $(p95 <"$work/c-$r") ms"
done
w_l=$(cat "$work/c-lxcri-wall"); w_r=$(cat "$work/c-runc-wall")
echo "ratio lxcri/runc: wall $(ratio "$w_l" "$w_r"), p95 $(ratio "$(p95 <"$work/c-lxcri")" "$(p95 <"$work/c-runc")") (target <= 1.0)"

if [[ "${LXCRI_BENCH_ZFS:-1}" != 0 ]]; then
    echo "== (d) rootfs on ZFS: images of 10 MB and 500 MB (busybox + files of random bytes)"
    trap 'containerd_down; zfs_down' EXIT
    zfs_up lxcri-bench 3G
    zcfg="$work/lxcri-zfs.toml"
    printf '[zfs]\ndataset = "%s/lxcri"\nmount_root = "%s/root"\ngc_interval_secs = 0\n' "$zfs_pool" "$zfs_dir" >"$zcfg"
    declare -A MB=([small]=10 [big]=500)
    for size in small big; do
        d="$work/data-$size"
        mkdir -p "$d"
        for i in $(seq "${MB[$size]}"); do head -c 1048576 /dev/urandom >"$d/f$i"; done
        "$bin/lxcri" image build --name "local/$size:1" --busybox --layer "$d" --cmd /bin/sh -o "$work/$size.tar" >/dev/null
        rm -rf "$d"
        ctr_ images import "$work/$size.tar" >/dev/null
        rm -f "$work/$size.tar"
    done
    zrun() { ctr_ run --rm --runtime io.containerd.lxcri.v2 --runtime-config-path "$zcfg" "$@"; }
    # First container of each image: the base build, timed by the shim's own log lines.
    for size in small big; do
        t0=$(now_ms)
        zrun "local/$size:1" "first-$size" /bin/sh -c true
        echo "$(($(now_ms) - t0))" >"$work/first-$size"
    done
    ms_of() { date -d "$(sed -E 's/^time="([^"]+)".*/\1/' <<<"$1")" +%s%3N; }
    for size in small big; do
        b=$(grep "layerfs: building base" "$work/containerd.log" | grep -n "" | sed -n "$([[ $size == small ]] && echo 1 || echo 2)p" | cut -d: -f2-)
        base=$(sed -E 's/.*building base ([^ ]+) from.*/\1/' <<<"$b")
        c=$(grep "cloned from $base@base" "$work/containerd.log" | head -1)
        build_ms=$(($(ms_of "$c") - $(ms_of "$b")))
        used=$(zfs get -H -p -o value used "$base")
        echo "first container of the ${MB[$size]} MB image: ctr run --rm $(cat "$work/first-$size") ms, base build $build_ms ms = $(awk -v m="$used" -v t="$build_ms" 'BEGIN{printf "%.1f", m/1048576/(t/1000)}') MB/s (base $(awk -v m="$used" 'BEGIN{printf "%.1f", m/1048576}') MB)"
        echo "$base" >"$work/base-$size"
    done
    echo "-- ctr run --rm IMG ID /bin/sh -c true once the base exists, $N runs each (alternating), ms"
    for r in lxcri runc; do for size in small big; do : >"$work/d-$r-$size"; done; done
    for i in $(seq "$N"); do
        for size in small big; do
            t0=$(now_ms)
            zrun "local/$size:1" "d-z-$size-$i" /bin/sh -c true
            echo $(($(now_ms) - t0)) >>"$work/d-lxcri-$size"
            t0=$(now_ms)
            ctr_ run --rm --runtime io.containerd.runc.v2 "local/$size:1" "d-r-$size-$i" /bin/sh -c true
            echo $(($(now_ms) - t0)) >>"$work/d-runc-$size"
        done
    done
    for r in lxcri runc; do
        s_=$(median <"$work/d-$r-small"); b_=$(median <"$work/d-$r-big")
        label=$([[ $r == lxcri ]] && echo "lxcri (ZFS clone)" || echo "runc (overlayfs)")
        echo "$label: 10 MB ${s_} ms, 500 MB ${b_} ms, ratio 500/10 $(ratio "$b_" "$s_") (target <= 1.2)"
        eval "d_$r=$b_"
    done
    # shellcheck disable=SC2154 # set by eval above
    echo "ratio lxcri/runc for the 500 MB image: $(ratio "$d_lxcri" "$d_runc")"
    echo "-- pool space of 20 containers of the 500 MB image (ctr run -d)"
    for i in $(seq 20); do ctr_ run -d --runtime io.containerd.lxcri.v2 --runtime-config-path "$zcfg" local/big:1 "sp-$i" sleep 300 >/dev/null; done
    base_used=$(zfs get -H -p -o value used "$(cat "$work/base-big")")
    clones_used=0
    for i in $(seq 20); do
        clones_used=$((clones_used + $(zfs get -H -p -o value used "$zfs_pool/lxcri/containers/bench-sp-$i")))
    done
    echo "base $(awk -v b="$base_used" 'BEGIN{printf "%.1f", b/1048576}') MB; 20 clones add $(awk -v b="$clones_used" 'BEGIN{printf "%.2f", b/1048576}') MB; (base + clones) / base = $(awk -v b="$base_used" -v c="$clones_used" 'BEGIN{printf "%.3f", (b+c)/b}') (target <= 1.1)"
    for i in $(seq 20); do ctr_ task kill -s SIGKILL "sp-$i" >/dev/null 2>&1; done
    sleep 1
    for i in $(seq 20); do ctr_ task delete "sp-$i" >/dev/null 2>&1; ctr_ container rm "sp-$i" >/dev/null 2>&1; done
    left=$(zfs list -H -r -o name "$zfs_pool/lxcri/containers" | tail -n +2 | wc -l)
    [[ "$left" == 0 ]] || warn "$left clones left after the ZFS bench"
fi

echo "== image-core: validation vs plain oci-spec deserialisation (criterion, medians)"
cargo bench -q -p image-core --bench validate 2>/dev/null | grep 'ratio validate/deserialize'
echo "== image-core: streaming verification of a 500 MB layer vs sha256sum (median of 3)"
cargo bench -q -p image-core --bench verify 2>/dev/null | grep -E '^verify'

echo "== (d) pod start through the CRI (RunPodSandbox + CreateContainer + StartContainer), median of 10"
# Two runtime handlers (lxcri, runc) of one containerd with its CRI plugin, a private CNI bridge
# and lxcri's pause image: integration/tests/cri_bench.rs.
LXCRI_BENCH_PODS=10 cargo test --release -q -p integration --test cri_bench -- --ignored --nocapture 2>/dev/null |
    grep '^pod start' || echo "pod start benchmark failed: run cargo test --release -p integration --test cri_bench -- --ignored --nocapture"
