#!/bin/sh
# Builds the static release binary and the example worker, runs the worker,
# and judges it from outside while it works, with `liveness probe` and
# `scripts/health.sh`, as a Kubernetes exec probe would.
set -eu
cd "$(dirname "$0")/.."

cargo build --release --bins --examples
bin=target/release/liveness

LIVENESS_RUNDIR=$(mktemp -d)
LIVENESS_UNIT_NAME=worker
export LIVENESS_RUNDIR LIVENESS_UNIT_NAME
trap 'rm -rf "$LIVENESS_RUNDIR"' EXIT

echo "== state in $LIVENESS_RUNDIR/$LIVENESS_UNIT_NAME"
target/release/examples/worker --items 10 --fail-at 4 --item-ms 300 &
worker=$!

round=0
while kill -0 "$worker" 2>/dev/null && [ "$round" -lt 12 ]; do
    round=$((round + 1))
    sleep 0.3
    code=0
    "$bin" probe --ready -v || code=$?
    sh_code=0
    sh scripts/health.sh --ready -v || sh_code=$?
    echo "   probe round $round: liveness probe exit $code, health.sh exit $sh_code"
done
"$bin" status
wait "$worker"
echo "== after the worker finished:"
"$bin" probe -v || echo "   liveness probe exit $?"
