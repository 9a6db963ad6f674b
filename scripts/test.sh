#!/bin/sh
# Runs every check CI runs, in order: formatting, lints, all tests (unit,
# integration, doctests; the shell probe under dash, busybox sh and bash),
# rustdoc, a lint of every shell script, and the static release build.
#
# Prerequisites: a Rust toolchain (1.89 or later, with the rustfmt and
# clippy components) and, on Debian, gcc, libc6-dev, ca-certificates, dash,
# busybox, bash, shellcheck, binutils, util-linux and tini. Run as root, this
# script installs the missing Debian packages itself; otherwise it names
# everything missing and the apt-get line, and stops before building.
# Tests that need root (tmpfs mounts, PID namespaces, setpriv) are skipped
# loudly when not root, and fail when CI=true.
set -eu
cd "$(dirname "$0")/.."

# shellcheck source=scripts/prereqs.sh
. scripts/prereqs.sh
prereq_build
prereq_component rustfmt
prereq_component clippy
# The shells health.sh must run under; shellcheck; readelf for the static
# check; unshare, nsenter and setpriv for the root tests; tini, which the
# supervisor is compared with.
for tool in dash:dash busybox:busybox bash:bash shellcheck:shellcheck \
    readelf:binutils unshare:util-linux nsenter:util-linux setpriv:util-linux tini:tini; do
    prereq_cmd "${tool%%:*}" "${tool#*:}"
done
prereq_done scripts/test.sh

started=$(date +%s)
step() {
    printf '\n== %s\n' "$*"
}

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets --all-features -- -D warnings"
cargo clippy --all-targets --all-features -- -D warnings

step "cargo test --all-features"
cargo test --all-features

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features

step "shellcheck"
scripts=$(grep -rlE '^#!(/usr/bin/env |/bin/)(ba)?sh' --exclude-dir=target --exclude-dir=.git . | sort)
# shellcheck disable=SC2086 # one argument per script
shellcheck -x $scripts
echo "$(echo "$scripts" | wc -l) scripts clean"

step "cargo package (warnings are errors)"
# Offline: the crates are already in the local registry.
package=$(cargo package --allow-dirty --no-verify --offline 2>&1) || {
    echo "$package" >&2
    exit 1
}
if echo "$package" | grep -q '^warning'; then
    echo "$package" >&2
    exit 1
fi
echo "$package" | tail -1

step "static release binary"
cargo build --release --bins
if readelf -lW target/release/liveness | grep -q 'INTERP'; then
    echo "target/release/liveness is dynamically linked" >&2
    exit 1
fi
echo "target/release/liveness: static ($(wc -c <target/release/liveness) bytes)"

step "all checks passed in $(($(date +%s) - started)) s"
