#!/bin/bash
# Serial, the machine's bound, pipeline and multiprocess, interleaved round by round.
#
# Usage: cargo build --release
#        target/release/parpipe generate --records 1000000 --output /tmp/gen-1m.log
#        F=/tmp/gen-1m.log N=10 docs/side-by-side.sh
#
# The bound: K serial processes (K = cores, or K=...) run at once, each on 1/K of the
# file's lines, with nothing to share or merge. No split of the work over K cores can
# beat it on this machine, so "fraction of the bound" = bound time / mode time.
# Each round runs serial, bound, pipeline (--replicas auto) and multiprocess
# (--workers K) back to back, starting at a different one each round, so a slow
# minute hits all four alike; the ratios are taken within each round, then the
# median over rounds is printed.
# Times are whole-process wall times, taken in microseconds. Every mode's summary.json is compared with serial's.
# Every column reads a file written here, at the same time: the parts and one whole copy of
# F (their concatenation). A file that has been in the page cache for long, or was read
# back from disk, can cost a serial run 3-7% more than a fresh copy of the same bytes (the
# kernel keeps it in smaller pieces), and the bound must not win by reading fresher pages.
set -u
P=${P:-target/release/parpipe}
F=${F:?set F to a log file, e.g. F=/tmp/gen-1m.log}
N=${N:-10}
K=${K:-$(nproc)}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
split -n l/"$K" -d "$F" "$T/part-"
# The parts, listed once: the outputs written beside them must not join the glob.
PARTS=("$T"/part-*)
cat "${PARTS[@]}" >"$T/whole.log"
cmp -s "$F" "$T/whole.log" || { echo "the copy of $F differs from it" >&2; exit 1; }
W=$T/whole.log
us() {
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null 2>&1 || echo "FAILED: $*" >&2
  e=$(date +%s%N)
  echo $(((e - s) / 1000))
}
bound() {
  local f
  local pids=() f
  for f in "${PARTS[@]}"; do
    "$P" run -q --mode serial --input "$f" --out "$f.out" &
    pids+=($!)
  done
  # Fails (and the round says so) if any part failed.
  for f in "${pids[@]}"; do wait "$f" || return 1; done
}
# One column's run: 0 serial, 1 the bound, 2 pipeline, 3 multiprocess.
column() {
  case $1 in
    0) us "$P" run -q --mode serial --input "$W" --out "$T/s" ;;
    1) us bound ;;
    2) us "$P" run -q --mode pipeline --replicas auto --input "$W" --out "$T/p" ;;
    3) us "$P" run -q --mode multiprocess --workers "$K" --input "$W" --out "$T/m" ;;
  esac
}
for round in $(seq "$N"); do
  # Each round starts at another column, so that none always follows another.
  t=()
  for k in 0 1 2 3; do
    j=$(((round + k) % 4))
    t[j]=$(column "$j")
  done
  echo "${t[0]} ${t[1]} ${t[2]} ${t[3]}"
  cmp -s "$T/s/summary.json" "$T/p/summary.json" || echo "pipeline summary DIFFERS" >&2
  cmp -s "$T/s/summary.json" "$T/m/summary.json" || echo "multiprocess summary DIFFERS" >&2
done | python3 -c "
import sys, statistics as st
rows = [list(map(int, l.split())) for l in sys.stdin if l.strip()]
names = ['serial', 'bound ($K at once)', 'pipeline', 'multiprocess']
print(f'{len(rows)} rounds, $K cores, file $F')
for j, nm in enumerate(names):
    col = [r[j] for r in rows]
    print(f'{nm:20s} median {st.median(col) / 1000:6.1f} ms  min {min(col) / 1000:6.1f}  max {max(col) / 1000:6.1f}')
for j in (1, 2, 3):
    over_serial = [r[0] / r[j] for r in rows]
    line = f'{names[j]:20s} x serial: median {st.median(over_serial):.2f} (range {min(over_serial):.2f}-{max(over_serial):.2f})'
    if j > 1:
        of_bound = [r[1] / r[j] for r in rows]
        line += f'; fraction of the bound: median {st.median(of_bound):.1%} (range {min(of_bound):.0%}-{max(of_bound):.0%})'
    print(line)
"
