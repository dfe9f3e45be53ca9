#!/bin/bash
# A simulated cluster on one machine: network namespaces for a coordinator
# host and WORKERS worker hosts, joined by a bridge that lives in a
# namespace of its own (the machine's own network is never touched), each
# host's link shaped with tc to RATE in both directions. For each rate it
# runs one job twice: workers receiving every byte through the
# coordinator's link ("shipped"), and workers allowed to read the shared
# input themselves (--allow-read, "ranges"; all namespaces see the same
# file system, as nodes see one NFS export). It prints the wall time, the
# bytes over each link, and whether the outputs are byte-identical to
# serial mode's.
#
# Needs root (namespaces, tc); without it, it says so and exits 0.
# Usage: sudo docs/cluster-sim.sh
# Environment: LINES (1000000), RATES ("1gbit 100mbit"), WORKERS (3),
#              BIN (target/release/parpipe).
set -euo pipefail

LINES=${LINES:-1000000}
RATES=${RATES:-"1gbit 100mbit"}
WORKERS=${WORKERS:-3}
BIN=$(realpath "${BIN:-target/release/parpipe}")

if [ "$(id -u)" != 0 ]; then
  echo "cluster-sim: SKIPPED: needs root (network namespaces and tc)"
  exit 0
fi
if ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
  echo "cluster-sim: SKIPPED: needs ip and tc (iproute2)"
  exit 0
fi

P="pp$$"                       # unique names: several runs may overlap
WORK=$(mktemp -d /tmp/parpipe-cluster-sim.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for ns in "$P-sw" "$P-c" $(seq -f "$P-w%g" 1 "$WORKERS"); do
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! ip netns add "$P-sw" 2>/dev/null; then
  echo "cluster-sim: SKIPPED: cannot create network namespaces here"
  exit 0
fi
ip netns exec "$P-sw" ip link add br0 type bridge
ip netns exec "$P-sw" ip link set br0 up

# host NAMESPACE DEVICE ADDRESS: a host on the bridge.
host() {
  ip netns add "$1"
  ip link add "$2" netns "$1" type veth peer name "$2-br" netns "$P-sw"
  ip netns exec "$P-sw" ip link set "$2-br" master br0 up
  ip netns exec "$1" ip addr add "$3/24" dev "$2"
  ip netns exec "$1" ip link set "$2" up
  ip netns exec "$1" ip link set lo up
}
host "$P-c" c0 10.77.0.1
for i in $(seq 1 "$WORKERS"); do host "$P-w$i" "w$i" "10.77.0.$((10 + i))"; done

# shape RATE: every link, both directions (egress of each veth end).
shape() {
  local dev ns
  for pair in "$P-c:c0" $(for i in $(seq 1 "$WORKERS"); do echo "$P-w$i:w$i"; done); do
    ns=${pair%%:*} dev=${pair##*:}
    ip netns exec "$ns" tc qdisc replace dev "$dev" root tbf rate "$1" burst 256kb latency 100ms
    ip netns exec "$P-sw" tc qdisc replace dev "$dev-br" root tbf rate "$1" burst 256kb latency 100ms
  done
}

# bytes NAMESPACE DEVICE: bytes sent plus received on that link so far.
bytes() {
  local s=/sys/class/net/$2/statistics
  ip netns exec "$1" sh -c "echo \$((\$(cat $s/tx_bytes) + \$(cat $s/rx_bytes)))"
}

mkdir -p "$WORK/data"
DATA="$WORK/data"
"$BIN" generate --records "$LINES" --seed 11 --output "$DATA/access.log"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/token"
"$BIN" run -q --mode serial --input "$DATA/access.log" --out "$WORK/serial"
echo "input: $LINES lines, $(stat -c %s "$DATA/access.log") bytes; $WORKERS worker hosts"

# job LABEL [WORKER ARGS…]: one multiprocess run across the namespaces.
job() {
  local label=$1 out="$WORK/out-$1" log="$WORK/coord-$1.log"
  shift
  local before_c before_w=()
  before_c=$(bytes "$P-c" c0)
  for i in $(seq 1 "$WORKERS"); do before_w+=("$(bytes "$P-w$i" "w$i")"); done
  # The coordinator's stderr comes through a pipe: reading it waits for
  # the `listening on` line (or the end, if it dies first), so nothing is
  # read before it is written; the rest goes on to the log.
  local pipe="$WORK/coord-$label.pipe"
  mkfifo "$pipe"
  : >"$log"
  ip netns exec "$P-c" "$BIN" -v run --mode multiprocess --workers 0 \
    --listen 10.77.0.1:0 --token-file "$WORK/token" --worker-wait-timeout 30 \
    --input "$DATA/access.log" --out "$out" -q 2>"$pipe" &
  local coord=$!
  PIDS+=("$coord")
  local addr="" line
  exec 3<"$pipe"
  while IFS= read -r line <&3; do
    echo "$line" >>"$log"
    case $line in "parpipe: listening on "*) addr=${line#parpipe: listening on }; break ;; esac
  done
  cat <&3 >>"$log" &
  local relay=$!
  exec 3<&-
  if [ -z "$addr" ]; then
    wait "$relay" || true
    echo "cluster-sim: the coordinator did not start:"; cat "$log"; exit 1
  fi
  local workers=()
  for i in $(seq 1 "$WORKERS"); do
    ip netns exec "$P-w$i" "$BIN" worker --connect "$addr" --token-file "$WORK/token" \
      --threads 1 "$@" 2>"$WORK/worker-$label-$i.log" &
    workers+=($!)
    PIDS+=($!)
  done
  local rc=0
  wait "$coord" || rc=$?
  wait "$relay" || true
  for w in "${workers[@]}"; do wait "$w" || true; done
  if [ "$rc" != 0 ]; then echo "cluster-sim: $label failed ($rc):"; cat "$log"; exit 1; fi
  local wall same links
  wall=$(grep -o '"wall_seconds": *[0-9.]*' "$out/report.json" | grep -o '[0-9.]*$')
  same="identical to serial"
  for f in "$WORK/serial"/*; do
    case $(basename "$f") in report.json) continue ;; esac
    cmp -s "$f" "$out/$(basename "$f")" || same="DIFFERENT from serial ($(basename "$f"))"
  done
  links="coordinator link $(($(bytes "$P-c" c0) - before_c)) bytes"
  for i in $(seq 1 "$WORKERS"); do
    links="$links, worker $i $(($(bytes "$P-w$i" "w$i") - before_w[i - 1])) bytes"
  done
  printf '  %-8s %8.2f s  %s; outputs %s\n' "$label" "$wall" "$links" "$same"
}

for rate in $RATES; do
  shape "$rate"
  echo "links at $rate:"
  job shipped
  job ranges --allow-read "$DATA"
done
