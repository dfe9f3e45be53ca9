#!/bin/bash
# The two user jobs of examples/ (csv_etl, jsonl_events) in every mode against the
# same per-record code in a plain single-threaded loop, with each global allocator.
#
# Usage:
#   cargo build --release --example csv_etl --example jsonl_events
#   mkdir -p /tmp/pp/glibc && cp target/release/examples/{csv_etl,jsonl_events} /tmp/pp/glibc/
#   cargo build --release --features mimalloc --example csv_etl --example jsonl_events
#   mkdir -p /tmp/pp/mimalloc && cp target/release/examples/{csv_etl,jsonl_events} /tmp/pp/mimalloc/
#   BUILDS="/tmp/pp/glibc /tmp/pp/mimalloc" N=7 RECORDS=1000000 docs/user-pipelines.sh
#
# A build may carry one environment setting for every process it runs, after a '+':
#   BUILDS="/tmp/pp/glibc /tmp/pp/glibc+GLIBC_TUNABLES=glibc.malloc.tcache_count=32"
# Its label is the directory's name, '+', and the setting's last word
# (glibc+tcache_count=32).
#
# Each round runs every (build, mode) pair of a job once, starting at a different pair
# each round, so a slow minute hits all alike. A mode's ratio is its wall time over the
# plain loop's of the same build in the same round; the table prints the median of the
# per-round ratios (and of CPU time = user + system of the process and the children it
# waited for, i.e. multiprocess workers included). The last column compares each
# build's plain loop with the first build's. Every run's stdout is compared with the
# first build's plain loop, byte for byte. Peak RSS is the largest process's (GNU time).
#
# Mode `pipeline` is what pipeline mode picks without flags (reading lanes over these
# plain files), `pipeline-actors` forces the stage actors (`--replicas STAGE=1`).
#
# Mode `bound` is the machine's bound for this code: K plain loops at once (K = cores,
# or K=...), each on 1/K of the records (a CSV part gets the header too), with nothing
# to share or merge; its output is not compared. "fraction of the bound" = the bound's
# wall time over the mode's, per round, median printed. Mode `bound-threads` is the
# same K plain loops on K threads of one process (`--mode plain-threads`), their
# results merged: what threads of one process can reach with this allocator (glibc
# takes its arena locks in every process with more than one thread).
set -u
BUILDS=${BUILDS:?set BUILDS to directories holding csv_etl and jsonl_events builds}
N=${N:-7}
RECORDS=${RECORDS:-1000000}
JOBS=${JOBS:-csv_etl jsonl_events}
MODES=${MODES:-plain bound bound-threads serial pipeline pipeline-auto multiprocess rayon}
K=${K:-$(nproc)}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
read -r -a builds <<<"$BUILDS"
read -r -a modes <<<"$MODES"
flags() {
  case $1 in
    plain | serial | pipeline | rayon | multiprocess) echo "--mode $1" ;;
    bound-threads) echo "--mode plain-threads --workers $K" ;;
    pipeline-auto) echo "--mode pipeline --replicas auto" ;;
    # The stage actors, one per stage (without --replicas a plain file gets lanes).
    pipeline-actors) if [ "$job" = csv_etl ]; then echo "--mode pipeline --replicas validate=1"; else echo "--mode pipeline --replicas check=1"; fi ;;
  esac
}
for job in $JOBS; do
  in=$T/$job.input
  "${builds[0]%%+*}/$job" --generate "$RECORDS" "$in" || exit 1
  "${builds[0]%%+*}/$job" --input "$in" --mode plain >"$T/$job.ref" || exit 1
  # The bound's parts: 1/K of the records each, a CSV header in front of each.
  if [ "$job" = csv_etl ]; then
    head -n 1 "$in" >"$T/header"
    tail -n +2 "$in" >"$T/body"
    split -n l/"$K" -d "$T/body" "$T/$job.body-"
    rm "$T/body"
    for b in "$T/$job".body-*; do cat "$T/header" "$b" >"${b/body/part}" && rm "$b"; done
  else
    split -n l/"$K" -d "$in" "$T/$job.part-"
  fi
  parts=("$T/$job".part-*)
  pairs=()
  for b in "${builds[@]}"; do for m in "${modes[@]}"; do pairs+=("$b|$m"); done; done
  for round in $(seq "$N"); do
    k=${#pairs[@]}
    for i in $(seq 0 $((k - 1))); do
      pair=${pairs[$(((i + round) % k))]}
      spec=${pair%|*} m=${pair#*|}
      b=${spec%%+*} setting=
      label=$(basename "$b")
      if [ "$spec" != "$b" ]; then
        setting=${spec#*+}
        label="$label+${setting##*.}"
      fi
      # shellcheck disable=SC2046
      s=$(date +%s%N)
      if [ "$m" = bound ]; then
        # shellcheck disable=SC2016
        /usr/bin/time -f "%U %S %M" -o "$T/time" env $setting bash -c 'for p in "${@:2}"; do "$1" --input "$p" --mode plain >/dev/null & done; wait' \
          _ "$b/$job" "${parts[@]}" 2>"$T/err"
        rc=$?
        cp "$T/$job.ref" "$T/out"
      else
        /usr/bin/time -f "%U %S %M" -o "$T/time" env $setting "$b/$job" --input "$in" $(flags "$m") >"$T/out" 2>"$T/err"
        rc=$?
      fi
      e=$(date +%s%N)
      if [ $rc -ne 0 ] || ! cmp -s "$T/out" "$T/$job.ref"; then
        echo "FAILED or DIFFERENT: $b/$job $m" >&2
        cat "$T/err" >&2
        exit 1
      fi
      read -r u sy rss < <(tail -n 1 "$T/time")
      echo "$job $label $m $round $(((e - s) / 1000)) $u $sy $rss" >>"$T/rows"
    done
  done
done
first=${builds[0]%%+*}
first=$(basename "$first")
if [ "${builds[0]}" != "${builds[0]%%+*}" ]; then first="$first+${builds[0]##*.}"; fi
python3 - "$T/rows" "$first" "$MODES" <<'EOF'
import sys, statistics as st
from collections import defaultdict
rows = [l.split() for l in open(sys.argv[1])]
first = sys.argv[2]
runs = defaultdict(dict)  # (job, build, mode) -> round -> (wall s, cpu s, rss MiB)
for job, build, mode, rnd, us, u, s, rss in rows:
    # CPU at GNU time's resolution (10 ms), never 0.
    runs[(job, build, mode)][rnd] = (int(us) / 1e6, max(float(u) + float(s), 0.01), int(rss) / 1024)
print("| job | allocator | mode | wall ÷ plain | CPU ÷ plain | fraction of the bound | peak RSS MiB | wall s | plain ÷ first plain |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
modes = sys.argv[3].split()
order = lambda key: (key[0], key[1] != first, key[1], modes.index(key[2]))
for (job, build, mode), r in sorted(runs.items(), key=lambda kv: order(kv[0])):
    plain = runs[(job, build, "plain")]
    base = runs[(job, first, "plain")]
    bound = runs.get((job, build, "bound"))
    med = lambda f: st.median(f(k) for k in r)
    frac = f"{med(lambda k: bound[k][0] / r[k][0]):.2f}" if bound and mode not in ("plain", "bound") else ""
    print(f"| {job} | {build} | {mode} | {med(lambda k: r[k][0] / plain[k][0]):.2f} "
          f"| {med(lambda k: r[k][1] / plain[k][1]):.2f} | {frac} | {med(lambda k: r[k][2]):.0f} "
          f"| {med(lambda k: r[k][0]):.3f} | {st.median(plain[k][0] / base[k][0] for k in r):.2f} |")
EOF
