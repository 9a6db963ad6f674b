#!/bin/sh
# shellcheck shell=sh
#
# health.sh - judge a liveness unit, for Kubernetes exec probes and scripts.
#
# The POSIX-shell twin of `liveness probe`: same state contract
# (doc/state-format.md), same verdicts, same exit codes, same one line on
# stderr. It uses shell builtins only - no cat, sed, awk, date or $(...) -
# so it never forks, and runs unchanged under dash, busybox sh and bash.
#
# Usage: health.sh [-u UNIT] [-r RUNDIR] [--live | --ready | --startup]
#                  [--max-age SECONDS] [-v]
#
#   UNIT    default $LIVENESS_UNIT_NAME, else $HOSTNAME, else the kernel's
#           host name (/proc/sys/kernel/hostname)
#   RUNDIR  default $LIVENESS_RUNDIR, else /run
#
# Exit codes:
#   0 ok                        5 heartbeat stale
#   1 unhealthy (error != 0)    6 still starting, or not ready
#   2 usage                     7 corrupt state (unparsable, symlink, not a
#   3 no state                    regular file, unreadable)
#   4 owner gone (pid not running, pid reused, zombie)
#
# What builtins cannot do, and `liveness probe` does (doc/state-format.md):
# - take a flock: the owner is judged by pid and start time only, so run this
#   in the owner's PID namespace (an exec probe does);
# - enforce a deadline (--timeout) or print JSON (--json): use
#   `liveness probe`;
# - see NUL bytes: shells drop them when reading, so `12<NUL>3` reads as 123.

DIGITS=0123456789
NAME_CHARS=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-

unit=
unit_given=
rundir=${LIVENESS_RUNDIR:-/run}
mode=
max_age=
verbose=

usage() {
    printf 'liveness: usage: %s (see '"'"'health.sh --help'"'"')\n' "$1" >&2
    exit 2
}

set_mode() {
    if [ -n "$mode" ] && [ "$mode" != "$1" ]; then
        usage "--live, --ready and --startup exclude each other"
    fi
    mode=$1
}

need_value() {
    [ "$2" -ge 2 ] || usage "missing value for $1"
}

while [ $# -gt 0 ]; do
    case $1 in
        -u | --unit) need_value "$1" $#; unit=$2 unit_given=1; shift ;;
        --unit=*) unit=${1#--unit=} unit_given=1 ;;
        -r | --rundir) need_value "$1" $#; rundir=$2; shift ;;
        --rundir=*) rundir=${1#--rundir=} ;;
        --live) set_mode live ;;
        --ready) set_mode ready ;;
        --startup) set_mode startup ;;
        --max-age) need_value "$1" $#; max_age=$2; shift ;;
        --max-age=*) max_age=${1#--max-age=} ;;
        -v | --verbose) verbose=1 ;;
        -h | --help)
            printf '%s\n' \
                'Usage: health.sh [-u UNIT] [-r RUNDIR] [--live | --ready | --startup]' \
                '                 [--max-age SECONDS] [-v]' \
                'Exit: 0 ok, 1 unhealthy, 2 usage, 3 no state, 4 owner gone,' \
                '5 heartbeat stale, 6 starting or not ready, 7 corrupt state.'
            exit 0 ;;
        --timeout | --timeout=* | --json)
            usage "${1%%=*} needs 'liveness probe' (health.sh cannot fork a timer or write JSON)" ;;
        *) usage "unexpected argument '$1'" ;;
    esac
    shift
done
mode=${mode:-live}

if [ -z "$unit_given" ]; then
    unit=${LIVENESS_UNIT_NAME:-}
fi
if [ -z "$unit_given" ] && [ -z "$unit" ]; then
    # HOSTNAME is not POSIX, but container runtimes export it.
    # shellcheck disable=SC3028
    unit=${HOSTNAME:-}
    if [ -z "$unit" ]; then
        IFS= read -r unit 2>/dev/null </proc/sys/kernel/hostname
    fi
fi

