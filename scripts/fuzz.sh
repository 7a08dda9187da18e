#!/usr/bin/env bash
# Fuzzes every dialect decoder for a bounded time each, on the stable toolchain.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
#
# Seeds the corpus with the dialects' fixtures. A crash leaves its input under
# fuzz/artifacts/<target>/; turn it into a regression test in that dialect's tests.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable compiler accept them.
export RUSTC_BOOTSTRAP=1
for dialect in phonecom tel4vn callable welljoint workonflow canonical; do
  corpus="fuzz/corpus/decode_${dialect}"
  mkdir -p "$corpus"
  cp crates/dialects/src/${dialect}/fixtures/* "$corpus"/ 2>/dev/null || true
  echo "== decode_${dialect}: ${seconds}s"
  cargo fuzz run "decode_${dialect}" "$corpus" -- -max_total_time="${seconds}" -timeout=5 -rss_limit_mb=2048
done
echo "no decoder panicked or hung"
