#!/bin/sh
# The cost of the per-frame MAC (docs/protocol.md §5): wall time of a
# multiprocess run with this build against one without the MAC, in
# interleaved rounds (which binary goes first alternates), and the median
# of the per-round ratios.
#
# usage: docs/mac-cost.sh WITHOUT WITH [ROUNDS] [parpipe run arguments]
#   WITHOUT, WITH  two parpipe binaries (e.g. main before protocol 7, and this build)
#   ROUNDS         default 15
#   arguments      default: --mode multiprocess --workers 2 --records 1000000
set -eu
without=$1 with=$2
rounds=${3:-15}
[ $# -ge 3 ] && shift 3 || shift $#
[ $# -gt 0 ] || set -- --mode multiprocess --workers 2 --records 1000000
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Microseconds of one run of `$1 run ARGS --out DIR -q`.
micros() {
    bin=$1
    shift
    start=$(date +%s%N)
    "$bin" run "$@" --out "$out/run" -q >/dev/null
    end=$(date +%s%N)
    echo $(((end - start) / 1000))
}

echo "round without_us with_us ratio"
i=0
while [ "$i" -lt "$rounds" ]; do
    if [ $((i % 2)) -eq 0 ]; then
        a=$(micros "$without" "$@")
        b=$(micros "$with" "$@")
    else
        b=$(micros "$with" "$@")
        a=$(micros "$without" "$@")
    fi
    echo "$i $a $b $(awk "BEGIN { printf \"%.3f\", $b / $a }")"
    i=$((i + 1))
done | tee "$out/rounds"
sort -n -k4 "$out/rounds" | awk -v n="$rounds" '
    { r[NR] = $4 }
    END { printf "median ratio %.3f over %d rounds (min %.3f, max %.3f)\n", r[int((n + 1) / 2)], n, r[1], r[n] }'
