#!/bin/sh
# Runs every check CI runs, in order: formatting, lints, all tests (unit,
# integration, doctests; the shell probe under dash, busybox sh and bash),
# rustdoc, a lint of every shell script, and the static release build.
#
# Prerequisites on Debian: cargo (with rustfmt and clippy), dash, busybox,
# bash, shellcheck, util-linux. `.ci/run` installs them. Tests that need root
# (tmpfs mounts, PID namespaces, setpriv) are skipped loudly when not root,
# and fail when CI=true.
set -eu
cd "$(dirname "$0")/.."

missing=
for tool in cargo dash busybox bash shellcheck readelf unshare nsenter setpriv; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "scripts/test.sh: missing:$missing" >&2
    echo "  on Debian, as root: apt-get install dash busybox bash shellcheck binutils util-linux" >&2
    exit 2
fi

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
shellcheck $scripts
echo "$(echo "$scripts" | wc -l) scripts clean"

step "static release binary"
cargo build --release --bins
if readelf -lW target/release/liveness | grep -q 'INTERP'; then
    echo "target/release/liveness is dynamically linked" >&2
    exit 1
fi
echo "target/release/liveness: static ($(wc -c <target/release/liveness) bytes)"

step "all checks passed"
