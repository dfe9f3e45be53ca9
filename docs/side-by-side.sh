#!/bin/bash
# Usage: cargo build --release; target/release/parpipe generate --records 1000000 --output /tmp/gen-1m.log
#        F=/tmp/gen-1m.log N=10 docs/side-by-side.sh
# Side by side, interleaved: serial, two serial processes on the two halves at once (the
# machine's bound for two independent workers), pipeline --replicas auto, multiprocess.
P=${P:-target/release/parpipe}; F=${F:?set F to a log file, e.g. F=/tmp/gen-1m.log}; N=${N:-10}
n=$(wc -l < $F); head -n $((n/2)) $F > /tmp/sbs-h1.log; tail -n +$((n/2+1)) $F > /tmp/sbs-h2.log
ms() { local s=$(date +%s%N); "$@" >/dev/null 2>&1 || echo FAIL >&2; local e=$(date +%s%N); echo $(( (e-s)/1000000 )); }
for i in $(seq $N); do
  a=$(ms $P run -q --mode serial --input $F --out /tmp/sbs-s)
  b=$(ms bash -c "$P run -q --mode serial --input /tmp/sbs-h1.log --out /tmp/sbs-h1 & $P run -q --mode serial --input /tmp/sbs-h2.log --out /tmp/sbs-h2; wait")
  c=$(ms $P run -q --mode pipeline --replicas auto --input $F --out /tmp/sbs-p)
  d=$(ms $P run -q --mode multiprocess --workers 2 --input $F --out /tmp/sbs-m)
  echo "$a $b $c $d"
  cmp -s /tmp/sbs-s/summary.json /tmp/sbs-p/summary.json || echo "pipeline DIFFERS" >&2
  cmp -s /tmp/sbs-s/summary.json /tmp/sbs-m/summary.json || echo "multiprocess DIFFERS" >&2
done | python3 -c "
import sys, statistics as st
rows=[list(map(int,l.split())) for l in sys.stdin if l.strip()]
names=['serial','halves','pipeline','multiprocess']
for j,nm in enumerate(names):
    col=[r[j] for r in rows]; print(f'{nm:13s} median {st.median(col):6.0f} ms  min {min(col):5d}  max {max(col):5d}')
s=[r[0] for r in rows]
for j in (1,2,3):
    ratios=[r[0]/r[j] for r in rows]
    print(f'serial/{names[j]:12s} median of per-round ratios {st.median(ratios):.2f}  (range {min(ratios):.2f}-{max(ratios):.2f}); ratio of medians {st.median(s)/st.median([r[j] for r in rows]):.2f}')
"