# bad_unit WHY: the same line and exit code as `liveness probe`.
bad_unit() {
    printf 'liveness: unit name "%s": %s\n' "$unit" "$1" >&2
    exit 2
}
[ -n "$unit" ] || bad_unit "must not be empty"
[ ${#unit} -le 253 ] || bad_unit "longer than 253 characters"
case $unit in
    . | ..) bad_unit "must not be '.' or '..'" ;;
    *[!$NAME_CHARS]*)
        ok=${unit%%[!"$NAME_CHARS"]*}
        rest=${unit#"$ok"}
        bad_unit "character '${rest%"${rest#?}"}' is not allowed (use A-Z a-z 0-9 . _ -)" ;;
esac
[ -n "$rundir" ] || usage "run directory: must not be empty"
case $max_age in
    '') ;;
    *[!$DIGITS]* | 0*) usage "--max-age: \"$max_age\" is not a number from 1 to 31536000" ;;
    *) if [ ${#max_age} -gt 8 ] || [ "$max_age" -gt 31536000 ]; then
           usage "--max-age: \"$max_age\" is not a number from 1 to 31536000"
       fi ;;
esac

dir=$rundir/$unit

# verdict CODE WORDS [REASON]: print the one line and exit.
verdict() {
    if [ -n "${3:-}" ]; then
        printf 'liveness: unit %s: %s: %s\n' "$unit" "$2" "$3" >&2
    else
        printf 'liveness: unit %s: %s\n' "$unit" "$2" >&2
    fi
    exit "$1"
}

corrupt() {
    verdict 7 "corrupt state" "$1"
}

# seconds MS: milliseconds as seconds with one truncated decimal, into $secs.
seconds() {
    if [ $(($1 % 1000)) -eq 0 ]; then
        secs=$(($1 / 1000))
    else
        secs=$(($1 / 1000)).$(($1 % 1000 / 100))
    fi
}

# read_file NAME: the one line of state file NAME into $val. Returns 1 when
# the file does not exist; exits 7 when it cannot be trusted.
read_file() {
    f=$dir/$1
    # The common case first: one stat and one lstat.
    if [ ! -f "$f" ] || [ -h "$f" ]; then
        if [ -h "$f" ]; then
            corrupt "$1: symlink"
        elif [ ! -e "$f" ]; then
            return 1
        fi
        corrupt "$1: not a regular file"
    fi
    val='' extra='' more='' newline=''
    # Not `if ! { ...; } <"$f"`: bash does not invert a failed redirection.
    if {
        if IFS= read -r val; then newline=1; fi
        if IFS= read -r extra || [ -n "$extra" ]; then more=1; fi
    } 2>/dev/null <"$f"; then
        :
    else
        # Removed since the test (a reset): missing, as for liveness probe.
        [ -e "$f" ] || return 1
        corrupt "$1: unreadable: Permission denied"
    fi
    [ -z "$more" ] || corrupt "$1: more than one line"
    [ $((${#val} + ${newline:-0})) -le 64 ] || corrupt "$1: too large"
    return 0
}

# read_message: the first line of the message file into $val (empty when
# there is none); exits 7 when it cannot be trusted.
read_message() {
    f=$dir/message val=''
    if [ ! -f "$f" ] || [ -h "$f" ]; then
        if [ -h "$f" ]; then
            corrupt "message: symlink"
        elif [ ! -e "$f" ]; then
            return 0
        fi
        corrupt "message: not a regular file"
    fi
    IFS= read -r val 2>/dev/null <"$f" || [ -n "$val" ] || [ ! -e "$f" ] ||
        corrupt "message: unreadable: Permission denied"
}

# check_decimal NAME VALUE MAXDIGITS MAX: exits 7 unless VALUE is a
# canonical decimal from 0 to MAX (MAX < 2^63; compared in two halves so
# that 19-digit values never overflow the shell's arithmetic).
check_decimal() {
    case $2 in
        '') corrupt "$1: empty" ;;
        *[!$DIGITS]* | 0?*) corrupt "$1: not a decimal number" ;;
    esac
    [ ${#2} -le "$3" ] || corrupt "$1: out of range"
    if [ ${#2} -lt "$3" ]; then
        return 0
    fi
    if [ "$3" -le 18 ]; then
        [ "$2" -le "$4" ] || corrupt "$1: out of range"
        return 0
    fi
    hi=${2%?????????} lo=${2#"${2%?????????}"}
    mhi=${4%?????????} mlo=${4#"${4%?????????}"}
    if [ "$hi" -gt "$mhi" ] || { [ "$hi" -eq "$mhi" ] && [ "$lo" -gt "$mlo" ]; }; then
        corrupt "$1: out of range"
    fi
}

# 1. The unit directory.
if [ -L "$dir" ]; then
    corrupt "unit directory: symlink"
elif [ ! -e "$dir" ]; then
    verdict 3 "no state" "no unit directory $dir"
elif [ ! -d "$dir" ]; then
    corrupt "unit directory: not a directory"
elif [ ! -r "$dir" ] || [ ! -x "$dir" ]; then
    corrupt "unit directory: unreadable: Permission denied"
fi

# 2-3. judge_owner: read pid, starttime and pidns, and judge the owner:
#      running, not a zombie, and the same process (start time). Returns 1
#      instead of a verdict when the start time does not match and $retry
#      is set: the owner may be changing hands (doc/state-format.md,
#      "Changing owner"), so the caller reads everything once more.
judge_owner() {
    read_file pid || verdict 3 "no state" "not loaded (no pid file)"
    pid=$val
    check_decimal pid "$pid" 10 2147483647
    [ "$pid" != 0 ] || corrupt "pid: out of range"
    starttime=
    if read_file starttime; then
        starttime=$val
        check_decimal starttime "$starttime" 19 9223372036854775807
    fi
    if read_file pidns; then
        # Validated for the same verdict as `liveness probe`; not used (see
        # the header).
        check_decimal pidns "$val" 19 9223372036854775807
    fi

    stat=
    IFS= read -r stat 2>/dev/null <"/proc/$pid/stat" || [ -n "$stat" ] ||
        verdict 4 "owner gone" "pid $pid is not running"
    rest=${stat##*") "}
    set -f
    # shellcheck disable=SC2086 # word splitting of the stat fields is intended
    set -- $rest
    set +f
    [ $# -ge 20 ] || verdict 4 "owner gone" "pid $pid is not running"
    case $1 in
        Z | X | x) verdict 4 "owner gone" "pid $pid has exited (zombie)" ;;
    esac
    shift 19
    if [ -n "$starttime" ] && [ "$1" != "$starttime" ]; then
        [ -z "$retry" ] || return 1
        verdict 4 "owner gone" "pid $pid was reused (start time $1, recorded $starttime)"
    fi
    return 0
}
retry=1
if ! judge_owner; then
    retry=
    judge_owner
fi

# The lock: builtins cannot test a flock (see the header), but can refuse
# what is not a lock file, as `liveness probe` does.
f=$dir/lock
if [ -L "$f" ]; then
    corrupt "lock: symlink"
elif [ -e "$f" ] && [ ! -f "$f" ]; then
    corrupt "lock: not a regular file"
fi

# 4. The heartbeat: "<deadline-seconds> <boottime-ms>", against /proc/uptime
#    (the same CLOCK_BOOTTIME, in centiseconds).
if read_file heartbeat; then
    case $val in
        *' '*) deadline=${val%% *} stamp=${val#* } ;;
        *) corrupt "heartbeat: not '<deadline> <stamp>'" ;;
    esac
    if [ -z "$deadline" ] || [ -z "$stamp" ]; then
        corrupt "heartbeat: not '<deadline> <stamp>'"
    fi
    check_decimal heartbeat "$deadline" 8 31536000
    [ "$deadline" != 0 ] || corrupt "heartbeat: out of range"
    check_decimal heartbeat "$stamp" 15 999999999999999
    IFS=' ' read -r up _ </proc/uptime
    cs=${up#*.}
    now=$((${up%.*} * 1000 + ${cs#0} * 10))
    [ "$stamp" -le $((now + 1000)) ] || corrupt "heartbeat: beat stamp is in the future"
    age=$((now - stamp))
    [ "$age" -ge 0 ] || age=0
    if [ -n "$max_age" ]; then
        limit=$((max_age * 1000)) whose=--max-age
    else
        limit=$((deadline * 1000)) whose=deadline
    fi
    if [ "$age" -gt "$limit" ]; then
        seconds "$age"
        ago=$secs
        seconds "$limit"
        verdict 5 "heartbeat stale" "last beat $ago s ago, $whose $secs s"
    fi
elif [ -n "$max_age" ]; then
    verdict 5 "heartbeat stale" "no heartbeat (--max-age $max_age)"
fi

# 5. The error code.
read_file error || verdict 6 "starting" "no error code reported yet"
error=$val
check_decimal error "$error" 10 2147483647

if [ "$mode" != startup ]; then
    if [ "$error" != 0 ]; then
        read_message
        if [ -n "$val" ]; then
            verdict 1 unhealthy "error $error: $val"
        fi
        verdict 1 unhealthy "error $error"
    fi
    if [ "$mode" = ready ]; then
        f=$dir/ready
        if [ -L "$f" ]; then
            corrupt "ready: symlink"
        elif [ ! -e "$f" ]; then
            verdict 6 "not ready"
        elif [ ! -f "$f" ]; then
            corrupt "ready: not a regular file"
        fi
    fi
fi

if [ -n "$verbose" ]; then
    printf 'liveness: unit %s: ok\n' "$unit" >&2
fi
exit 0
