#!/usr/bin/env bash
# The PostgreSQL figures of BENCHMARKS.md (issue 23): each harness figure on SQLite, on one
# node on PostgreSQL, and on three nodes on one PostgreSQL database, in alternating runs so
# all three are measured in the same minutes. Each PostgreSQL run gets a fresh database.
#
#   scripts/bench-postgres.sh [RUNS] [FIGURES...]
#
# FIGURES: batch single one (default: all three). The server URL is $SWITCHBOARD_TEST_POSTGRES
# (default postgres://postgres:postgres@127.0.0.1:5432/postgres); the harness is
# target/release/switchboard-bench (cargo build --release --locked --bins). Tables and
# --json go to $OUT (default /tmp/bench-postgres); a summary is printed at the end, with the
# hub's CPU (all nodes) and PostgreSQL's CPU (every postgres process) beside each rate.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-2}"
shift $(( $# < 1 ? $# : 1 ))
figures=("$@")
[ ${#figures[@]} -eq 0 ] && figures=(batch single one)
server="${SWITCHBOARD_TEST_POSTGRES:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
base="${server%/*}"
out="${OUT:-/tmp/bench-postgres}"
bench=target/release/switchboard-bench
[ -x "$bench" ] || { echo "$bench is missing: cargo build --release --locked --bins" >&2; exit 2; }
mkdir -p "$out"

args_of() {
  case "$1" in
    batch) echo "--calls 20000 --batch 100 --connections 4 --listeners 0" ;;
    single) echo "--calls 5000 --batch 1 --connections 32 --listeners 0" ;;
    one) echo "--calls 8000 --batch 100 --connections 4 --listeners 1" ;;
    *) echo "unknown figure $1" >&2; exit 2 ;;
  esac
}

fresh_database() {
  psql -q "$server" -c "DROP DATABASE IF EXISTS switchboard_bench WITH (FORCE)" -c "CREATE DATABASE switchboard_bench" >/dev/null
  echo "$base/switchboard_bench"
}

for figure in "${figures[@]}"; do
  for run in $(seq 1 "$runs"); do
    for shape in sqlite pg1 pg3; do
      case "$shape" in
        sqlite) store=() ;;
        pg1) store=(--store "$(fresh_database)" --nodes 1) ;;
        pg3) store=(--store "$(fresh_database)" --nodes 3) ;;
      esac
      # shellcheck disable=SC2046
      "$bench" $(args_of "$figure") "${store[@]}" --json "$out/$figure-$shape-$run.json" \
        >"$out/$figure-$shape-$run.txt" 2>&1
    done
  done
done

python3 - "$out" "$runs" "${figures[@]}" <<'PY'
import json, sys
out, runs, figures = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for figure in figures:
    print(figure)
    for shape in ("sqlite", "pg1", "pg3"):
        rows = []
        for run in range(1, runs + 1):
            r = json.load(open(f"{out}/{figure}-{shape}-{run}.json"))
            rate = r["deliveries_per_s"] if figure == "one" else r["ingest_events_per_s"]
            rows.append(f"{rate:8.0f}/s (hub CPU {r['server_cpu_percent']:.0f}%, postgres {r['database_cpu_percent']:.0f}%, errors {r['errors']}, dup {r['duplicate_deliveries']})")
        print(f"  {shape:6}", " | ".join(rows))
PY
