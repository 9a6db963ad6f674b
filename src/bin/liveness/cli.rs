//! Command-line parsing: argv in, a [`Command`] or a one-line usage error
//! out.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::prelude::*;
use liveness::text::{self, YEAR};
use liveness::{Awaited, Mode};

/// Options every unit command accepts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Target {
    pub unit: Option<String>,
    pub rundir: Option<PathBuf>,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Probe {
        target: Target,
        mode: Mode,
        max_age: Option<Duration>,
        timeout: Duration,
        json: bool,
        verbose: bool,
    },
    Load {
        target: Target,
        pid: Option<u32>,
        checks: Vec<String>,
        heartbeat: Option<Duration>,
    },
    Set {
        target: Target,
        code: u32,
        message: Option<String>,
    },
    Ready(Target),
    NotReady(Target),
    Beat {
        target: Target,
        deadline: Option<Duration>,
    },
    Reset(Target),
    Status {
        rundir: Option<PathBuf>,
        json: bool,
    },
    Run(Run),
    Terminate {
        target: Target,
        signal: i32,
        timeout: Duration,
        wait: bool,
    },
    Wait {
        rundir: Option<PathBuf>,
        what: Awaited,
        units: Vec<String>,
        timeout: Duration,
    },
    Serve {
        listen: Option<String>,
        units: Vec<String>,
        rundir: Option<PathBuf>,
        request_timeout: Option<Duration>,
    },
    Help(Option<&'static str>),
    Version,
}

/// `liveness run`'s options. `None` means "not on the command line": the
/// kubexit environment variables may supply it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Run {
    pub target: Target,
    pub ready_on_start: bool,
    pub grace: Option<Duration>,
    pub process_group: bool,
    pub birth_deps: Option<Vec<String>>,
    pub birth_timeout: Option<Duration>,
    pub death_deps: Option<Vec<String>>,
    pub termination_log: Option<PathBuf>,
    pub exit_code_map: Vec<(u8, u8)>,
    pub argv: Vec<OsString>,
}

/// A usage error: one line, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(pub String);

impl From<lexopt::Error> for Usage {
    fn from(e: lexopt::Error) -> Usage {
        Usage(e.to_string())
    }
}

/// Default `probe --timeout`: under the kubelet's default 1 s
/// `timeoutSeconds`, so the probe answers before it is killed.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(800);
const MAX_PROBE_TIMEOUT_MS: u64 = 600_000;

pub const COMMANDS: &[&str] = &[
    "probe",
    "load",
    "set",
    "ready",
    "not-ready",
    "beat",
    "reset",
    "status",
    "run",
    "terminate",
    "wait",
    "serve",
];

/// Default `terminate --timeout` and `wait --timeout`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Parses `args` (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, Usage> {
    let mut p = lexopt::Parser::from_args(args);
    let name = match p.next()? {
        None | Some(Short('h') | Long("help")) => return Ok(Command::Help(None)),
        Some(Short('V') | Long("version")) => return Ok(Command::Version),
        Some(Value(v)) => v.string()?,
        Some(arg) => return Err(arg.unexpected().into()),
    };
    let Some(&name) = COMMANDS.iter().find(|c| **c == name) else {
        if name == "help" {
            let topic = p.next()?.map(|a| match a {
                Value(v) => v.string().map_err(Usage::from),
                other => Err(Usage::from(other.unexpected())),
            });
            return match topic.transpose()? {
                None => Ok(Command::Help(None)),
                Some(t) => match COMMANDS.iter().find(|c| **c == t) {
                    Some(c) => Ok(Command::Help(Some(c))),
                    None => Err(Usage(format!("no such command: {t:?}"))),
                },
            };
        }
        return Err(Usage(format!(
            "no such command: {name:?} (commands: {})",
            COMMANDS.join(", ")
        )));
    };
    let ctx = |u: Usage| Usage(format!("{name}: {}", u.0));
    match name {
        "run" => run(&mut p).map_err(ctx),
        "terminate" => terminate(&mut p).map_err(ctx),
        "wait" => wait(&mut p).map_err(ctx),
        _ => command(name, &mut p).map_err(ctx),
    }
}

