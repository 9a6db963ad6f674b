#!/bin/sh
# Builds the static release binary and the example worker, runs the worker,
# and judges it from outside while it works, with `liveness probe` and
# `scripts/health.sh`, as a Kubernetes exec probe would. The worker reports
# healthy, then error 3 for two items, then healthy again, and removes its
# state when it is done. The last line says whether everything went as
# expected ("demo: ok") or what did not (exit 1).
#
# On a fresh Debian machine with a rustup toolchain: run it as root once to
# install what the build lacks (gcc, libc6-dev, ca-certificates), or run the
# apt-get line it prints.
set -eu
cd "$(dirname "$0")/.."

# shellcheck source=scripts/prereqs.sh
. scripts/prereqs.sh
prereq_build
prereq_done scripts/demo.sh

echo "== cargo build --release --bins --examples"
cargo build --release --bins --examples
bin=target/release/liveness

LIVENESS_RUNDIR=$(mktemp -d)
LIVENESS_UNIT_NAME=worker
export LIVENESS_RUNDIR LIVENESS_UNIT_NAME
trap 'rm -rf "$LIVENESS_RUNDIR"' EXIT

echo "== the worker's state is in $LIVENESS_RUNDIR/$LIVENESS_UNIT_NAME"
echo "== every round runs both probes, as a readiness probe would:"
echo "   exit 0 ok, 1 unhealthy, 3 no state (every code: doc/exit-codes.md)"
target/release/examples/worker --items 10 --fail-at 4 --item-ms 300 &
worker=$!

# probe LABEL COMMAND...: runs one probe, prints its exit code and line
# under LABEL, and leaves the exit code in $code.
probe() {
    label=$1
    shift
    code=0
    line=$("$@" 2>&1) || code=$?
    printf '   %-24s exit %s  %s\n' "$label" "$code" "$line"
}

round=0
seen_ok=no
seen_unhealthy=no
disagreed=0
while kill -0 "$worker" 2>/dev/null && [ "$round" -lt 12 ]; do
    round=$((round + 1))
    sleep 0.3
    echo "-- round $round"
    probe "liveness probe --ready:" "$bin" probe --ready -v
    rust=$code
    probe "health.sh --ready:" sh scripts/health.sh --ready -v
    case $rust in
    0) seen_ok=yes ;;
    1) seen_unhealthy=yes ;;
    esac
    if [ "$rust" != "$code" ]; then
        # Not a defect: the worker changed state between the two probes.
        disagreed=$((disagreed + 1))
        echo "   (the worker moved on between the two probes)"
    fi
    if [ "$round" = 2 ]; then
        echo "   liveness status:"
        "$bin" status | sed 's/^/     /'
    fi
done

worker_code=0
wait "$worker" || worker_code=$?
echo "== after the worker finished (it removes its state, so both probes say 'no state'):"
probe "liveness probe:" "$bin" probe -v
after_rust=$code
probe "health.sh:" sh scripts/health.sh -v
after_sh=$code

problems=
[ "$worker_code" = 0 ] || problems="$problems; the worker exited $worker_code"
[ "$seen_ok" = yes ] || problems="$problems; no round saw the worker healthy"
[ "$after_rust" = 3 ] || problems="$problems; liveness probe exited $after_rust after the worker finished, not 3 (no state)"
[ "$after_sh" = 3 ] || problems="$problems; health.sh exited $after_sh after the worker finished, not 3 (no state)"
if [ -n "$problems" ]; then
    echo "demo: FAILED:${problems#;}"
    exit 1
fi
if [ "$seen_unhealthy" = yes ]; then
    saw="healthy and unhealthy (error 3), as the worker reported"
else
    saw="healthy (the error-3 window fell between two rounds on this busy machine)"
fi
echo "demo: ok: the probes saw the worker $saw, and 'no state' once it had finished ($round rounds, $disagreed caught mid-change)."
