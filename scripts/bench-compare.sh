#!/usr/bin/env bash
# Runs the harness figures of BENCHMARKS.md for two builds, in alternating runs, so both are
# measured in the same minutes (these machines change speed by a fifth or more within an hour).
#
#   scripts/bench-compare.sh OLD_DIR NEW_DIR [RUNS] [FIGURES...]
#
# Each DIR holds a `switchboard` and a `switchboard-bench` binary, e.g. made with
#   cargo build --release --locked --bins && mkdir -p /tmp/new && cp target/release/switchboard{,-bench} /tmp/new/
# RUNS (default 3) pairs are run per figure; FIGURES are any of batch single one fanout
# latency memory (default: all). Outputs (tables and --json) go to $OUT (default
# /tmp/bench-compare); the summary is printed at the end. With WINDOW=1, each run also
# prints the hub's per-thread CPU ticks (100 a second) over a window mid-run and the
# machine's idle time: which thread is the bottleneck, and whether both cores are busy.
set -euo pipefail
old="${1:?usage: $0 OLD_DIR NEW_DIR [RUNS] [FIGURES...]}"
new="${2:?usage: $0 OLD_DIR NEW_DIR [RUNS] [FIGURES...]}"
runs="${3:-3}"
shift $(( $# < 3 ? $# : 3 ))
figures=("$@")
[ ${#figures[@]} -eq 0 ] && figures=(batch single one fanout latency memory)
out="${OUT:-/tmp/bench-compare}"
mkdir -p "$out"
for dir in "$old" "$new"; do
  for bin in switchboard switchboard-bench; do
    [ -x "$dir/$bin" ] || { echo "$dir/$bin is missing" >&2; exit 2; }
  done
done

args_of() {
  case "$1" in
    batch) echo "--calls 20000 --batch 100 --connections 4 --listeners 0" ;;
    single) echo "--calls 5000 --batch 1 --connections 32 --listeners 0" ;;
    one) echo "--calls 8000 --batch 100 --connections 4 --listeners 1" ;;
    fanout) echo "--calls 1500 --batch 100 --connections 4 --listeners 10" ;;
    latency) echo "--calls 3000 --batch 1 --connections 32 --rate 2000 --listeners 1" ;;
    memory) echo "--calls 100000 --in-progress --batch 100 --connections 4 --listeners 0" ;;
    *) echo "unknown figure $1" >&2; exit 2 ;;
  esac
}

# utime+stime ticks per thread name of process $1.
thread_ticks() {
  for t in /proc/"$1"/task/*; do
    stat=$(cat "$t/stat" 2>/dev/null) || continue
    set -- ${stat##*) }
    echo "$(cat "$t/comm" 2>/dev/null) $(( ${12} + ${13} ))"
  done | awk '{ticks[$1] += $2} END {for (k in ticks) print k, ticks[k]}' | sort
}

# Per-thread ticks of the hub started from $1 over 2 s, from the 2nd second of its run.
window() {
  sleep 2
  local pid
  pid=$(pgrep -f "^$1/switchboard serve" | head -1) || return 0
  local before after idle0 idle1
  before=$(thread_ticks "$pid"); idle0=$(awk '/^cpu /{print $5 + $6}' /proc/stat)
  sleep 2
  after=$(thread_ticks "$pid"); idle1=$(awk '/^cpu /{print $5 + $6}' /proc/stat)
  echo "  window: $(join <(echo "$before") <(echo "$after") | awk '{printf "%s=%d ", $1, $3 - $2}')idle+iowait=$((idle1 - idle0)) of 400"
}

for figure in "${figures[@]}"; do args_of "$figure" > /dev/null; done
for figure in "${figures[@]}"; do
  read -r -a args <<< "$(args_of "$figure")"
  for i in $(seq "$runs"); do
    for side in old new; do
      dir=$old; [ "$side" = new ] && dir=$new
      file="$out/$figure.$side.$i"
      if [ "${WINDOW:-0}" = 1 ]; then window "$dir" > "$file.window" & fi
      "$dir/switchboard-bench" --server-bin "$dir/switchboard" "${args[@]}" --json "$file.json" > "$file.txt" 2>&1 \
        || echo "$figure $side run $i failed: see $file.txt" >&2
      wait
    done
  done
done

pick() { grep -E "$2" "$1" 2>/dev/null | awk '{print $NF}' | head -1; }
echo "figure   side  runs"
for figure in "${figures[@]}"; do
  for side in old new; do
    line=""
    for i in $(seq "$runs"); do
      f="$out/$figure.$side.$i.txt"
      case "$figure" in
        batch|single) v=$(pick "$f" "ingest events/s") ;;
        one|fanout) v="$(pick "$f" "deliveries/s \(end")/dup $(pick "$f" "duplicate deliveries")" ;;
        latency) v="p99 $(grep -E "p99 / max" "$f" | awk '{print $(NF-2)}')" ;;
        memory) v="$(grep -E "RSS max" "$f" | awk '{print $(NF-2)}') MiB" ;;
      esac
      line="$line  $v"
      [ -f "$out/$figure.$side.$i.window" ] && line="$line [$(sed 's/^  window: //' "$out/$figure.$side.$i.window")]"
    done
    printf '%-8s %-4s %s\n' "$figure" "$side" "$line"
  done
done
