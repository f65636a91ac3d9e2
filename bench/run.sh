#!/usr/bin/env bash
# Tether's benchmarks (issue 12): every figure of BENCHMARKS.md from one script.
#
#   bench/run.sh                 full run: release build, hermes-agent side by side,
#                                store over 1M messages; under 15 min on 2 cores
#   bench/run.sh --smoke         tiny sizes, dev profile (reuses the test build),
#                                no hermes; for CI, well under a minute
#
# Options:
#   --smoke            tiny sizes (see above)
#   --release          with --smoke: build and run the release profile anyway
#   --no-hermes        skip the hermes-agent comparison
#   --with-hermes      with --smoke: include hermes-agent if bench/.venv has it
#   --no-build         use the binaries already in target/
#   --wait-quiet SECS  before measuring, wait up to SECS for the 1-minute load
#                      average to drop below $QUIET_LOAD (default 1.0); full run
#                      default 300, smoke 0
#   --out DIR          where results go (default bench/out)
#
# Writes DIR/machine.txt, DIR/agent.jsonl + agent.md (examples/bench_agent.rs),
# DIR/stream.txt (examples/stream_bench.rs), DIR/store.txt
# (examples/store_bench.rs), DIR/logs/, and DIR/RESULTS.md putting it together.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

SMOKE=0 RELEASE_SMOKE=0 HERMES=auto BUILD=1 WAIT_QUIET= OUT=$ROOT/bench/out
QUIET_LOAD=${QUIET_LOAD:-1.0}
HERMES_VERSION=0.19.0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --release) RELEASE_SMOKE=1 ;;
    --no-hermes) HERMES=no ;;
    --with-hermes) HERMES=yes ;;
    --no-build) BUILD=0 ;;
    --wait-quiet) WAIT_QUIET=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$SMOKE" = 1 ] && [ "$RELEASE_SMOKE" = 0 ]; then
  PROFILE=dev DIR=debug CARGO_PROFILE=()
else
  PROFILE=release DIR=release CARGO_PROFILE=(--release)
