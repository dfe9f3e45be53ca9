#!/usr/bin/env bash
# Multiprocess under network and process faults: a coordinator in the root
# network namespace and four workers, each in a namespace of its own behind
# a veth pair; one of them (the fourth) suffers the fault. For each fault,
# the wall time against the healthy run and whether summary.json equals
# serial mode's, byte for byte.
#
#   healthy     no fault
#   loss30      30 % packet loss both ways (netem; where the kernel has
#               none, iptables' statistic match drops 30 % of the packets
#               in and out of the worker's namespace; skipped without either)
#   delay500    500 ms added to every packet the worker sends (netem; where
#               the kernel has none, hostile/delay_relay.py holds every
#               read from the worker 500 ms before passing it on)
#   partition   the worker's link down for 20 s, 1 s into the run
#   sigstop     the worker stopped (SIGSTOP) 1 s into the run, never resumed
#   silent      the fourth worker is a token holder that announces 256
#               threads, heartbeats and never answers (hostile/silent_worker.py)
#
# Needs root, `ip` (iproute2) and python3; skips plainly without.
# usage: docs/fault-matrix.sh [PARPIPE_BINARY] [LINES]   (default 6000000:
#        long enough that the faults 1 s in strike mid-run)
set -euo pipefail

if [ "$(id -u)" != 0 ]; then echo "SKIPPED: needs root (network namespaces)"; exit 0; fi
for tool in ip python3; do
  command -v "$tool" >/dev/null || { echo "SKIPPED: $tool not found"; exit 0; }
done
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../target/release/parpipe}
LINES=${2:-6000000}
[ -x "$BIN" ] || { echo "no parpipe binary at $BIN (cargo build --release)"; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/parpipe-fault-matrix.XXXXXX")
N=4
PIDS=()
NETEM=no
if command -v tc >/dev/null && tc qdisc add dev lo root netem delay 0ms 2>/dev/null; then
  tc qdisc del dev lo root; NETEM=yes
fi
# Packet loss: netem where the kernel has it, else iptables' `statistic`
# match dropping packets at random in the worker's namespace.
LOSS=no
if [ $NETEM = yes ]; then
  LOSS=netem
elif command -v iptables >/dev/null; then
  LOSS=iptables
fi

cleanup() {
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for i in $(seq $N); do ip netns del "ppfm$i" 2>/dev/null || true; ip link del "ppfmh$i" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for i in $(seq $N); do
  ip netns add "ppfm$i"
  ip link add "ppfmh$i" type veth peer name "ppfmw$i"
  ip link set "ppfmw$i" netns "ppfm$i"
  ip addr add "10.77.$i.1/24" dev "ppfmh$i"
  ip link set "ppfmh$i" up
  ip netns exec "ppfm$i" ip addr add "10.77.$i.2/24" dev "ppfmw$i"
  ip netns exec "ppfm$i" ip link set "ppfmw$i" up
  ip netns exec "ppfm$i" ip link set lo up
done

echo "fault-matrix-token-$$" > "$WORK/token"
"$BIN" generate --records "$LINES" --seed 7 > "$WORK/input.log"
"$BIN" -q run --mode serial --input "$WORK/input.log" --out "$WORK/serial"

# One run with fault $1; prints its wall time and the summary's verdict.
run() {
  local fault=$1 out="$WORK/out-$1" log="$WORK/coord-$1.log"
  PIDS=()
  local t0; t0=$(date +%s.%N)
  "$BIN" run --mode multiprocess --workers 0 --listen 0.0.0.0:0 \
    --token-file "$WORK/token" --input "$WORK/input.log" --out "$out" \
    --worker-wait-timeout 30 -v 2>"$log" &
  local coord=$!
  local port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/^parpipe: listening on .*:\([0-9]*\)$/\1/p' "$log")
    [ -n "$port" ] && break
    sleep 0.05
  done
  local target4="10.77.4.1:$port"
  case $fault in
    loss30)
      if [ $LOSS = netem ]; then
        tc qdisc add dev ppfmh4 root netem loss 30%
        ip netns exec ppfm4 tc qdisc add dev ppfmw4 root netem loss 30%
      else
        for chain in INPUT OUTPUT; do
          ip netns exec ppfm4 iptables -A $chain -m statistic --mode random \
            --probability 0.3 -j DROP
        done
      fi ;;
    delay500)
      if [ $NETEM = yes ]; then
        ip netns exec ppfm4 tc qdisc add dev ppfmw4 root netem delay 500ms
      else
        python3 "$HERE/hostile/delay_relay.py" 10.77.4.1:7799 "127.0.0.1:$port" 500 \
          >"$WORK/relay.log" 2>&1 &
        PIDS+=($!)
        for _ in $(seq 100); do grep -q ready "$WORK/relay.log" && break; sleep 0.05; done
        target4=10.77.4.1:7799
      fi ;;
  esac
  # All four are started at once, the one that suffers the fault first.
  for i in $N $(seq $((N - 1))); do
    local target="10.77.$i.1:$port"
    [ "$i" = 4 ] && target=$target4
    if [ "$fault" = silent ] && [ "$i" = 4 ]; then
      ip netns exec ppfm4 python3 "$HERE/hostile/silent_worker.py" "$target" \
        "$WORK/token" >"$WORK/w$i-$fault.log" 2>&1 &
    else
      ip netns exec "ppfm$i" "$BIN" worker --connect "$target" \
        --token-file "$WORK/token" --threads 1 2>"$WORK/w$i-$fault.log" &
    fi
    PIDS+=($!)
    [ "$i" = $N ] && FAULTY=$!
  done
  case $fault in
    partition) sleep 1; ip link set ppfmh4 down; (sleep 20; ip link set ppfmh4 up) & ;;
    sigstop) sleep 1; kill -STOP "$FAULTY" 2>/dev/null || true ;;
  esac
  local rc=0
  wait "$coord" || rc=$?
  local t1; t1=$(date +%s.%N)
  if [ $NETEM = yes ]; then
    tc qdisc del dev ppfmh4 root 2>/dev/null || true
    ip netns exec ppfm4 tc qdisc del dev ppfmw4 root 2>/dev/null || true
  fi
  if [ $LOSS = iptables ]; then
    ip netns exec ppfm4 iptables -F 2>/dev/null || true
  fi
  ip link set ppfmh4 up
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  local same=no
  cmp -s "$out/summary.json" "$WORK/serial/summary.json" && same=yes
  local wall; wall=$(echo "$t1 - $t0" | bc)
  local again; again=$(grep -c "is overdue" "$log" || true)
  printf '%-10s exit %d  wall %6.2f s  summary identical to serial: %s  chunks sent again: %s\n' \
    "$fault" "$rc" "$wall" "$same" "$again"
  echo "$wall" > "$WORK/wall-$fault"
}

FAULTS="delay500 partition sigstop silent"
if [ $LOSS != no ]; then
  FAULTS="loss30 $FAULTS"
else
  echo "SKIPPED loss30: no netem in this kernel and no iptables (apt-get install iptables)"
fi
for fault in healthy $FAULTS; do
  run "$fault"
done
healthy=$(cat "$WORK/wall-healthy")
echo
for fault in $FAULTS; do
  printf '%-10s %.2f x the healthy run\n' "$fault" "$(echo "$(cat "$WORK/wall-$fault") / $healthy" | bc -l)"
done