fn run(p: &mut lexopt::Parser) -> Result<Command, Usage> {
    let mut r = Run::default();
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some("run"))),
            Short('u') | Long("unit") => r.target.unit = Some(p.value()?.string()?),
            Short('r') | Long("rundir") => r.target.rundir = Some(p.value()?.into()),
            Long("ready-on-start") => r.ready_on_start = true,
            Long("process-group") => r.process_group = true,
            Long("grace") => r.grace = Some(duration("--grace", &p.value()?.string()?)?),
            Long("birth-timeout") => {
                r.birth_timeout = Some(duration("--birth-timeout", &p.value()?.string()?)?);
            }
            Long("birth-deps") => r
                .birth_deps
                .get_or_insert_with(Vec::new)
                .extend(unit_list(&p.value()?.string()?)),
            Long("death-deps") => r
                .death_deps
                .get_or_insert_with(Vec::new)
                .extend(unit_list(&p.value()?.string()?)),
            Long("termination-log") => r.termination_log = Some(p.value()?.into()),
            Long("exit-code-map") => r.exit_code_map.push(code_map(&p.value()?.string()?)?),
            Value(program) => {
                r.argv.push(program);
                r.argv.extend(p.raw_args()?);
            }
            arg => return Err(arg.unexpected().into()),
        }
    }
    if r.argv.is_empty() {
        return Err(Usage(
            "missing command (liveness run [options] -- CMD [ARGS...])".into(),
        ));
    }
    Ok(Command::Run(r))
}

fn terminate(p: &mut lexopt::Parser) -> Result<Command, Usage> {
    let mut target = Target::default();
    let mut signal = nix::libc::SIGTERM;
    let mut timeout = DEFAULT_WAIT;
    let mut wait = true;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some("terminate"))),
            Short('u') | Long("unit") => target.unit = Some(p.value()?.string()?),
            Short('r') | Long("rundir") => target.rundir = Some(p.value()?.into()),
            Short('s') | Long("signal") => {
                let v = p.value()?.string()?;
                signal = parse_signal(&v).ok_or_else(|| {
                    Usage(format!("--signal: {v:?} is not a signal name or number"))
                })?;
            }
            Long("timeout") => timeout = duration("--timeout", &p.value()?.string()?)?,
            Long("no-wait") => wait = false,
            arg => return Err(arg.unexpected().into()),
        }
    }
    Ok(Command::Terminate {
        target,
        signal,
        timeout,
        wait,
    })
}

fn wait(p: &mut lexopt::Parser) -> Result<Command, Usage> {
    let mut rundir = None;
    let mut what = None;
    let mut units = Vec::new();
    let mut timeout = DEFAULT_WAIT;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some("wait"))),
            Short('r') | Long("rundir") => rundir = Some(p.value()?.into()),
            Long(w @ ("ready" | "gone" | "tombstone")) => {
                let w = match w {
                    "ready" => Awaited::Ready,
                    "gone" => Awaited::Gone,
                    _ => Awaited::Tombstone,
                };
                if what.is_some_and(|old| old != w) {
                    return Err(Usage(
                        "--ready, --gone and --tombstone exclude each other".into(),
                    ));
                }
                what = Some(w);
            }
            Long("timeout") => timeout = duration("--timeout", &p.value()?.string()?)?,
            Value(v) => units.push(v.string()?),
            arg => return Err(arg.unexpected().into()),
        }
    }
    let what =
        what.ok_or_else(|| Usage("one of --ready, --gone, --tombstone is required".into()))?;
    if units.is_empty() {
        return Err(Usage("missing unit names".into()));
    }
    Ok(Command::Wait {
        rundir,
        what,
        units,
        timeout,
    })
}

/// `a,b, c` → `["a", "b", "c"]` (empty items dropped).
pub fn unit_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `143=0`.
fn code_map(v: &str) -> Result<(u8, u8), Usage> {
    let bad = || {
        Usage(format!(
            "--exit-code-map: {v:?} is not FROM=TO with codes 0 to 255"
        ))
    };
    let (from, to) = v.split_once('=').ok_or_else(bad)?;
    let from = number("--exit-code-map", from, 0, 255).map_err(|_| bad())?;
    let to = number("--exit-code-map", to, 0, 255).map_err(|_| bad())?;
    Ok((from as u8, to as u8))
}

