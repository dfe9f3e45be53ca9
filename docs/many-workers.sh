#!/usr/bin/env bash
# Many workers at once: one coordinator (`--workers 0`, loopback, a token)
# and N `parpipe worker --connect` processes started together. Prints the
# coordinator's exit code and peak RSS (VmHWM, polled every 0.2 s), how
# many workers joined, and what the workers printed (counted, addresses,
# times and delays folded).
# usage: docs/many-workers.sh [PARPIPE_BINARY] [N] [RECORDS]
#        (defaults: target/release/parpipe, 500, 3000000)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../target/release/parpipe}
N=${2:-500}
RECORDS=${3:-3000000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "many-workers-token-$$" > "$WORK/token"
"$BIN" run --mode multiprocess --workers 0 --token-file "$WORK/token" \
  --listen 127.0.0.1:0 --worker-wait-timeout 60 --records "$RECORDS" \
  --out "$WORK/out" -v 2>"$WORK/coordinator.log" &
COORD=$!
PORT=""
for _ in $(seq 200); do
  PORT=$(sed -n 's/^parpipe: listening on .*:\([0-9]*\)$/\1/p' "$WORK/coordinator.log")
  [ -n "$PORT" ] && break
  sleep 0.05
done
WORKERS=()
for i in $(seq "$N"); do
  "$BIN" worker --connect "127.0.0.1:$PORT" --token-file "$WORK/token" --threads 1 \
    2>"$WORK/worker-$i.log" &
  WORKERS+=($!)
done
PEAK=0
while kill -0 "$COORD" 2>/dev/null; do
  r=$(awk '/VmHWM/{print $2}' "/proc/$COORD/status" 2>/dev/null || true)
  [ -n "$r" ] && PEAK=$r
  sleep 0.2
done
RC=0; wait "$COORD" || RC=$?
FAILED=0
for p in "${WORKERS[@]}"; do wait "$p" || FAILED=$((FAILED + 1)); done
echo "coordinator: exit $RC, peak RSS $((PEAK / 1024)) MiB"
echo "workers: $N started, $(grep -c 'worker joined' "$WORK/coordinator.log") joined, $FAILED exited non-zero"
echo "refusals logged by the coordinator: $(grep -c 'already in the handshake' "$WORK/coordinator.log" || true)"
echo "what the workers printed:"
cat "$WORK"/worker-*.log | sed -E 's/^[0-9T:.Z-]+ +//; s/127\.0\.0\.1:[0-9]+/ADDR/g; s/in [0-9]+ ms/in N ms/' \
  | sort | uniq -c | sort -rn | head -5
