#!/bin/sh
# shellcheck shell=sh
#
# health.sh - judge a liveness unit, for Kubernetes exec probes and scripts.
#
# The POSIX-shell twin of `liveness probe`: same state contract
# (doc/state-format.md), same verdicts, exit codes and one line on stderr.
# Shell builtins only - no cat, sed, date or $(...) - so it never forks,
# and runs unchanged under dash, busybox sh and bash.
#
# Usage: health.sh [-u UNIT] [-r RUNDIR] [--live | --ready | --startup]
#                  [--max-age DURATION] [-v]
#   UNIT    default $LIVENESS_UNIT_NAME, else $KUBEXIT_NAME, else $HOSTNAME,
#           else the kernel's host name (/proc/sys/kernel/hostname)
#   RUNDIR  default $LIVENESS_RUNDIR, else $KUBEXIT_GRAVEYARD/.liveness (or
#           /graveyard/.liveness when only $KUBEXIT_NAME is set), else /run
#
# Exit codes:
#   0 ok                         5 heartbeat stale
#   1 unhealthy (error != 0)     6 still starting, or not ready
#   2 usage                      7 corrupt state (unparsable, symlink, not a
#   3 no state                     regular file, unreadable, a NUL byte)
#   4 owner gone (not running, reused, zombie) or unverifiable
#  12 exited (the tombstone of `liveness run` says how and when)
#
# What builtins cannot do (doc/state-format.md, "What health.sh cannot do"):
# - take a flock, or compare PID namespaces: the owner is judged by pid,
#   start time and /proc only, so run it in the owner's PID namespace (an
#   exec probe does); an unreadable /proc/<pid>/stat is "owner unverifiable";
# - bound a read: `read` reads a whole line, one byte per system call in
#   dash and busybox sh. A CPU-time limit (1 s, set below) ends a shell
#   that spins on a huge or sparse file: SIGXCPU kills it (a shell reports
#   152), without a line. bash also stops at a length (`read -n`);
# - see NUL bytes: shells drop them, so the bytes read are counted from the
#   file offset in /proc/self/fdinfo;
# - open without blocking: every file is tested (`test -f`) before it is
#   opened, but a FIFO swapped in between, or a file under a write lease
#   (the holder owns the file), blocks the open until the caller's deadline
#   (the kubelet's timeoutSeconds), a lease at most the lease break time
#   (/proc/sys/fs/lease-break-time, 45 s);
# - hold a directory descriptor: the unit directory is tested by its path,
#   then becomes the working directory;
# - keep a deadline (--timeout) or print JSON (--json): use `liveness probe`.

# A spinning read costs CPU time; the rest of this script costs about 1 ms.
# shellcheck disable=SC3045 # -S and -t: dash, busybox sh and bash have both
ulimit -St 1