/// `TERM`, `SIGTERM`, `term` or `15`.
fn parse_signal(v: &str) -> Option<i32> {
    use nix::sys::signal::Signal;
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<i32>()
            .ok()
            .and_then(|n| Signal::try_from(n).ok())
            .map(|s| s as i32);
    }
    let upper = v.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().ok().map(|s| s as i32)
}

/// A Go-style duration (`30s`, `1m30s`, `500ms`, `2h`), or whole seconds
/// (`30`): what kubexit's `KUBEXIT_*` variables hold ([`text::duration`]).
pub fn duration(what: &str, v: &str) -> Result<Duration, Usage> {
    text::duration(v).ok_or_else(|| {
        Usage(format!(
            "{what}: {v:?} is not a duration (30, 30s, 1m30s, 500ms, 2h)"
        ))
    })
}

fn command(name: &'static str, p: &mut lexopt::Parser) -> Result<Command, Usage> {
    let mut target = Target::default();
    let mut json = false;
    let mut verbose = false;
    let mut mode = None;
    let mut max_age = None;
    let mut timeout = DEFAULT_PROBE_TIMEOUT;
    let mut pid = None;
    let mut checks = Vec::new();
    let mut heartbeat = None;
    let mut deadline = None;
    let mut message = None;
    let mut code = None;
    let mut units = Vec::new();
    let mut listen = None;
    let mut request_timeout = None;

    while let Some(arg) = p.next()? {
        match (name, arg) {
            (_, Short('h') | Long("help")) => return Ok(Command::Help(Some(name))),
            ("serve", Short('u') | Long("unit")) => units.push(p.value()?.string()?),
            ("serve", Short('l') | Long("listen")) => listen = Some(p.value()?.string()?),
            ("serve", Long("request-timeout")) => {
                let v = p.value()?.string()?;
                let ms = number("--request-timeout", &v, 1, MAX_PROBE_TIMEOUT_MS)?;
                request_timeout = Some(Duration::from_millis(ms));
            }
            (n, Short('u') | Long("unit")) if n != "status" => {
                target.unit = Some(p.value()?.string()?);
            }
            (_, Short('r') | Long("rundir")) => target.rundir = Some(p.value()?.into()),
            ("probe" | "status", Long("json")) => json = true,
            ("probe", Short('v') | Long("verbose")) => verbose = true,
            ("probe", Long(m @ ("ready" | "startup" | "live"))) => {
                let m = match m {
                    "ready" => Mode::Ready,
                    "startup" => Mode::Startup,
                    _ => Mode::Live,
                };
                if mode.is_some_and(|old| old != m) {
                    return Err(Usage(
                        "--live, --ready and --startup exclude each other".into(),
                    ));
                }
                mode = Some(m);
            }
            ("probe", Long("max-age")) => {
                max_age = Some(seconds("--max-age", &p.value()?.string()?)?);
            }
            ("probe", Long("timeout")) => {
                let v = p.value()?.string()?;
                let ms = number("--timeout", &v, 1, MAX_PROBE_TIMEOUT_MS)?;
                timeout = Duration::from_millis(ms);
            }
            ("load", Long("pid")) => {
                let v = p.value()?.string()?;
                pid = Some(number("--pid", &v, 1, i32::MAX as u64)? as u32);
            }
            ("load", Long("check")) => checks.push(p.value()?.string()?),
            ("load", Long("heartbeat")) => {
                heartbeat = Some(seconds("--heartbeat", &p.value()?.string()?)?);
            }
            ("beat", Long("deadline")) => {
                deadline = Some(seconds("--deadline", &p.value()?.string()?)?);
            }
            ("set", Short('m') | Long("message")) => message = Some(p.value()?.string()?),
            ("set", Value(v)) if code.is_none() => {
                let v = v.string()?;
                code = Some(number("error code", &v, 0, i32::MAX as u64)? as u32);
            }
            ("set", Short(c)) if c.is_ascii_digit() => {
                return Err(Usage(
                    "error code: must be a decimal number from 0 to 2147483647".into(),
                ));
            }
            (_, arg) => return Err(arg.unexpected().into()),
        }
    }

    Ok(match name {
        "probe" => Command::Probe {
            target,
            mode: mode.unwrap_or_default(),
            max_age,
            timeout,
            json,
            verbose,
        },
        "load" => Command::Load {
            target,
            pid,
            checks,
            heartbeat,
        },
        "set" => Command::Set {
            target,
            code: code.ok_or_else(|| Usage("missing error code (0 = healthy)".into()))?,
            message,
        },
        "ready" => Command::Ready(target),
        "not-ready" => Command::NotReady(target),
        "beat" => Command::Beat { target, deadline },
        "reset" => Command::Reset(target),
        "status" => Command::Status {
            rundir: target.rundir,
            json,
        },
        "serve" => Command::Serve {
            listen,
            units,
            rundir: target.rundir,
            request_timeout,
        },
        _ => unreachable!("{name} is in COMMANDS"),
    })
}

