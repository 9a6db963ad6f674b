#!/bin/sh
# Sourced by scripts/demo.sh and scripts/test.sh, not run on its own: finds
# what a fresh Debian machine that has only a rustup toolchain and git lacks
# before anything is built, installs the Debian packages itself when run as
# root, and otherwise names every missing piece and the exact command that
# installs it, then stops (exit 2).
#
#   prereq_build              cc, the static C library (+crt-static), CA certificates
#   prereq_cmd CMD PACKAGE    CMD on PATH, from Debian's PACKAGE
#   prereq_component NAME     a rustup component (rustfmt, clippy)
#   prereq_done WHO           install or explain what is missing

prereq_pkgs=
prereq_lines=
prereq_manual=

# prereq_missing PACKAGE WHAT: WHAT is missing; Debian's PACKAGE brings it.
prereq_missing() {
    case " $prereq_pkgs " in
    *" $1 "*) ;;
    *) prereq_pkgs="${prereq_pkgs:+$prereq_pkgs }$1" ;;
    esac
    prereq_lines="$prereq_lines
  - $2 (Debian package $1)"
}

prereq_cmd() {
    command -v "$1" >/dev/null 2>&1 || prereq_missing "$2" "$1"
}

# Whether the C compiler finds FILE (cc -print-file-name echoes the bare
# name when it does not).
prereq_cc_finds() {
    found=$(cc -print-file-name="$1" 2>/dev/null) || return 1
    [ "$found" != "$1" ] && [ -e "$found" ]
}

prereq_build() {
    if ! command -v cargo >/dev/null 2>&1; then
        prereq_manual="$prereq_manual
  - cargo: install a Rust toolchain (1.89 or later) with rustup, https://rustup.rs
    (Debian's own cargo is too old), then open a new shell"
    fi
    # Rust links through the system C compiler; .cargo/config.toml asks
    # for +crt-static, which needs the static C library and start files.
    if command -v cc >/dev/null 2>&1; then
        if ! prereq_cc_finds rcrt1.o || ! prereq_cc_finds libc.a; then
            prereq_missing libc6-dev "the static C library and start files (rcrt1.o, libc.a) for the +crt-static link"
        fi
    else
        prereq_missing gcc "cc, the C linker Rust links through"
        if ! dpkg-query -W -f='${db:Status-Status}' libc6-dev 2>/dev/null | grep -qx installed; then
            prereq_missing libc6-dev "the static C library and start files (rcrt1.o, libc.a) for the +crt-static link"
        fi
    fi
    # cargo downloads the crates over HTTPS.
    if [ -z "${SSL_CERT_FILE:-}${CARGO_HTTP_CAINFO:-}" ] &&
        [ ! -s /etc/ssl/certs/ca-certificates.crt ] &&
        [ ! -s /etc/pki/tls/certs/ca-bundle.crt ]; then
        prereq_missing ca-certificates "CA certificates, for cargo to download crates over HTTPS"
    fi
}

prereq_component() {
    command -v cargo >/dev/null 2>&1 || return 0 # named by prereq_build
    case $1 in
    rustfmt) sub=fmt ;;
    *) sub=$1 ;;
    esac
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        prereq_manual="$prereq_manual
  - the $1 component of the Rust toolchain: rustup component add $1"
    fi
}

prereq_done() {
    if [ -n "$prereq_pkgs" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "$1: installing what this machine lacks:$prereq_lines"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update
            # shellcheck disable=SC2086 # one word per package
            apt-get install -y --no-install-recommends $prereq_pkgs
            prereq_pkgs=
            prereq_lines=
        else
            {
                echo "$1: missing:$prereq_lines$prereq_manual"
                echo "  As root, $1 installs the Debian packages itself; or run, as root:"
                echo "    apt-get update && apt-get install -y --no-install-recommends $prereq_pkgs"
            } >&2
            exit 2
        fi
    fi
    if [ -n "$prereq_manual" ]; then
        echo "$1: missing:$prereq_manual" >&2
        exit 2
    fi
}
