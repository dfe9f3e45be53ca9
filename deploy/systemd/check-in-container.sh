#!/bin/bash
# Runs parpipe-worker.service under a real systemd: a Debian bookworm
# container booted by systemd-nspawn (systemd as its PID 1, a network of
# its own), the unit as written but for the coordinator's address, a data
# directory holding one readable input and one the worker's user cannot
# read (640 root:adm, as rotated logs often are). It prints what the
# sandboxed worker can read, whether it stays up with no coordinator for
# WAIT seconds, and the result of a job over the readable input and one
# over both (the coordinator, running in the container as root, sends the
# unreadable file's bytes to the worker), each compared with serial mode.
#
# Needs root, debootstrap and systemd-nspawn
# (apt-get install debootstrap systemd-container); without them it says
# so and exits 0. The container's root is made once, in ROOTFS.
# Usage: sudo deploy/systemd/check-in-container.sh  (about a minute once
# the container's root exists; making it takes a few more)
# Environment: BIN (target/release/parpipe), WAIT (40),
#              ROOTFS (/var/tmp/parpipe-nspawn-bookworm).
set -euo pipefail

BIN=$(realpath "${BIN:-target/release/parpipe}")
WAIT=${WAIT:-40}
ROOTFS=${ROOTFS:-/var/tmp/parpipe-nspawn-bookworm}
UNIT="$(dirname "$0")/parpipe-worker.service"

if [ "$(id -u)" != 0 ]; then
  echo "check-in-container: SKIPPED: needs root"
  exit 0
fi
for tool in debootstrap systemd-nspawn nsenter; do
  if ! command -v "$tool" >/dev/null; then
    echo "check-in-container: SKIPPED: needs $tool (apt-get install debootstrap systemd-container)"
    exit 0
  fi
done

if [ ! -x "$ROOTFS/usr/lib/systemd/systemd" ]; then
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus \
    bookworm "$ROOTFS" http://deb.debian.org/debian >/dev/null
fi
install -m 755 "$BIN" "$ROOTFS/usr/local/bin/parpipe"
install -d -m 755 "$ROOTFS/etc/parpipe" "$ROOTFS/srv/parpipe/data"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ROOTFS/etc/parpipe/token"
chmod 600 "$ROOTFS/etc/parpipe/token"
sed 's|coordinator.example.org:7070|127.0.0.1:7070|' "$UNIT" \
  >"$ROOTFS/etc/systemd/system/parpipe-worker.service"
DATA=/srv/parpipe/data
"$BIN" generate --records 200000 --seed 9 --output "$ROOTFS$DATA/access.log"
"$BIN" generate --records 50000 --seed 10 --output "$ROOTFS$DATA/access.log.1"
chown root:adm "$ROOTFS$DATA/access.log.1"
chmod 640 "$ROOTFS$DATA/access.log.1"
# A world-readable file outside what the unit binds in.
echo "not for the worker" >"$ROOTFS/etc/parpipe/probe"
chmod 644 "$ROOTFS/etc/parpipe/probe"

systemd-nspawn -q -b -D "$ROOTFS" --register=no --keep-unit --private-network \
  >/dev/null 2>&1 </dev/null &
nspawn=$!
init=""
cleanup() {
  if [ -z "$init" ] || ! nsenter -t "$init" -a systemctl poweroff >/dev/null 2>&1; then
    kill "$nspawn" 2>/dev/null || true
  fi
  wait "$nspawn" 2>/dev/null || true
}
trap cleanup EXIT
# The container's PID 1 is nspawn's child once it has become systemd; the
# manager answers once booted (`--wait`), "offline" before its bus is up.
until init=$(pgrep -P "$nspawn") && [ "$(cat "/proc/$init/comm")" = systemd ]; do
  kill -0 "$nspawn" 2>/dev/null || { echo "check-in-container: the container did not start"; exit 1; }
  sleep 0.1
done
in_container() { nsenter -t "$init" -a "$@"; }
until state=$(in_container systemctl is-system-running --wait 2>/dev/null); [ -n "$state" ] && [ "$state" != offline ]; do
  sleep 0.2
done
echo "container booted: systemd $(in_container systemctl --version | head -n 1 | cut -d' ' -f2), $state"

in_container systemctl start parpipe-worker
pid=$(in_container systemctl show -p MainPID --value parpipe-worker)
uid=$(in_container stat -c %u "/proc/$pid")
echo "worker: pid $pid, uid $uid; as it, in its namespace:"
for f in /etc/parpipe/probe /etc/passwd "$DATA/access.log" "$DATA/access.log.1" \
  "/run/credentials/parpipe-worker.service/token" /usr/lib/os-release; do
  if in_container nsenter -t "$pid" -m -r -w -S "$uid" -G "$uid" \
    sh -c "head -c 1 '$f' >/dev/null" 2>/dev/null; then
    echo "  $f: readable"
  else
    echo "  $f: NOT readable"
  fi
done

sleep "$WAIT"
echo "after ${WAIT} s with no coordinator: $(in_container systemctl show -p ActiveState,NRestarts parpipe-worker | tr '\n' ' ')"

# job LABEL INPUT…: one job on the container's loopback, the unit's worker
# joining, compared with serial mode over the same inputs.
job() {
  local label=$1 rc=0 out="/root/out-$1" args=()
  shift
  for i in "$@"; do args+=(--input "$i"); done
  in_container parpipe run -q --mode serial "${args[@]}" --out "/root/serial-$label"
  in_container parpipe run -q --mode multiprocess --workers 0 --listen 127.0.0.1:7070 \
    --token-file /etc/parpipe/token "${args[@]}" --out "$out" 2>"$ROOTFS/root/$label.err" || rc=$?
  echo "job $label: exit $rc"
  sed 's/^/  /' "$ROOTFS/root/$label.err"
  if [ -e "$ROOTFS$out/summary.json" ]; then
    local same="DIFFERENT from serial"
    cmp -s "$ROOTFS$out/summary.json" "$ROOTFS/root/serial-$label/summary.json" \
      && same="identical to serial"
    echo "  summary.json $same; report's workers (chunks, records): $(tr -d ' \n' <"$ROOTFS$out/report.json" \
      | grep -o '"chunks":[0-9]*,"records":[0-9]*' | tr '\n' ' ')"
    echo "  inputs the worker could not read (their bytes sent by the coordinator): $(python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))["workers"]
seen = ["%s (%s), %d chunks shipped" % (u["input"], u["reason"], w["shipped_unreadable"])
        for w in rows for u in w.get("unreadable_inputs", [])]
print("; ".join(seen) or "none")' "$ROOTFS$out/report.json")"
  else
    echo "  no summary.json"
  fi
}
job readable "$DATA/access.log"
job with-unreadable "$DATA/access.log" "$DATA/access.log.1"
echo "worker afterwards: $(in_container systemctl show -p ActiveState,NRestarts parpipe-worker | tr '\n' ' ')"
