#!/bin/bash
# The plan (`report.json`'s `plan`) of each kind of input in each mode: a
# 25 K-line log file, a 1 M-line log file, the same gzipped, 25 K lines on
# standard input, a user pipeline on `sources::Csv` (examples/csv_etl.rs,
# 1 M orders) and the `matrix` workload. One line per run: engine,
# transport, chunking, batch size (and the source's byte cap), chunk sizing,
# workers, lanes, probe, record by record; then why.
#
# Usage:
#   cargo build --release --example csv_etl
#   docs/plans.sh [target/release/parpipe] [target/release/examples/csv_etl]
set -eu
bin=${1:-target/release/parpipe}
csv=${2:-target/release/examples/csv_etl}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$bin" generate -q --records 25000 --output "$T/25k.log"
"$bin" generate -q --records 1000000 --output "$T/1m.log"
gzip -c "$T/1m.log" >"$T/1m.log.gz"
"$csv" --generate 1000000 "$T/orders.csv"

modes=("serial" "pipeline" "pipeline --replicas auto" "multiprocess")
show() { # label, report.json
  jq -r --arg l "$1" '.plan | "\($l): engine \(.engine), transport \(.transport), chunking \(.chunking), batch \(.batch_size)\(if .source_batch_records then " (source cap \(.source_batch_records))" else "" end), sizing \(if .chunk_sizing.guided then "guided, at most \(.chunk_sizing.most_batches) batches" else "a batch per chunk" end), workers \(.workers), lanes \(.lanes), probe \(.probe), record by record \(.record_by_record), partial per lane \(.partial_per_lane), partial per worker \(.partial_per_worker)\n    why: \(.why)"' "$2"
}
for m in "${modes[@]}"; do
  # shellcheck disable=SC2086
  for input in 25k.log 1m.log 1m.log.gz; do
    "$bin" run -q --input "$T/$input" --mode $m --out "$T/out"
    show "$input, $m" "$T/out/report.json"
  done
  # shellcheck disable=SC2086
  "$bin" run -q --input - --mode $m --out "$T/out" <"$T/25k.log"
  show "stdin (25k), $m" "$T/out/report.json"
  # shellcheck disable=SC2086
  "$csv" --input "$T/orders.csv" --mode $m --report "$T/csv.json" >/dev/null
  show "csv_etl (1m orders), $m" "$T/csv.json"
  # shellcheck disable=SC2086
  "$bin" run -q --workload matrix --mode $m --out "$T/out"
  show "matrix, $m" "$T/out/report.json"
done
