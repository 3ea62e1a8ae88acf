#!/usr/bin/env bash
# Prints the tail of every local-cluster log, for a failed test run.
set -uo pipefail
dir="${1:-e2e/.state}/logs"
for f in "$dir"/*.log; do
  [ -f "$f" ] || continue
  echo "==== $f (last 40 lines) ===="
  tail -n 40 "$f"
done
