#!/bin/sh
# Screenshots of report.html and of the dashboard, taken by headless
# Chromium (Debian: apt-get install chromium python3):
#
#   - report.html of a real access log, at desktop and phone widths;
#   - report.html of an nginx log with request times and virtual hosts
#     (written by docs/timed-sample.py), at both widths;
#   - the dashboard during a --follow run while a writer appends lines;
#   - the size of report.html for a run over 1 M generated lines.
#
# usage: docs/screenshots.sh PARPIPE ACCESS_LOG [OUT_DIR]
#   PARPIPE     the binary (target/release/parpipe)
#   ACCESS_LOG  a real Common or Combined log (the NASA July 1995 log, say)
#   OUT_DIR     where the PNGs go (default ./screens)
set -eu
[ $# -ge 2 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
BIN=$1
LOG=$2
SHOTS=${3:-screens}
HERE=$(cd "$(dirname "$0")" && pwd)
BROWSER=$(command -v chromium || command -v chromium-browser || true)
[ -n "$BROWSER" ] || { echo "no chromium on PATH" >&2; exit 1; }
mkdir -p "$SHOTS"
WORK=$(mktemp -d)
trap 'kill $WRITER $RUN 2>/dev/null || true; rm -rf "$WORK"' EXIT
WRITER=; RUN=

shot() { # URL PNG WIDTHxHEIGHT [extra chromium flags]
    url=$1 png=$2 size=$3; shift 3
    "$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --user-data-dir="$WORK/profile" --window-size="$size" "$@" \
        --screenshot="$png" "$url" >/dev/null 2>&1
    echo "$png"
}

NGINX='nginx:$host $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $upstream_response_time'

# 1. A real log.
"$BIN" run -q --input "$LOG" --out "$WORK/real"
shot "file://$WORK/real/report.html" "$SHOTS/real-desktop.png" 1280,2300
shot "file://$WORK/real/report.html" "$SHOTS/real-phone.png" 390,4600

# 2. A log with request times and virtual hosts.
python3 "$HERE/timed-sample.py" 200000 > "$WORK/timed.log"
"$BIN" run -q --input "$WORK/timed.log" --log-format "$NGINX" --out "$WORK/timed"
shot "file://$WORK/timed/report.html" "$SHOTS/timed-desktop.png" 1280,2700
shot "file://$WORK/timed/report.html" "$SHOTS/timed-phone.png" 390,5600

# 3. The dashboard during a --follow run: a writer appends 30,000 lines
#    over 30 s; the screenshot is taken 12 s in.
: > "$WORK/live.log"
python3 "$HERE/timed-sample.py" 30000 3 --follow 30 >> "$WORK/live.log" &
WRITER=$!
"$BIN" run -q --follow --input "$WORK/live.log" --log-format "$NGINX" \
    --dashboard 127.0.0.1:0 --linger 0 --out "$WORK/live" 2> "$WORK/live.err" &
RUN=$!
i=0
until grep -q 'dashboard on' "$WORK/live.err" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$WORK/live.err" >&2; exit 1; }; sleep 0.1
done
ADDR=$(sed -n 's/.*dashboard on //p' "$WORK/live.err" | head -1)
sleep 12
# The page keeps an event stream open: the shot is taken after 3 s.
shot "$ADDR/" "$SHOTS/dashboard-follow.png" 1280,1500 --timeout=3000
shot "$ADDR/" "$SHOTS/dashboard-follow-phone.png" 390,2600 --timeout=3000
curl -s "$ADDR/api/status" | python3 -c 'import json,sys; t=json.load(sys.stdin)["traffic"]; print("dashboard traffic at the shot:", t["requests"], "requests,", len(t["history"]), "history points")' || true
kill -INT $RUN; wait $RUN || true
kill $WRITER 2>/dev/null || true

# 4. The report's size on 1 M generated lines.
"$BIN" run -q --records 1000000 --out "$WORK/million"
echo "report.html for 1,000,000 generated lines: $(wc -c < "$WORK/million/report.html") bytes (summary.json: $(wc -c < "$WORK/million/summary.json") bytes)"
