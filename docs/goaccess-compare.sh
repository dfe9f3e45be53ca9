#!/bin/sh
# parpipe against GoAccess on real access logs: the numbers both give,
# side by side — total lines, valid lines, status codes, methods, distinct
# clients, bytes, top paths — with the rule that explains each difference
# (docs/goaccess.md).
#
# usage: docs/goaccess-compare.sh PARPIPE LOG...
#   PARPIPE  the parpipe binary (target/release/parpipe)
#   LOG      Common or Combined access logs
#
# Needs GoAccess 1.7 (Debian: apt-get install goaccess) and python3.
# GoAccess runs with JSON output and the two flags that state parpipe's
# rules in its terms: --no-ip-validation (a client is any token, host
# names included) and --no-query-string (a path ends before its '?').
# Its format is COMBINED, or COMMON when COMBINED reads no line.
set -eu
[ $# -ge 2 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
PARPIPE=$1; shift
command -v goaccess >/dev/null || { echo "goaccess is not installed" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for LOG in "$@"; do
    name=$(basename "$LOG")
    fmt=
    for f in COMBINED COMMON; do
        rm -f "$WORK/ga.json"
        if goaccess "$LOG" --no-global-config --log-format=$f --no-ip-validation \
            --no-query-string --max-items=1000000 --invalid-requests="$WORK/invalid.txt" \
            -o "$WORK/ga.json" >/dev/null 2>&1 && [ -s "$WORK/ga.json" ]; then
            fmt=$f; break
        fi
    done
    [ -n "$fmt" ] || { echo "$name: GoAccess reads no line as COMBINED or COMMON" >&2; continue; }
    # Once more with GoAccess's defaults (client IP validation on).
    rm -f "$WORK/ga-default.json"
    goaccess "$LOG" --no-global-config --log-format=$fmt --no-query-string \
        -o "$WORK/ga-default.json" >/dev/null 2>&1 || true
    "$PARPIPE" run -q --mode serial --input "$LOG" --out "$WORK/pp" --max-rejected-ratio 1 --emit-records
    python3 - "$name" "$fmt" "$WORK/pp" "$WORK/ga.json" "$WORK/invalid.txt" "$LOG" <<'PY'
import collections, ipaddress, json, os, sys, urllib.parse

name, fmt, pp_dir, ga_path, invalid_path, log_path = sys.argv[1:]
pp = json.load(open(pp_dir + "/summary.json"))
ga = json.loads(open(ga_path, "rb").read().decode("utf-8", "replace"))
g = ga["general"]
with open(log_path, "rb") as f:
    lines = f.read().split(b"\n")
if lines and lines[-1] == b"":
    lines.pop()
# R5: GoAccess reads a line in pieces of 4 KiB: a longer one is several.
long_lines = sum(1 for l in lines if len(l) > 4095)

# GoAccess's rules applied to parpipe's own records (records.jsonl):
# R3, the path percent-decoded; R4, a request split GoAccess's way.
PROTOCOLS = {b"HTTP/1.0", b"HTTP/1.1", b"HTTP/2", b"HTTP/2.0", b"HTTP/3", b"HTTP/3.0"}
def request_of(raw):
    start = raw.index(b'] "') + 3
    end = start
    while raw[end] != 0x22:  # the closing quote (a backslash escapes)
        end += 2 if raw[end] == 0x5C else 1
    return raw[start:end]
def goaccess_view(record):
    req = request_of(lines[record["line"] - 1])
    parts = req.split(b" ")
    if len(parts) >= 3 and parts[-1] in PROTOCOLS and parts[0]:
        method = parts[0].decode("utf-8", "replace")
        target = b" ".join(parts[1:-1]).strip(b" ")
        path = target.split(b"?", 1)[0].decode("utf-8", "replace")
        return method, urllib.parse.unquote(path, errors="replace")
    return "---", "-"
def is_ip(client):
    try:
        ipaddress.ip_address(client)
        return True
    except ValueError:
        return False
methods_r4 = collections.Counter()
paths_r34 = collections.Counter()
ip_clients = 0
for text in open(pp_dir + "/records.jsonl", encoding="utf-8"):
    record = json.loads(text)
    m, p = goaccess_view(record)
    methods_r4[m] += 1
    paths_r34[p] += 1
    ip_clients += is_ip(record["client"])

rows = []  # (number, GoAccess, parpipe, verdict)
def row(what, a, b, rule=None, adjusted=None):
    if a == b:
        verdict = "="
    elif rule and adjusted == a:
        verdict = "%s: = after it (%s)" % (rule, adjusted if not isinstance(adjusted, (dict, list)) else "same")
    else:
        verdict = "**unexplained**"
    rows.append((what, a, b, verdict))

row("total (lines)", g["total_requests"], pp["lines"], "R5", pp["lines"] + long_lines)
row("valid", g["valid_requests"], pp["parsed"])
default = ga_path.replace("ga.json", "ga-default.json")
if os.path.exists(default) and os.path.getsize(default) > 0:
    gd = json.loads(open(default, "rb").read().decode("utf-8", "replace"))["general"]["valid_requests"]
else:
    gd = 0  # GoAccess read no line: it exits with an error
row("valid, GoAccess's IP validation on", gd, pp["parsed"], "R1", ip_clients)
row("failed", g["failed_requests"], pp["rejected"], "R5", pp["rejected"] + long_lines)
row("bytes", g["bandwidth"], pp["bytes"])
row("distinct clients", ga["hosts"]["metadata"]["data"]["total"]["value"], pp["clients"])
codes = collections.Counter()
for cls in ga["status_codes"]["data"]:
    for item in cls.get("items", []):
        codes[item["data"].split(" ", 1)[0]] += item["hits"]["count"]
row("status codes", json.dumps(dict(sorted(codes.items()))), json.dumps(pp["status"], sort_keys=True))
methods = collections.Counter()
paths = collections.Counter()
for panel in ("requests", "static_requests", "not_found"):
    for item in ga[panel]["data"]:
        methods[item.get("method", "?")] += item["hits"]["count"]
        paths[item["data"]] += item["hits"]["count"]
row("methods", json.dumps(dict(sorted(methods.items()))), json.dumps(pp["methods"], sort_keys=True),
    "R4", json.dumps(dict(sorted(methods_r4.items()))))
def top10(counter):
    return [[k, v] for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]
ga_top, pp_top = top10(paths), pp["top_paths"]
row("top 10 paths", "see below", "see below" if ga_top != pp_top else "see below", None)
rows[-1] = rows[-1][:3] + ("=" if ga_top == pp_top else
    ("R3/R4: = after them" if ga_top == top10(paths_r34) else "**unexplained**"),)

print("## %s (%d lines; GoAccess --log-format=%s)" % (name, len(lines), fmt))
print()
print("| number | GoAccess | parpipe | |")
print("| --- | --- | --- | --- |")
for what, a, b, verdict in rows:
    print("| %s | %s | %s | %s |" % (what, a, b, verdict))
print()
print("| # | GoAccess path | hits | parpipe path | hits |")
print("| --- | --- | --- | --- | --- |")
for i in range(max(len(ga_top), len(pp_top))):
    a = ga_top[i] if i < len(ga_top) else ["", ""]
    b = pp_top[i] if i < len(pp_top) else ["", ""]
    print("| %d | `%s` | %s | `%s` | %s |" % (i + 1, a[0], a[1], b[0], b[1]))
print()
PY
done