fi
[ -n "$WAIT_QUIET" ] || { [ "$SMOKE" = 1 ] && WAIT_QUIET=0 || WAIT_QUIET=300; }
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/$DIR
mkdir -p "$OUT/logs"
START=$(date +%s)
exec 3>&2 # progress goes here even while a step's stderr goes to a log
say() { echo "bench: $*" >&3; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# --- machine ---------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$([ -z "$(git status --porcelain 2>/dev/null)" ] || echo ' (with uncommitted changes)')"
  echo "cores (nproc): $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -sr)"
  echo "rustc: $(rustc --version)"
  echo "profile: $PROFILE$([ "$SMOKE" = 1 ] && echo ', smoke sizes')"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# --- build -----------------------------------------------------------------
EXAMPLES=(--example bench_agent)
for ex in stream_bench store_bench; do
  if [ -f examples/$ex.rs ]; then EXAMPLES+=(--example "$ex"); fi
done
if [ "$BUILD" = 1 ]; then
  say "building ($PROFILE): tether ${EXAMPLES[*]}"
  t=$(date +%s)
  cargo build "${CARGO_PROFILE[@]}" --bin tether "${EXAMPLES[@]}" 2>&1 | tail -n 3 >&2
  say "build took $(( $(date +%s) - t )) s"
fi

# --- hermes-agent ----------------------------------------------------------
HERMES_BIN=$ROOT/bench/.venv/bin/hermes
HERMES_ARGS=()
if [ "$HERMES" = auto ] && [ "$SMOKE" = 1 ]; then HERMES=no; fi
if [ "$HERMES" = no ]; then
  HERMES_ARGS=(--no-hermes)
elif [ ! -x "$HERMES_BIN" ]; then
  if [ "$SMOKE" = 1 ]; then
    say "hermes-agent not installed in bench/.venv; skipped"
    HERMES_ARGS=(--no-hermes)
  else
    say "installing hermes-agent $HERMES_VERSION into bench/.venv (PyPI)"
    python3 -m venv "$ROOT/bench/.venv"
    "$ROOT/bench/.venv/bin/pip" install -q "hermes-agent==$HERMES_VERSION" >&2
    HERMES_ARGS=(--hermes "$HERMES_BIN")
  fi
else
  HERMES_ARGS=(--hermes "$HERMES_BIN")
fi
if [ "${HERMES_ARGS[0]}" = --hermes ]; then
  echo "hermes-agent: $("$ROOT/bench/.venv/bin/pip" show hermes-agent 2>/dev/null | awk '/^Version/ {print $2}') ($("$ROOT/bench/.venv/bin/python" --version 2>&1))" >> "$OUT/machine.txt"
fi

# --- quiet -----------------------------------------------------------------
if [ "$WAIT_QUIET" -gt 0 ]; then
  waited=0
  while awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v q="$QUIET_LOAD" 'BEGIN {exit !(l >= q)}'; do
    if [ "$waited" -ge "$WAIT_QUIET" ]; then
      say "load still $(load) after ${waited} s; measuring anyway (the load is recorded with every figure)"
      break
    fi
    [ $((waited % 30)) = 0 ] && say "waiting for a quiet machine: load $(load) (target < $QUIET_LOAD)"
    sleep 5; waited=$((waited + 5))
  done
fi
echo "load at start of measurements: $(load)" >> "$OUT/machine.txt"

# --- measurements ----------------------------------------------------------
SIZE_ARGS=()
[ "$SMOKE" = 1 ] && SIZE_ARGS=(--smoke)

run_step() { # name, command...
  local name=$1; shift
  local t=$(date +%s) rc=0
  say "$name: $* (load $(load))"
  "$@" || rc=$?
  echo "$name: $(( $(date +%s) - t )) s, rc $rc, load after $(load)" >> "$OUT/steps.txt"
  return $rc
}
: > "$OUT/steps.txt"
FAILED=()

run_step agent "$TARGET/examples/bench_agent" "${SIZE_ARGS[@]}" "${HERMES_ARGS[@]}" \
  --bin "$TARGET/tether" --out "$OUT" > "$OUT/logs/agent.stdout" 2> "$OUT/logs/agent.log" \
  || FAILED+=(agent)

if [ -x "$TARGET/examples/stream_bench" ]; then
  # stream_bench has fixed sizes (a recorded 10,000-chunk stream).
  run_step stream "$TARGET/examples/stream_bench" > "$OUT/stream.txt" 2> "$OUT/logs/stream.log" \
    || FAILED+=(stream)
else
  # TODO(issue 12): examples/stream_bench.rs is not in the tree yet.
  echo "stream_bench: not built (examples/stream_bench.rs missing)" > "$OUT/stream.txt"
fi

if [ -x "$TARGET/examples/store_bench" ]; then
  STORE_ARGS=()
  [ "$SMOKE" = 1 ] && STORE_ARGS=(--messages 2000 --appends 200 --queries 20)
  run_step store "$TARGET/examples/store_bench" "${STORE_ARGS[@]}" > "$OUT/store.txt" 2> "$OUT/logs/store.log" \
    || FAILED+=(store)
else
  # TODO(issue 12): examples/store_bench.rs is not in the tree yet.
  echo "store_bench: not built (examples/store_bench.rs missing)" > "$OUT/store.txt"
fi

# --- report ----------------------------------------------------------------
TOTAL=$(( $(date +%s) - START ))
B=target/$DIR/examples
{
  echo "# Benchmark results$([ "$SMOKE" = 1 ] && echo ' (SMOKE: tiny sizes, not figures)')"
  echo
  echo "Produced by \`bench/run.sh$([ "$SMOKE" = 1 ] && echo ' --smoke')\` in ${TOTAL} s (build included)."
  echo
  echo '```'
  cat "$OUT/machine.txt"
  cat "$OUT/steps.txt"
  echo '```'
  echo
  echo "## Agent (\`$B/bench_agent${SIZE_ARGS[*]:+ ${SIZE_ARGS[*]}}\`; one scenario: \`--only NAME\`)"
  echo
  if [ -f "$OUT/agent.md" ]; then cat "$OUT/agent.md"; else echo "(no results: see logs/agent.log)"; fi
  echo
  echo "## Streaming (\`$B/stream_bench\`)"
  echo
  echo '```'; cat "$OUT/stream.txt"; echo '```'
  echo
  echo "## Store (\`$B/store_bench${STORE_ARGS[*]:+ ${STORE_ARGS[*]}}\`)"
  echo
  echo '```'; cat "$OUT/store.txt"; echo '```'
} > "$OUT/RESULTS.md"

say "done in ${TOTAL} s; results in ${OUT#$ROOT/}/RESULTS.md"
if [ ${#FAILED[@]} -gt 0 ]; then
  say "FAILED: ${FAILED[*]} (see ${OUT#$ROOT/}/logs/)"
  tail -n 20 "$OUT/logs/agent.log" >&2 || true
  exit 1
fi
