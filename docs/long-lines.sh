#!/bin/bash
# Peak memory for a long line, in every mode, and multiprocess mode's answers to lines
# and frame limits that do not fit.
#
# Usage: cargo build --release
#        docs/long-lines.sh            # a 256 MiB line (MIB=256); needs about 700 MB of disk
#
# The input: 1000 generated lines, one line of MIB MiB, 1000 more. Each mode runs it under
# GNU time (`/usr/bin/time -f %M`: the peak RSS of the process and of the children it
# waited for, so multiprocess mode's workers count); the check is peak < 1.6 x the line
# + 64 MB, and every summary must equal serial's. Then: the same line in multiprocess mode
# with the default --max-frame (it must fail at once, naming the input, the line and
# --max-frame), and a --max-frame smaller than the job's first frame (exit 2, no worker).
set -u
P=${P:-target/release/parpipe}
MIB=${MIB:-256}
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$P" generate --records 2000 --seed 7 --output "$T/gen.log"
{
  head -n 1000 "$T/gen.log"
  head -c $((MIB << 20)) /dev/zero | tr '\0' 'a'
  echo
  tail -n 1000 "$T/gen.log"
} >"$T/long.log"
LINE=$((MIB << 20))
BOUND_KB=$(((LINE * 16 / 10 + 64000000) / 1000))
fail=0
run() { # name, then the arguments of `parpipe run`
  local name=$1 start end
  shift
  start=$(date +%s%N)
  /usr/bin/time -o "$T/time" -f '%x %M' "$P" run -q --input "$T/long.log" --out "$T/$name" "$@" \
    2>"$T/$name.err"
  end=$(date +%s%N)
  read -r code kb < <(tail -n 1 "$T/time")
  local same=-
  if [ -f "$T/$name/summary.json" ] && [ -f "$T/serial/summary.json" ]; then
    cmp -s "$T/$name/summary.json" "$T/serial/summary.json" && same=yes || same=NO
  fi
  printf '%-16s exit %-3s %6.2f s  peak RSS %5d MB (%.2f x the line)  summary equal to serial: %s\n' \
    "$name" "$code" "$(echo "($end - $start) / 1000000000" | bc -l)" $((kb / 1000)) \
    "$(echo "$kb * 1000 / $LINE" | bc -l)" "$same"
  LAST_CODE=$code LAST_KB=$kb LAST_SAME=$same
}
echo "a line of $MIB MiB; bound: $((BOUND_KB / 1000)) MB"
for m in serial pipeline lanes multiprocess; do
  case $m in
    lanes) run lanes --mode pipeline --replicas auto ;;
    # A frame large enough for the line.
    multiprocess) run multiprocess --mode multiprocess --max-frame $(((LINE * 2) < 4294967295 ? LINE * 2 : 4294967295)) ;;
    *) run "$m" --mode "$m" ;;
  esac
  if [ "$LAST_CODE" != 0 ] || [ "$LAST_KB" -ge "$BOUND_KB" ] || { [ $m != serial ] && [ "$LAST_SAME" != yes ]; }; then
    echo "  FAILED" && fail=1
  fi
done
run too-long --mode multiprocess
sed 's/^/  /' "$T/too-long.err"
grep -q "line 1001:.*--max-frame 67108864" "$T/too-long.err" && [ "$LAST_CODE" = 1 ] || { echo "  FAILED" && fail=1; }
# A long output path makes the job's first frame larger than the smallest limit (and
# --workers: a run this small would otherwise be done inline, with no frames at all).
DEEP=$T$(printf '/%0150d' 1 2 3 4 5 6 7 8)
start=$(date +%s%N)
"$P" run --mode multiprocess --workers 2 --max-frame 1024 --input "$T/gen.log" --out "$DEEP" 2>"$T/small.err"
code=$?
end=$(date +%s%N)
printf '%-16s exit %-3s %6.2f s\n' "small-frame" "$code" "$(echo "($end - $start) / 1000000000" | bc -l)"
sed 's/^/  /' "$T/small.err"
[ "$code" = 2 ] && ! grep -q "listening on" "$T/small.err" || { echo "  FAILED" && fail=1; }
exit $fail
