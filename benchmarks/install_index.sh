#!/usr/bin/env bash
# How long pip takes to choose torch 2.13.0 with and without PyTorch's CPU index, and which
# build it chooses: the README's install command against plain `pip install torch==2.13.0`
# and two other ways of naming the index. Resolution only (--dry-run, in a throwaway virtual
# environment), with this machine's pip configuration, variants interleaved for ROUNDS rounds.
#
#   benchmarks/install_index.sh [ROUNDS]      # default 2
set -euo pipefail
rounds=${1:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
cpu=https://download.pytorch.org/whl/cpu

variant() {
    local name=$1; shift
    local started ended
    started=$(date +%s.%N)
    "$work/venv/bin/pip" install --dry-run --ignore-installed --report "$work/report.json" torch==2.13.0 "$@" \
        >"$work/pip.log" 2>&1 || { echo "$name: pip failed"; tail -3 "$work/pip.log"; return; }
    ended=$(date +%s.%N)
    python3 - "$name" "$started" "$ended" "$work/report.json" <<'PY'
import json, sys
name, started, ended, report = sys.argv[1:]
[torch] = [item for item in json.load(open(report))["install"] if item["metadata"]["name"] == "torch"]
print(f"{name:<26} {float(ended) - float(started):6.1f} s   torch {torch['metadata']['version']} from {torch['download_info']['url']}")
PY
}

for round in $(seq "$rounds"); do
    echo "round $round"
    variant "plain"
    variant "README (extra index)" --extra-index-url "$cpu" --retries 1 --timeout 10
    variant "extra index, pip defaults" --extra-index-url "$cpu"
    variant "CPU index first" --index-url "$cpu" --extra-index-url https://pypi.org/simple --retries 1 --timeout 10
done
