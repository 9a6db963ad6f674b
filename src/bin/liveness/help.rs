//! The help texts: `liveness --help` and `liveness help COMMAND`.

/// `liveness --help`.
pub const HELP: &str = "\
liveness: process health state in files under /run/<unit>/, and probes that read it.

Usage: liveness <command> [options]

Commands:
  probe      judge a unit; exit code says why (for Kubernetes exec probes)
  load       run checks, then register a process as the unit's owner
  set        set the error code (0 = healthy) and its message
  ready      mark the unit ready for traffic
  not-ready  mark the unit not ready
  beat       record a heartbeat
  reset      remove the unit's state
  status     show every unit under the run directory
  run        run a command as the unit's supervised owner (tombstone, deps)
  terminate  signal the unit's owner after verifying it, and wait for it
  wait       block until units are ready, gone, or have a tombstone
  serve      answer HTTP health checks (/health/live, /health/ready, ...)

Every unit command takes -u/--unit UNIT (default: $LIVENESS_UNIT_NAME, else
$KUBEXIT_NAME, else the host name) and -r/--rundir DIR (default:
$LIVENESS_RUNDIR, else $KUBEXIT_GRAVEYARD/.liveness when kubexit's variables
are set, else /run).
'liveness help <command>' or 'liveness <command> --help' for details.

Exit codes:
  0 ok                     6 still starting, or not ready
  1 unhealthy (error != 0) 7 corrupt state (unparsable, symlink, not a file)
  2 usage                  8 timed out (probe --timeout)
  3 no state               9 a check failed (load)
  4 owner gone/unverifiable 10 unit owned by another live process
  5 heartbeat stale        11 system error (read-only or full file system, ...)
                           12 exited: the supervised child has ended (tombstone)
'liveness run' exits with the child's status instead (see 'liveness help run').
";

