#!/usr/bin/env bash
# Trains the dictionary stored event bodies are compressed with (crates/store/src/body.dict).
#
#   scripts/train-body-dictionary.sh OUT_FILE
#
# Runs the hub on every dialect's generated traffic (switchboard-bench), takes 3 000 stored
# bodies of each, and trains a 16 KiB zstd dictionary on them (Python's `zstandard`). A body
# names its dictionary by its format byte, so a new dictionary needs a new format byte in
# crates/store/src/body.rs (the old one must stay readable): never replace body.dict in place.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?the file to write}"
python3 -c "import zstandard" 2>/dev/null || python3 -m pip install --quiet zstandard
cargo build --release --locked --bins
samples="$(mktemp -d)"
trap 'rm -rf "$samples"' EXIT
bin=target/release
for dialect in phonecom tel4vn callable welljoint workonflow; do
  dir=$(mktemp -d); port=$((18600 + RANDOM % 300))
  SWITCHBOARD_ALLOW_PRIVATE_TARGETS=1 SWITCHBOARD_ADMIN_TOKEN=adm $bin/switchboard serve --listen 127.0.0.1:$port --data-dir $dir/data > $dir/out 2> $dir/err &
  pid=$!; sleep 1.5
  read tok acct < <(curl -s -XPOST -H 'authorization: Bearer adm' -H 'content-type: application/json' -d '{"name":"s"}' localhost:$port/admin/accounts | python3 -c "import sys,json;d=json.load(sys.stdin);print(d['token'], d['id'])")
  $bin/switchboard-bench --url http://127.0.0.1:$port --token $tok --account $acct --dialect $dialect --calls 1500 --batch 100 --connections 4 --listeners 1 > $dir/bench 2>&1 || true
  sleep 4
  # The events as the hub stores them (its pull API writes each stored event out whole).
  python3 - "http://127.0.0.1:$port" "$acct" "$tok" "$samples/$dialect" <<'PY'
import json, sys, urllib.request
base, acct, tok, prefix = sys.argv[1:5]
after, n = "0", 0
while n < 3000:
    req = urllib.request.Request(f"{base}/v4/accounts/{acct}/events?after={after}&limit=500",
                                 headers={"Authorization": f"Bearer {tok}"})
    page = json.load(urllib.request.urlopen(req))
    if not page["items"]:
        break
    for item in page["items"]:
        item.pop("cursor", None)
        open(f"{prefix}-{n}.json", "w").write(json.dumps(item, separators=(",", ":")))
        n += 1
    after = page["next_cursor"]
print(prefix, n)
PY
  kill -TERM $pid; wait $pid 2>/dev/null || true
  rm -rf $dir
done
python3 - "$samples" "$out" <<'PY'
import os, sys, zstandard
samples, out = sys.argv[1], sys.argv[2]
bodies = [open(os.path.join(samples, f), "rb").read() for f in sorted(os.listdir(samples))]
d = zstandard.train_dictionary(16384, bodies)
open(out, "wb").write(d.as_bytes())
print(f"{out}: {len(d.as_bytes())} bytes from {len(bodies)} bodies")
PY
