#!/usr/bin/env bash
# Runs CI (`.ci/run`) N times in a row, each from a fresh clone of HEAD, while
# two busy loops keep both cores loaded: timing-sensitive tests show up here,
# not in a later submission.
#
#   bash .ci/stress.sh [N]      (default 3; stops at the first failure)
#
# Logs: $TMPDIR/tether-stress.XXXX/run-K.log
set -euo pipefail
exec </dev/null
runs="${1:-3}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/tether-stress.XXXX")"
# CI finds the workplace's shared/ folder beside its clone; so do these runs.
if [ -d "$repo/../shared" ]; then
  ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"
fi
busy=()
cleanup() { for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in 1 2; do
  ( while :; do :; done ) &
  busy+=($!)
done
for k in $(seq 1 "$runs"); do
  git clone -q "$repo" "$work/clone-$k"
  start=$(date +%s)
  if (cd "$work/clone-$k" && CI=true bash .ci/run) >"$work/run-$k.log" 2>&1; then
    echo "run $k: passed in $(( $(date +%s) - start )) s (log: $work/run-$k.log)"
  else
    echo "run $k: FAILED after $(( $(date +%s) - start )) s; log: $work/run-$k.log" >&2
    tail -n 40 "$work/run-$k.log" >&2
    exit 1
  fi
  rm -rf "$work/clone-$k/target"
done
echo "$runs passed, 0 failed"
