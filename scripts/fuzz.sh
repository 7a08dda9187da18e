#!/usr/bin/env bash
# Fuzzes every dialect decoder (each target also encodes what it decodes, in every dialect),
# on the stable toolchain.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   grow the corpus in fuzz/corpus (default 60 s each)
#   scripts/fuzz.sh --check [RUNS]         what the tests run: every input of fuzz/corpus, then
#                                          RUNS new ones per target (default 30000) from a fixed
#                                          seed, so a run is repeatable; the corpus is left as
#                                          it is (new inputs go to a temporary directory)
#
# A crash leaves its input under fuzz/artifacts/<target>/; turn it into a regression test in
# that dialect's tests.rs. After growing the corpus, `cargo fuzz cmin <target>` keeps it small.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable compiler accept them.
export RUSTC_BOOTSTRAP=1
targets=(phonecom tel4vn callable welljoint workonflow canonical)
if [ "${1:-}" = "--check" ]; then
  runs="${2:-30000}"
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  for dialect in "${targets[@]}"; do
    mkdir -p "$scratch/$dialect"
    echo "== decode_${dialect}: the corpus, then ${runs} runs"
    log="$scratch/$dialect.log"
    if ! cargo fuzz run "decode_${dialect}" "$scratch/$dialect" "fuzz/corpus/decode_${dialect}" -- \
      -runs="${runs}" -seed=1 -timeout=5 -rss_limit_mb=2048 >"$log" 2>&1; then
      tail -n 60 "$log"
      echo "decode_${dialect} failed: its input is under fuzz/artifacts/decode_${dialect}/" >&2
      exit 1
    fi
    grep -E "INITED|DONE" "$log" || true
  done
  echo "no decoder panicked or hung"
  exit 0
fi
seconds="${1:-60}"
for dialect in "${targets[@]}"; do
  corpus="fuzz/corpus/decode_${dialect}"
  mkdir -p "$corpus"
  cp crates/dialects/src/${dialect}/fixtures/* "$corpus"/ 2>/dev/null || true
  echo "== decode_${dialect}: ${seconds}s"
  cargo fuzz run "decode_${dialect}" "$corpus" -- -max_total_time="${seconds}" -timeout=5 -rss_limit_mb=2048
done
echo "no decoder panicked or hung"