# The fast path: a healthy unit, judged with as few system calls as the
# shell allows. It only ever exits 0, and at the first doubt falls through
# to the full judgement below, which starts again and says why. It checks
# what that does, more strictly: one line and its newline per file,
# numbers short enough to need no range check, no options but the mode.
# Shells drop NUL bytes: dash and busybox sh read one byte per call, so
# /proc/self/io must grow by exactly the bytes seen; bash reads by blocks,
# and looks for a NUL in each file with `read -d ''` (z); it reads at most
# 66 bytes of any file here. dash parses this one command, not the rest.
# shellcheck disable=SC3028 # HOSTNAME: not POSIX, but runtimes export it
if [ $# -le 1 ]; then
    u=${LIVENESS_UNIT_NAME:-${KUBEXIT_NAME:-${HOSTNAME:-}}} m=${1---live} a=$#
    d=${KUBEXIT_GRAVEYARD:-${KUBEXIT_NAME:+/graveyard}}
    d=${LIVENESS_RUNDIR:-${d:+$d/.liveness}}
    d=${d:-/run}
    case $m:$d:$u in
        --live:/*:?* | --ready:/*:?* | --startup:/*:?*)
            case $u in
                . | .. | *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-]*) ;;
                *)
                    exec 0<&-
                    # f NAME: the one line of file NAME into $v, $y set when
                    # the file is there; false for a symlink, anything but a
                    # regular file, more than a line and its newline, a NUL.
                    # shellcheck disable=SC2086 # -n65, -n1 or nothing
                    f() {
                        v='' y=''
                        if [ -h "$1" ]; then
                            return 1
                        elif [ -f "$1" ]; then
                            { IFS= read -r ${BASH_VERSION:+-n65} v && ! IFS= read -r ${BASH_VERSION:+-n1} x; } <"$1" &&
                                [ -z "$x" ] && z "$1" && b=$((b + ${#v} + 1)) y=1
                        else
                            ! [ -e "$1" ]
                        fi
                    }
                    z() {
                        # shellcheck disable=SC3045 # bash only
                        [ -z "${BASH_VERSION:-}" ] || ! IFS= read -r -d '' -n 66 _ <"$1"
                    }
                    # c VALUE DIGITS: a canonical number of at most DIGITS digits.
                    c() {
                        case $1 in
                            0 | [1-9] | [1-9]*[0-9]) case $1 in *[!0-9]*) return 1 ;; esac ;;
                            *) return 1 ;;
                        esac
                        [ ${#1} -le "$2" ]
                    }
                    # shellcheck disable=SC2086 # the stat fields, split
                    {
                        [ ${#u} -le 253 ] && ! [ -h "$d/$u" ] && cd -P "$d/$u" && [ -r . ] &&
                            i0='rchar: 0' b=0 &&
                            { [ -n "${BASH_VERSION:-}" ] || IFS= read -r i0 </proc/self/io; } && b=$((${#i0} + 1)) &&
                            f pid && p=$v && c "$p" 9 && [ "$p" != 0 ] &&
                            f starttime && s=$v && { [ -z "$y" ] || c "$s" 18; } &&
                            f pidns && { [ -z "$y" ] || c "$v" 18; } &&
                            IFS= read -r t <"/proc/$p/stat" && b=$((b + ${#t} + 1)) &&
                            r=${t##*') '} && [ "$r" != "$t" ] && set -f &&
                            set -- $r && set +f &&
                            [ $# -ge 20 ] &&
                            case $1 in
                                Z | X | x) false ;;
                                [A-Za-z]) [ -z "$s" ] || [ "${20}" = "$s" ] ;;
                                *) false ;;
                            esac &&
                            ! [ -h lock ] && { [ -f lock ] && [ -r lock ] || ! [ -e lock ]; } &&
                            f heartbeat && h=$v &&
                            if [ -n "$y" ]; then
                                IFS= read -r up </proc/uptime && b=$((b + ${#up} + 1)) &&
                                    k=${h%% *} && [ "$k" != "$h" ] && h=${h#* } &&
                                    c "$k" 7 && [ "$k" != 0 ] && c "$h" 15 &&
                                    up=${up%% *} && cs=${up#*.} && up=$((${up%.*} * 1000 + ${cs#0} * 10)) &&
                                    [ "$h" -le $((up + 1000)) ] && [ $((up - h)) -le $((k * 1000)) ]
                            fi &&
                            f error && c "$v" 9 &&
                            case $m:$v in
                                --live:0 | --ready:0 | --startup:?*) ;;
                                *) false ;;
                            esac &&
                            { [ "$m" != --ready ] || { ! [ -h ready ] && [ -f ready ]; }; } &&
                            if [ -n "${BASH_VERSION:-}" ]; then
                                i1=$i0 b=0
                            else
                                IFS= read -r i1 </proc/self/io
                            fi &&
                            case $i0:$i1 in
                                'rchar: '[0-9]*:'rchar: '[0-9]*)
                                    case ${i0#rchar: }${i1#rchar: } in *[!0-9]*) false ;; esac ;;
                                *) false ;;
                            esac &&
                            [ $((${i1#rchar: } - ${i0#rchar: })) = "$b" ] && exit 0
                    } 2>/dev/null
                    # The arguments, which the stat fields may have replaced.
                    set +f
                    if [ "$a" = 1 ]; then
                        set -- "$m"
                    else
                        set --
                    fi
                    ;;
            esac
            ;;
    esac
fi

DIGITS=0123456789
NAME_CHARS=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-
NL='
'
# Lengths and patterns count bytes, as the contract does.
LC_ALL=C
# bash's `read -n` stops a line at a length; dash and busybox sh have none.
RN=
[ -z "${BASH_VERSION:-}" ] || RN=-n65

unit=
unit_given=
rundir=
rundir_given=
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
        -r | --rundir) need_value "$1" $#; rundir=$2 rundir_given=1; shift ;;
        --rundir=*) rundir=${1#--rundir=} rundir_given=1 ;;
        --live) set_mode live ;;
        --ready) set_mode ready ;;
        --startup) set_mode startup ;;
        --max-age) need_value "$1" $#; max_age=$2; shift ;;
        --max-age=*) max_age=${1#--max-age=} ;;
        -v | --verbose) verbose=1 ;;
        -h | --help)
            printf '%s\n' \
                'Usage: health.sh [-u UNIT] [-r RUNDIR] [--live | --ready | --startup]' \
                '                 [--max-age DURATION] [-v]' \
                'Exit: 0 ok, 1 unhealthy, 2 usage, 3 no state, 4 owner gone,' \
                '5 heartbeat stale, 6 starting or not ready, 7 corrupt state,' \
                '12 exited.'
            exit 0 ;;
        --timeout | --timeout=* | --json)
            usage "${1%%=*} needs 'liveness probe' (health.sh cannot fork a timer or write JSON)" ;;
        *) usage "unexpected argument '$1'" ;;
    esac
    shift
done
mode=${mode:-live}

# The unit and run directory as every command finds them
# (doc/state-format.md, "Where"), kubexit's variables included.
if [ -z "$unit_given" ]; then
    unit=${LIVENESS_UNIT_NAME:-${KUBEXIT_NAME:-}}
fi
if [ -z "$rundir_given" ]; then
    rundir=${LIVENESS_RUNDIR:-}
    if [ -z "$rundir" ]; then
        # kubexit's graveyard, without trailing slashes, holds .liveness.
        g=${KUBEXIT_GRAVEYARD:-${KUBEXIT_NAME:+/graveyard}}
        while :; do
            case $g in
                */) g=${g%/} ;;
                *) break ;;
            esac
        done
        case ${KUBEXIT_GRAVEYARD:-}${KUBEXIT_NAME:-} in
            '') rundir=/run ;;
            *) rundir=${g:-}/.liveness ;;
        esac
    fi
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
# max_ms: --max-age in milliseconds. Bare seconds (1 to 31536000), or Go's
# form with whole numbers (90s, 1m30s, 1500ms, 2h; also us, ns), summed in
# nanoseconds and truncated to milliseconds as `liveness probe` does: 1 s to
# a year. A fraction (1.5s) needs `liveness probe`.
max_ms=
bad_age() {
    usage "--max-age: \"$max_age\" is not a duration (30, 30s, 1m30s, 500ms, 2h; a fraction such as 1.5s needs 'liveness probe')"
}
case $max_age in
    '') ;;
    *[!$DIGITS]*)
        a_rest=$max_age a_total=0
        while [ -n "$a_rest" ]; do
            a_num=${a_rest%%[!"$DIGITS"]*}
            a_rest=${a_rest#"$a_num"}
            a_unit=${a_rest%%["$DIGITS"]*}
            a_rest=${a_rest#"$a_unit"}
            case $a_unit in
                h) a_u=3600000000000 ;;
                m) a_u=60000000000 ;;
                s) a_u=1000000000 ;;
                ms) a_u=1000000 ;;
                us | µs | μs) a_u=1000 ;;
                ns) a_u=1 ;;
                *) bad_age ;;
            esac
            # Leading zeros would read as octal in $((...)).
            while case $a_num in 0?*) true ;; *) false ;; esac; do a_num=${a_num#0}; done
            if [ -z "$a_num" ] || [ ${#a_num} -gt 17 ] ||
                [ "$a_num" -gt $((31536000000000000 / a_u)) ]; then
                bad_age
            fi
            a_total=$((a_total + a_num * a_u))
            [ "$a_total" -le 31536000000000000 ] || bad_age
        done
        [ "$a_total" -ge 1000000000 ] || bad_age
        max_ms=$((a_total / 1000000)) ;;
    0*) usage "--max-age: \"$max_age\" is not a number from 1 to 31536000" ;;
    *) if [ ${#max_age} -gt 8 ] || [ "$max_age" -gt 31536000 ]; then
           usage "--max-age: \"$max_age\" is not a number from 1 to 31536000"
       fi
       max_ms=$((max_age * 1000)) ;;
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

# is_regular NAME: whether state file NAME (in the unit directory, the
# working directory from step 1 on) is there to be opened. Returns 1 when it
# does not exist; exits 7 when it is a symlink, unreadable or not a regular
# file - tested before any open, so a FIFO never blocks this script.
is_regular() {
    if [ -h "$1" ]; then
        corrupt "$1: symlink"
    elif [ -f "$1" ]; then
        return 0
    elif [ ! -e "$1" ]; then
        return 1
    elif [ ! -r "$1" ]; then
        corrupt "$1: unreadable: Permission denied"
    fi
    corrupt "$1: not a regular file"
}

# read_file NAME: state file NAME, which holds at most 64 bytes in one line,
# into $val (the line, without its newline; the shell drops NUL bytes, and
# $nul says whether it did). Returns 1 when the file does not exist; exits 7
# when it cannot be trusted, for liveness probe's reason.
#
# The file's offset, from /proc/self/fdinfo, counts the bytes the shell
# read, NUL bytes included: after the first line ($p1) and at the end ($p2).
read_file() {
    is_regular "$1" || return 1
    val='' l='' p1='' p2='' nl=0 size=0 more='' nul='' opened=''
    # shellcheck disable=SC2086,SC2229 # $RN is one word (-n65) or none
    {
        opened=1
        if IFS= read -r $RN val; then nl=1; fi
        IFS=': 	' read -r _ p1 </proc/self/fdinfo/3
        if [ $nl = 1 ]; then
            # The rest, up to the 65th byte: anything there is corrupt.
            while [ $size -le 64 ] && IFS= read -r $RN l; do
                size=$((size + ${#l} + 1)) more=1 l=''
            done
            [ -z "$l" ] || more=1
            IFS=': 	' read -r _ p2 </proc/self/fdinfo/3
        fi
    } 2>/dev/null <"$1" 3<&0
    if [ -z "$opened" ]; then
        # Removed since the test (a reset): missing, as for liveness probe.
        [ -e "$1" ] || return 1
        corrupt "$1: unreadable: Permission denied"
    fi
    size=$((${#val} + nl + size + ${#l}))
    case $p1 in
        '' | *[!$DIGITS]*) p1='' p2='' ;; # no /proc: count what the shell saw
        *)
            p2=${p2:-$p1}
            [ "$p2" -le "$size" ] || size=$p2
            [ $((${#val} + nl)) -ge "$p1" ] || nul=1
            [ "$p2" -le "$p1" ] || more=1 ;;
    esac
    [ "$size" -le 64 ] || corrupt "$1: too large"
    [ "$size" -gt 0 ] || corrupt "$1: empty"
    [ -z "$more" ] || corrupt "$1: more than one line"
    return 0
}

# check_decimal NAME VALUE MAXDIGITS MAX: exits 7 unless VALUE is a
# canonical decimal from 0 to MAX (MAX < 2^63; compared in two halves so
# that 19-digit values never overflow the shell's arithmetic). $nul says
# the shell dropped NUL bytes from VALUE.
check_decimal() {
    [ -z "$nul" ] || corrupt "$1: not a decimal number"
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

# 1. The unit directory, which becomes the working directory: every file
#    below is opened by its name in it, whatever happens to the path.
if [ -h "$dir" ]; then
    corrupt "unit directory: symlink"
elif [ ! -e "$dir" ]; then
    # Missing, or hidden by a directory we may not search (a 0700 parent):
    # the deepest path that exists tells which, as open(2) does.
    up=$dir
    while :; do
        case $up in
            */*) up=${up%/*} ;;
            *) up=. ;;
        esac
        up=${up:-/}
        if [ -e "$up" ]; then
            if [ -d "$up" ] && [ ! -x "$up" ]; then
                corrupt "unit directory: unreadable: Permission denied"
            fi
            break
        fi
        if [ "$up" = . ] || [ "$up" = / ]; then
            break
        fi
    done
    verdict 3 "no state" "no unit directory $dir"
elif [ ! -d "$dir" ]; then
    corrupt "unit directory: not a directory"
elif [ ! -r "$dir" ]; then
    corrupt "unit directory: unreadable: Permission denied"
elif [ ! -x "$dir" ]; then
    # Opened, but no file in it can be: the first one read is `pid`.
    corrupt "pid: unreadable: Permission denied"
fi
case $dir in
    /*) ;;
    *) dir=./$dir ;; # never searched in CDPATH
esac
cd -P -- "$dir" 2>/dev/null || corrupt "unit directory: unreadable: Permission denied"

# read_stat PID: the state (field 3) and start time (field 22) of
# /proc/PID/stat into $state and $start. The command name (field 2) lies
# between the first `(` and the last `)` and may hold any byte but NUL -
# newlines too (at most 15 bytes, so at most 16 lines) - so the whole file
# is read. Returns 1 when there is no such process, 2 when it exists but
# cannot be read or parsed.
read_stat() {
    stat='' l='' n=0
    {
        while [ $n -lt 17 ] && IFS= read -r l; do
            stat=$stat$l$NL n=$((n + 1)) l=''
        done
    } 2>/dev/null <"/proc/$1/stat"
    stat=$stat$l
    case $stat in
        *')'*) ;;
        *)
            [ -e "/proc/$1" ] || return 1
            return 2 ;;
    esac
    set -f
    # shellcheck disable=SC2086 # word splitting of the stat fields is intended
    set -- ${stat##*')'}
    set +f
    [ $# -ge 20 ] || return 2
    state=$1
    shift 19
    start=$1
    return 0
}

# 2-3. judge_owner: read pid, starttime and pidns, and judge the owner:
#      running, not a zombie, and the same process (start time). Returns 1
#      instead of a verdict when the start time does not match and $retry
#      is set: the owner may be changing hands (doc/state-format.md,
#      "Changing owner"), so the caller reads everything once more.
judge_owner() {
    read_file pid || exited
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

    read_stat "$pid"
    case $? in
        1) verdict 4 "owner gone" "pid $pid is not running" ;;
        2) verdict 4 "owner unverifiable" "cannot read /proc/$pid/stat, and health.sh cannot test the lock" ;;
    esac
    case $state in
        Z | X | x) verdict 4 "owner gone" "pid $pid has exited (zombie)" ;;
    esac
    if [ -n "$starttime" ] && [ "$start" != "$starttime" ]; then
        [ -z "$retry" ] || return 1
        verdict 4 "owner gone" "pid $pid was reused (start time $start, recorded $starttime)"
    fi
    return 0
}

# quoted_time VALUE: exits 7 (bad $2 line) unless VALUE is what
# `liveness run` writes: "YYYY-MM-DDTHH:MM:SS.mmmZ", a real UTC instant.
quoted_time() {
    D='[0-9]'
    # shellcheck disable=SC2254 # $D is a pattern
    case $1 in
        \"$D$D$D$D-$D$D-$D${D}T$D$D:$D$D:$D$D.$D$D${D}Z\") ;;
        *) corrupt "tombstone: bad $2 line" ;;
    esac
    t=${1#?} y=${t%%-*} t=${t#*-} mo=${t%%-*} t=${t#*-} d=${t%%T*} t=${t#*T}
    h=${t%%:*} t=${t#*:} mi=${t%%:*} t=${t#*:} sec=${t%%.*}
    mo=${mo#0} d=${d#0} h=${h#0} mi=${mi#0} sec=${sec#0}
    case $mo in
        2) days=28
           if [ $((y % 4)) -eq 0 ] && { [ $((y % 100)) -ne 0 ] || [ $((y % 400)) -eq 0 ]; }; then
               days=29
           fi ;;
        4 | 6 | 9 | 11) days=30 ;;
        *) days=31 ;;
    esac
    if [ "$y" -lt 1970 ] || [ "$mo" -lt 1 ] || [ "$mo" -gt 12 ] || [ "$d" -lt 1 ] ||
        [ "$d" -gt "$days" ] || [ "$h" -gt 23 ] || [ "$mi" -gt 59 ] || [ "$sec" -gt 59 ]; then
        corrupt "tombstone: bad $2 line"
    fi
}

# signal_name N: the name `liveness run` writes for signal N, into $sig.
signal_name() {
    set -- "$1" HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM \
        STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS
    if [ "$1" -ge 1 ] && [ "$1" -le 31 ]; then
        shift "$1"
        sig=SIG$1
    elif [ "$1" -ge 34 ]; then
        sig=SIGRTMIN+$(($1 - 34))
    else
        sig=SIG$1
    fi
}

# unquoted VALUE: whether VALUE is a Reason as `liveness run` writes it: in
# double quotes, `"` and `\` escaped, no control character, at most 512
# bytes once unescaped.
unquoted() {
    case $1 in
        \"*\") ;;
        *) return 1 ;;
    esac
    rest=${1#?} rest=${rest%?} len=0
    case $rest in
        *[[:cntrl:]]*) return 1 ;;
    esac
    while [ -n "$rest" ]; do
        pre=${rest%%[\\\"]*}
        len=$((len + ${#pre})) rest=${rest#"$pre"}
        case $rest in
            '') ;;
            \\\\* | \\\"*) len=$((len + 1)) rest=${rest#??} ;;
            *) return 1 ;;
        esac
    done
    [ "$len" -le 512 ]
}

# field KEY: when tombstone line $at starts with KEY, its rest into $v and
# on to the next line; else returns 1.
field() {
    [ "$at" -le "$n" ] || return 1
    eval "v=\${t$at}"
    case $v in
        "$1"*) v=${v#"$1"} at=$((at + 1)) ;;
        *) return 1 ;;
    esac
}

# exited: there is no pid file. A tombstone with a Died line says how the
# supervised child ended (exit 12); without one the unit is not loaded.
# Read as strictly as liveness probe reads it (doc/state-format.md,
# "tombstone"): these lines, in this order, at most 2048 bytes.
exited() {
    is_regular tombstone || verdict 3 "no state" "not loaded (no pid file)"
    n=0 size=0 l='' p2='' opened=''
    # shellcheck disable=SC2086,SC2229 # ${RN:+...} is one word or none
    {
        opened=1
        while [ $size -le 2048 ] && IFS= read -r ${RN:+-n2049} l; do
            n=$((n + 1)) size=$((size + ${#l} + 1))
            eval "t$n=\$l"
            l=''
        done
        IFS=': 	' read -r _ p2 </proc/self/fdinfo/3
    } 2>/dev/null <tombstone 3<&0
    [ -n "$opened" ] || corrupt "tombstone: unreadable: Permission denied"
    size=$((size + ${#l}))
    case $p2 in
        '' | *[!$DIGITS]*) p2=$size ;;
    esac
    if [ "$p2" -gt 2048 ] || [ "$size" -gt 2048 ]; then
        corrupt "tombstone: too large"
    fi
    # NUL bytes, which the shell dropped, made some line wrong.
    [ "$p2" -le "$size" ] || corrupt "tombstone: unexpected line"
    if [ -n "$l" ] || [ "$n" -eq 0 ]; then
        corrupt "tombstone: no final newline"
    fi
    at=1
    field 'Schema: ' || corrupt "tombstone: no Schema line"
    [ "$v" = 1 ] || corrupt "tombstone: unknown schema \"$v\""
    born=
    if field 'Born: '; then
        quoted_time "$v" Born
        born=1
    fi
    if ! field 'Died: '; then
        if [ -n "$born" ] && [ "$n" -eq 2 ]; then
            verdict 3 "no state" "not loaded (no pid file)"
        fi
        corrupt "tombstone: unexpected line"
    fi
    quoted_time "$v" Died
    died=${v#?} died=${died%?}
    field 'ExitCode: ' || corrupt "tombstone: bad ExitCode line"
    code=$v
    case $code in
        '' | *[!$DIGITS]* | 0?* | ????*) corrupt "tombstone: bad ExitCode line" ;;
    esac
    [ "$code" -le 255 ] || corrupt "tombstone: bad ExitCode line"
    sig=
    if field 'Signal: '; then
        name=$v
        field 'SignalNumber: ' || corrupt "tombstone: bad SignalNumber line"
        case $v in
            '' | *[!$DIGITS]* | 0?* | ????*) corrupt "tombstone: bad SignalNumber line" ;;
        esac
        [ "$v" -le 127 ] || corrupt "tombstone: bad SignalNumber line"
        signal_name "$v"
        if [ "$sig" != "$name" ] || [ "$code" -ne $((128 + v)) ]; then
            corrupt "tombstone: Signal, SignalNumber and ExitCode disagree"
        fi
    fi
    reason=
    if field 'Reason: '; then
        unquoted "$v" || corrupt "tombstone: bad Reason line"
        reason=1
    fi
    if [ "$born" = "$reason" ] || { [ -n "$reason" ] && [ -n "$sig" ]; }; then
        corrupt "tombstone: Born and Reason: exactly one of them"
    fi
    [ "$at" -eq $((n + 1)) ] || corrupt "tombstone: unexpected line"
    if [ -n "$sig" ]; then
        verdict 12 exited "killed by $sig at $died"
    fi
    verdict 12 exited "code $code at $died"
}

retry=1
if ! judge_owner; then
    retry=
    judge_owner
fi

# The lock: builtins cannot test a flock (see the header), but can refuse
# what is not a lock file, as `liveness probe` does.
if is_regular lock && [ ! -r lock ]; then
    corrupt "lock: unreadable: Permission denied"
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
    if [ -n "$max_ms" ]; then
        limit=$max_ms whose=--max-age
    else
        limit=$((deadline * 1000)) whose=deadline
    fi
    if [ "$age" -gt "$limit" ]; then
        seconds "$age"
        ago=$secs
        seconds "$limit"
        verdict 5 "heartbeat stale" "last beat $ago s ago, $whose $secs s"
    fi
elif [ -n "$max_ms" ]; then
    seconds "$max_ms"
    verdict 5 "heartbeat stale" "no heartbeat (--max-age $secs)"
fi

# 5. The error code.
read_file error || verdict 6 "starting" "no error code reported yet"
error=$val
check_decimal error "$error" 10 2147483647

# read_message: the message into $val, as liveness probe shows it: the
# first line of its first 4096 bytes, control characters as `?` (empty when
# there is none); exits 7 when it cannot be trusted.
read_message() {
    val='' opened=''
    is_regular message || return 0
    # shellcheck disable=SC2086 # one word or none
    { opened=1 && IFS= read -r ${RN:+-n4096} val; } 2>/dev/null <message
    if [ -z "$opened" ] && [ -e message ]; then
        corrupt "message: unreadable: Permission denied"
    fi
    if [ ${#val} -gt 4096 ]; then
        q='?'
        for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do q=$q$q; done
        # shellcheck disable=SC2295 # $q is a pattern: 4096 times `?`
        val=${val%"${val#$q}"}
    fi
    case $val in
        *[[:cntrl:]]*)
            out=
            while :; do
                case $val in
                    *[[:cntrl:]]*) ;;
                    *) break ;;
                esac
                pre=${val%%[[:cntrl:]]*}
                out="$out$pre?" val=${val#"$pre"?}
            done
            val=$out$val ;;
    esac
}

if [ "$mode" != startup ]; then
    if [ "$error" != 0 ]; then
        read_message
        if [ -n "$val" ]; then
            verdict 1 unhealthy "error $error: $val"
        fi
        verdict 1 unhealthy "error $error"
    fi
    if [ "$mode" = ready ]; then
        if [ -h ready ]; then
            corrupt "ready: symlink"
        elif [ ! -e ready ]; then
            verdict 6 "not ready"
        elif [ ! -f ready ]; then
            corrupt "ready: not a regular file"
        fi
    fi
fi

if [ -n "$verbose" ]; then
    printf 'liveness: unit %s: ok\n' "$unit" >&2
fi
exit 0