/// A canonical decimal number in `min..=max` ([`text::number`]).
fn number(what: &str, v: &str, min: u64, max: u64) -> Result<u64, Usage> {
    text::number(v, min, max)
        .ok_or_else(|| Usage(format!("{what}: {v:?} is not a number from {min} to {max}")))
}

/// Whole seconds, 1 to a year.
fn seconds(what: &str, v: &str) -> Result<Duration, Usage> {
    number(what, v, 1, YEAR.as_secs()).map(Duration::from_secs)
}

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
often than that, or probes report the unit stale.
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
may take; without it the deadline already declared is kept (exit 2 when there
is none). Exit 3 when the unit is not loaded.
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

Durations: 30, 30s, 1m30s, 500ms, 2h. A second TERM does not shorten the
grace; a second INT kills at once.

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
--request-timeout (default 2000 ms). Prints 'listening on http://ADDR'.
"
        }
        _ => HELP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Command, Usage> {
        parse(args.iter().map(OsString::from))
    }

    /// The probe's flags, as the issue names them, parse into a probe.
    #[test]
    fn probe_flags() {
        let c = parse_str(&[
            "probe",
            "--unit",
            "w",
            "--rundir",
            "/r",
            "--ready",
            "--max-age",
            "30",
            "--timeout",
            "500",
            "--json",
        ])
        .unwrap();
        assert_eq!(
            c,
            Command::Probe {
                target: Target {
                    unit: Some("w".into()),
                    rundir: Some("/r".into())
                },
                mode: Mode::Ready,
                max_age: Some(Duration::from_secs(30)),
                timeout: Duration::from_millis(500),
                json: true,
                verbose: false,
            }
        );
        let c = parse_str(&["probe", "-u", "w", "-r", "/r", "--startup"]).unwrap();
        assert!(
            matches!(c, Command::Probe { mode: Mode::Startup, timeout, .. } if timeout == DEFAULT_PROBE_TIMEOUT)
        );
    }

    /// Bad values are usage errors that say what is wrong.
    #[test]
    fn usage_errors_say_what() {
        for (args, needle) in [
            (&["probe", "--timeout", "0"][..], "--timeout"),
            (&["probe", "--max-age", "-1"], "--max-age"),
            (&["probe", "--ready", "--startup"], "exclude"),
            (&["probe", "--bogus"], "--bogus"),
            (&["set"], "missing error code"),
            (&["set", "-5"], "error code"),
            (&["set", "abc"], "error code"),
            (&["set", "2147483648"], "error code"),
            (&["set", "1", "2"], "2"),
            (&["frobnicate"], "no such command"),
            (&["load", "--pid", "x"], "--pid"),
            (&["beat", "--deadline", "0"], "--deadline"),
            (&["status", "--unit", "x"], "--unit"),
            (&["serve", "--request-timeout", "0"], "--request-timeout"),
            (&["serve", "--listen"], "--listen"),
        ] {
            let e = parse_str(args).unwrap_err();
            assert!(e.0.contains(needle), "{args:?}: {}", e.0);
            assert!(!e.0.contains('\n'), "one line: {:?}", e.0);
        }
    }

    /// Shell-job commands parse their arguments.
    #[test]
    fn shell_job_commands() {
        assert_eq!(
            parse_str(&["set", "3", "--message", "db down"]).unwrap(),
            Command::Set {
                target: Target::default(),
                code: 3,
                message: Some("db down".into())
            }
        );
        assert_eq!(
            parse_str(&[
                "load",
                "--pid",
                "12",
                "--check",
                "true",
                "--check",
                "test -d /"
            ])
            .unwrap(),
            Command::Load {
                target: Target::default(),
                pid: Some(12),
                checks: vec!["true".into(), "test -d /".into()],
                heartbeat: None
            }
        );
        assert_eq!(
            parse_str(&["beat", "--deadline", "30"]).unwrap(),
            Command::Beat {
                target: Target::default(),
                deadline: Some(Duration::from_secs(30))
            }
        );
        assert_eq!(
            parse_str(&["not-ready"]).unwrap(),
            Command::NotReady(Target::default())
        );
    }

    /// `run` takes its options before the command and everything after it
    /// (even option-like words) as the command.
    #[test]
    fn run_parses_options_then_command() {
        let c = parse_str(&[
            "run",
            "-u",
            "side",
            "--grace",
            "1m30s",
            "--birth-deps",
            "a, b",
            "--birth-deps",
            "c",
            "--death-deps",
            "main",
            "--exit-code-map",
            "143=0",
            "--ready-on-start",
            "--process-group",
            "--",
            "prog",
            "--grace",
            "x",
        ])
        .unwrap();
        let Command::Run(r) = c else { panic!("{c:?}") };
        assert_eq!(r.target.unit.as_deref(), Some("side"));
        assert_eq!(r.grace, Some(Duration::from_secs(90)));
        assert_eq!(r.birth_deps, Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(r.death_deps, Some(vec!["main".into()]));
        assert_eq!(r.exit_code_map, vec![(143, 0)]);
        assert!(r.ready_on_start && r.process_group);
        assert_eq!(r.argv, ["prog", "--grace", "x"]);
        // Without `--`, the first word that is not an option starts the command.
        let Command::Run(r) = parse_str(&["run", "sh", "-c", "exit 1"]).unwrap() else {
            panic!()
        };
        assert_eq!(r.argv, ["sh", "-c", "exit 1"]);
        for bad in [
            &["run"][..],
            &["run", "--exit-code-map", "256=0", "--", "x"],
            &["run", "--exit-code-map", "1:0", "--", "x"],
            &["terminate", "--signal", "NOPE"],
            &["wait", "a"],
            &["wait", "--ready"],
            &["wait", "--ready", "--gone", "a"],
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?}");
        }
    }

    /// A duration that does not parse is a usage error naming the flag.
    #[test]
    fn durations() {
        assert_eq!(duration("--grace", "1m30s"), Ok(Duration::from_secs(90)));
        let e = duration("--grace", "soon").unwrap_err();
        assert!(
            e.0.starts_with("--grace: \"soon\" is not a duration"),
            "{}",
            e.0
        );
    }

    /// Signals by name, with or without SIG, any case, or by number.
    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("TERM"), Some(15));
        assert_eq!(parse_signal("sigkill"), Some(9));
        assert_eq!(parse_signal("10"), Some(10));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("BOGUS"), None);
        let Command::Terminate { signal, wait, .. } =
            parse_str(&["terminate", "-s", "USR1", "--no-wait"]).unwrap()
        else {
            panic!()
        };
        assert_eq!((signal, wait), (10, false));
    }

    /// `serve` takes several units, a listen address and a request timeout.
    #[test]
    fn serve_flags() {
        assert_eq!(
            parse_str(&[
                "serve",
                "--listen",
                "0.0.0.0:9000",
                "-u",
                "a",
                "--unit",
                "b",
                "-r",
                "/r",
                "--request-timeout",
                "500"
            ])
            .unwrap(),
            Command::Serve {
                listen: Some("0.0.0.0:9000".into()),
                units: vec!["a".into(), "b".into()],
                rundir: Some("/r".into()),
                request_timeout: Some(Duration::from_millis(500)),
            }
        );
    }

    /// Help and version never fail.
    #[test]
    fn help_and_version() {
        assert_eq!(parse_str(&[]).unwrap(), Command::Help(None));
        assert_eq!(parse_str(&["--help"]).unwrap(), Command::Help(None));
        assert_eq!(parse_str(&["-V"]).unwrap(), Command::Version);
        assert_eq!(
            parse_str(&["help", "probe"]).unwrap(),
            Command::Help(Some("probe"))
        );
        assert_eq!(
            parse_str(&["set", "--help"]).unwrap(),
            Command::Help(Some("set"))
        );
        for c in COMMANDS {
            assert!(command_help(c).starts_with("Usage: liveness "), "{c}");
        }
    }
}