/// `liveness help <command>`.
pub fn command_help(name: &str) -> &'static str {
    match name {
        "probe" => {
            "\
Usage: liveness probe [-u UNIT] [-r DIR] [--live | --ready | --startup]
                      [--max-age SECONDS] [--timeout MS] [--json] [-v]

Judges a unit and exits with a code that says why; prints one line on stderr
when it fails (and with -v when it passes). Never forks; stops itself after
--timeout milliseconds (default 800, under the kubelet's 1 s) with exit 8.

  --live       (default) owner running, heartbeat fresh, error 0
  --ready      as --live, and the ready file present
  --startup    owner running, heartbeat fresh, any error code reported
  --max-age S  require a heartbeat no older than S seconds, in place of the
               deadline the writer declared
  --json       print the full report as JSON on stdout

Durations in Go's form work too: --timeout 1.5s, --max-age 1m30s.

Exit: 0 ok, 1 unhealthy, 3 no state, 4 owner gone (or unverifiable: another
PID namespace and no lock held), 5 heartbeat stale, 6 starting or not ready,
7 corrupt state, 8 timed out, 12 exited (no owner, and the tombstone says
how the supervised child ended), 2 usage.
"
        }
        "load" => {
            "\
Usage: liveness load [-u UNIT] [-r DIR] [--pid PID] [--check CMD]... [--heartbeat SECONDS]

Runs each check command with 'sh -c' in order (any failure: exit 9, nothing
written), then records PID (default: the caller's parent, i.e. the shell
running this command) as the unit's owner. The unit is then 'starting' until
the first 'liveness set'. Refused with exit 10 while another live process owns
the unit. --heartbeat declares a deadline: 'liveness beat' must follow more
often than that, or probes report the unit stale (whole seconds: 90, 1m30s).
"
        }
        "set" => {
            "\
Usage: liveness set CODE [-m|--message MESSAGE] [-u UNIT] [-r DIR]

Sets the unit's error code (0 = healthy, up to 2147483647) and the one-line
message that explains it (an empty or absent message clears it). Exit 3 when
the unit is not loaded.
"
        }
        "ready" => {
            "\
Usage: liveness ready [-u UNIT] [-r DIR]

Marks the unit ready for traffic ('liveness probe --ready' passes once the
error code is 0). Exit 3 when the unit is not loaded.
"
        }
        "not-ready" => {
            "\
Usage: liveness not-ready [-u UNIT] [-r DIR]

Marks the unit not ready for traffic. Exit 3 when the unit is not loaded.
"
        }
        "beat" => {
            "\
Usage: liveness beat [--deadline SECONDS] [-u UNIT] [-r DIR]

Records a heartbeat. --deadline declares (or changes) how long the next beat
may take (whole seconds: 90, 1m30s); without it the deadline already declared
is kept (exit 2 when there is none). Exit 3 when the unit is not loaded.
"
        }
        "reset" => {
            "\
Usage: liveness reset [-u UNIT] [-r DIR]

Removes the unit's state: ready, error, heartbeat, message, then pid and start
time (unless a live supervisor holds the unit, which owns those). Succeeds when
there is nothing to remove.
"
        }
        "status" => {
            "\
Usage: liveness status [-r DIR] [--json]

Shows every unit under the run directory: verdict, pid, whether the owner is
alive, error, readiness, heartbeat age and message (or the failure reason).
"
        }
        "run" => {
            "\
Usage: liveness run [options] [--] CMD [ARGS...]

Claims the unit, starts CMD with LIVENESS_UNIT_NAME and LIVENESS_RUNDIR set
(the child and its tools report into the unit; they do not own it), forwards
every signal as tini does (all but CHLD, TTIN, TTOU and the fault signals,
real-time ones included), reaps every zombie, writes the tombstone
<rundir>/<unit>/tombstone, and exits with the child's status.

  -u, --unit UNIT          (or $LIVENESS_UNIT_NAME, $KUBEXIT_NAME, host name)
  -r, --rundir DIR         (or $LIVENESS_RUNDIR, $KUBEXIT_GRAVEYARD/.liveness,
                           /run); under kubexit's variables the tombstone is
                           also written as kubexit's $KUBEXIT_GRAVEYARD/UNIT
  --ready-on-start         mark the unit ready (error 0) once CMD runs
                           ($LIVENESS_READY_ON_START=1)
  --grace DURATION         TERM to SIGKILL (default 30s; $KUBEXIT_GRACE_PERIOD)
  --process-group          run CMD in its own process group; signal the group
  --birth-deps A,B         start CMD once these units are ready ($KUBEXIT_BIRTH_DEPS)
  --birth-timeout DURATION (default 30s; $KUBEXIT_BIRTH_TIMEOUT)
  --death-deps A,B         stop CMD when one of these has a tombstone or its
                           owner is gone ($KUBEXIT_DEATH_DEPS)
  --termination-log PATH   summary on exit (default /dev/termination-log when
                           it exists and is writable)
  --exit-code-map FROM=TO  remap the child's status (repeatable), e.g. 143=0

Durations: 30, 30s, 1m30s, 1.5s, 500ms, 2h. A second TERM does not shorten
the grace; a second INT kills at once.

Exit: the child's code; 128+N when signal N killed it; 127 CMD not found;
126 CMD not executable; 123 unit owned by another live process; 124 birth
dependencies not ready in time; 125 liveness run itself failed (usage, I/O).
"
        }
        "terminate" => {
            "\
Usage: liveness terminate [-u UNIT] [-r DIR] [--signal TERM] [--timeout 30s] [--no-wait]

Sends the signal to the unit's owner after verifying it is the process that
claimed the unit (pid and start time, through a pidfd: a reused pid is never
signalled), then waits until it has exited and the unit is released. Under
'liveness run' the owner is the child; the supervisor then writes the
tombstone and exits. For Kubernetes preStop hooks. Acts only on state that
no untrusted user could have written (owned by this uid, root or the owner's
own uid; not writable by others; one link).

Exit: 0 exited (or signalled, with --no-wait), 3 no state, 4 owner gone or
pid reused (nothing signalled), 7 corrupt or untrusted state (nothing
signalled), 8 timed out, 2 usage, 11 system error.
"
        }
        "wait" => {
            "\
Usage: liveness wait (--ready | --gone | --tombstone) UNIT... [-r DIR] [--timeout 30s]

Blocks until every unit is ready ('probe --ready' passes), gone (no live
owner), or has a tombstone with a death; inotify, plus a check every second.
State another user could have written (not owned by this uid or root,
writable by others, more than one link) never counts.

Exit: 0 when all are, 4 at once when an owner cannot be verified from here
(--gone: another PID namespace and no lock held), 8 on timeout (one line
names the units still waiting, and why).
"
        }
        "serve" => {
            "\
Usage: liveness serve [-l|--listen ADDR] [-u UNIT]... [-r DIR] [--request-timeout MS]

Answers HTTP health checks until killed. GET or HEAD:
  /health/live     200 or 503, the same verdict and line as 'liveness probe'
  /health/ready    as 'probe --ready'
  /health/startup  as 'probe --startup'
  /health          JSON of every unit under the run directory (200 when the
                   served units are live, else 503)
With several --unit, an endpoint passes when every unit passes; the body has
one line per unit. --listen defaults to 127.0.0.1:$LIVENESS_HTTP_PORT, else
127.0.0.1:8081; Kubernetes httpGet probes need 0.0.0.0:PORT. A slow client
delays no one; each request must arrive whole, within 8 KiB, before
--request-timeout (milliseconds, or 2s; default 2000 ms). Prints
'listening on http://ADDR'.
"
        }
        _ => HELP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::COMMANDS;

    /// Every command the parser knows has its own help, and the overview
    /// names it.
    #[test]
    fn every_command_has_help() {
        for c in COMMANDS {
            assert!(
                command_help(c).starts_with(&format!("Usage: liveness {c} ")),
                "{c}"
            );
            assert!(HELP.contains(&format!("\n  {c} ")), "{c} in --help");
        }
        assert_eq!(command_help("nonsense"), HELP);
    }
}
