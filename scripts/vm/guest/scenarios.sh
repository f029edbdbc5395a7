#!/bin/bash
# Runs in the guest as the payload's cmd.sh (scripts/vm/lane.sh puts it there): every line of
# /payload/scenarios.txt ("name mode test-binary limit libtest-filters...") in turn, each test
# binary with its exact test names and its own time limit, its output in /payload/out/<name>.log;
# then checks that the scenario left nothing behind (containerd or shim processes, pools, LXC
# containers, mounts below /tmp). One result line per scenario in /payload/out/results.txt:
# "name ok|FAILED seconds what". Exits non-zero when any scenario failed.
set -uo pipefail
out=/payload/out
: >"$out/results.txt"
failed=0
threads="${LXCRI_VM_TEST_THREADS:-1}"

leftovers() {
    local found=()
    pgrep -x containerd >/dev/null && found+=("containerd: $(pgrep -ax containerd | tr '\n' ';')")
    pgrep -f containerd-shim >/dev/null && found+=("shims: $(pgrep -af containerd-shim | tr '\n' ';')")
    pgrep -f lxcri-monitor >/dev/null && found+=("monitors: $(pgrep -af lxcri-monitor | tr '\n' ';')")
    local pools
    pools="$(zpool list -H -o name 2>/dev/null)"
    [[ -n "$pools" ]] && found+=("pools: $pools")
    local mounts
    mounts="$(awk '$2 ~ "^/tmp/" { print $2 }' /proc/mounts | tr '\n' ' ')"
    [[ -n "$mounts" ]] && found+=("mounts: $mounts")
    printf "%s\n" "${found[@]}"
}

while read -r name mode bin limit filters; do
    [[ -n "$name" && "$mode" == "${LXCRI_VM_MODE:-minimal}" ]] || continue
    log="$out/$name.log"
    echo "=== $name: $bin $filters (limit ${limit} s)" >/dev/console
    start=$(date +%s)
    rc=0
    # shellcheck disable=SC2086 # the filters are a list
    timeout -k 10 "$limit" "/payload/tests/$bin" --exact --test-threads="$threads" $filters \
        </dev/null >"$log" 2>&1 || rc=$?
    secs=$(($(date +%s) - start))
    summary="$(grep -E '^test result:' "$log" | tail -n1)"
    wanted="$(wc -w <<<"$filters")"
    passed="$(sed -nE 's/^test result: ok\. ([0-9]+) passed.*/\1/p' "$log" | tail -n1)"
    failures="$(grep -E '^test .* FAILED$' "$log" | awk '{print $2}' | tr '\n' ' ')"
    left="$(leftovers)"
    if ((rc == 124)); then
        status=FAILED what="time limit of ${limit} s hit"
    elif ((rc != 0)); then
        status=FAILED what="exit $rc: ${failures:-$summary}"
    elif [[ "${passed:-0}" != "$wanted" ]]; then
        status=FAILED what="${passed:-0} of $wanted tests passed: $summary"
    elif grep -q '^SKIPPED' "$log"; then
        status=FAILED what="a test skipped: $(grep -m1 '^SKIPPED' "$log")"
    else
        status=ok what="${summary#test result: }"
    fi
    if [[ -n "$left" ]]; then
        status=FAILED what="$what; left behind: $(tr '\n' ' ' <<<"$left")"
        {
            echo "=== left behind after $name:"
            echo "$left"
        } >>"$log"
    fi
    [[ "$status" == ok ]] || failed=1
    printf '%s %s %s %s\n' "$name" "$status" "$secs" "$what" >>"$out/results.txt"
    echo "=== $name: $status after ${secs} s: $what" >/dev/console
done </payload/scenarios.txt
exit "$failed"
