#!/usr/bin/env bash
# Runs the peer comparison end to end: installs the peers (setup.sh, cached), runs
# Evidently and whylogs over the car-loan windows (run.py), then driftmon over the same
# windows (TestPeers), and writes the markdown table to $OUT (default
# ${TMPDIR:-/tmp}/driftmon-peers.md). Run from anywhere; takes a few minutes, most of it
# Evidently's.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-${TMPDIR:-/tmp}/driftmon-peers.md}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

declare -A py
while IFS='=' read -r name path; do py[$name]=$path; done < <(bench/peers/setup.sh)

results=()
for tool in evidently whylogs; do
  echo "compare.sh: running $tool" >&2
  "${py[$tool]}" bench/peers/run.py --tool "$tool" --out "$work/$tool.json"
  results+=("$work/$tool.json")
done
echo "compare.sh: running driftmon" >&2
DRIFTMON_PEERS=$(IFS=,; echo "${results[*]}") DRIFTMON_PEERS_TABLE="$out" \
  go test -count=1 -run '^TestPeers$' -v ./bench >&2
cat "$out"
