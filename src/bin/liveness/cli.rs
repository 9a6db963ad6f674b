//! Command-line parsing: argv in, a [`Command`] or a one-line usage error
//! out. One function per command; the words of every value (numbers,
//! durations) are the library's (`liveness::text`). The help texts are
//! `help.rs`.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::Parser;
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

/// A usage error: one line, and the command it is about (`None` before a
/// command was named). `liveness run` exits 125 on one, every other
/// command 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub command: Option<&'static str>,
    pub message: String,
}

impl Usage {
    fn new(message: impl Into<String>) -> Usage {
        Usage {
            command: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.command {
            Some(c) => write!(f, "{c}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl From<lexopt::Error> for Usage {
    fn from(e: lexopt::Error) -> Usage {
        Usage::new(e.to_string())
    }
}

/// Default `probe --timeout`: under the kubelet's default 1 s
/// `timeoutSeconds`, so the probe answers before it is killed.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(800);
const MAX_PROBE_TIMEOUT_MS: u64 = 600_000;

/// Every command, in the order `--help` lists them.
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
    let mut p = Parser::from_args(args);
    let name = match p.next()? {
        None | Some(Short('h') | Long("help")) => return Ok(Command::Help(None)),
        Some(Short('V') | Long("version")) => return Ok(Command::Version),
        Some(Value(v)) => v.string()?,
        Some(arg) => return Err(arg.unexpected().into()),
    };
    if name == "help" {
        return help(&mut p);
    }
    let Some(&name) = COMMANDS.iter().find(|c| **c == name) else {
        return Err(Usage::new(format!(
            "no such command: {name:?} (commands: {})",
            COMMANDS.join(", ")
        )));
    };
    let parsed = match name {
        "probe" => probe(&mut p),
        "load" => load(&mut p),
        "set" => set(&mut p),
        "ready" => target_only(name, &mut p, Command::Ready),
        "not-ready" => target_only(name, &mut p, Command::NotReady),
        "reset" => target_only(name, &mut p, Command::Reset),
        "beat" => beat(&mut p),
        "status" => status(&mut p),
        "run" => run(&mut p),
        "terminate" => terminate(&mut p),
        "wait" => wait(&mut p),
        _ => serve(&mut p),
    };
    parsed.map_err(|u| Usage {
        command: Some(name),
        ..u
    })
}

/// `liveness help [COMMAND]`.
fn help(p: &mut Parser) -> Result<Command, Usage> {
    let topic = match p.next()? {
        None => return Ok(Command::Help(None)),
        Some(Value(v)) => v.string()?,
        Some(other) => return Err(other.unexpected().into()),
    };
    match COMMANDS.iter().find(|c| **c == topic) {
        Some(c) => Ok(Command::Help(Some(c))),
        None => Err(Usage::new(format!("no such command: {topic:?}"))),
    }
}

fn probe(p: &mut Parser) -> Result<Command, Usage> {
    let mut target = Target::default();
    let mut mode = None;
    let mut max_age = None;
    let mut timeout = DEFAULT_PROBE_TIMEOUT;
    let (mut json, mut verbose) = (false, false);
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some("probe"))),
            Short('u') | Long("unit") => target.unit = Some(p.value()?.string()?),
            Short('r') | Long("rundir") => target.rundir = Some(p.value()?.into()),
            Long("json") => json = true,
            Short('v') | Long("verbose") => verbose = true,
            Long(m @ ("ready" | "startup" | "live")) => {
                let m = match m {
                    "ready" => Mode::Ready,
                    "startup" => Mode::Startup,
                    _ => Mode::Live,
                };
                if mode.is_some_and(|old| old != m) {
                    return Err(Usage::new(
                        "--live, --ready and --startup exclude each other",
                    ));
                }
                mode = Some(m);
            }
            Long("max-age") => max_age = Some(age("--max-age", &p.value()?.string()?)?),
            Long("timeout") => timeout = millis("--timeout", &p.value()?.string()?)?,
            arg => return Err(arg.unexpected().into()),
        }
    }
    Ok(Command::Probe {
        target,
        mode: mode.unwrap_or_default(),
        max_age,
        timeout,
        json,
        verbose,
    })
}

fn load(p: &mut Parser) -> Result<Command, Usage> {
    let mut target = Target::default();
    let mut pid = None;
    let mut checks = Vec::new();
    let mut heartbeat = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some("load"))),
            Short('u') | Long("unit") => target.unit = Some(p.value()?.string()?),
            Short('r') | Long("rundir") => target.rundir = Some(p.value()?.into()),
            Long("pid") => {
                let v = p.value()?.string()?;
                pid = Some(number("--pid", &v, 1, i32::MAX as u64)? as u32);
            }
            Long("check") => checks.push(p.value()?.string()?),
            Long("heartbeat") => {
                heartbeat = Some(whole_seconds("--heartbeat", &p.value()?.string()?)?);
            }
            arg => return Err(arg.unexpected().into()),
        }
    }
    Ok(Command::Load {
        target,
        pid,
        checks,
        heartbeat,
    })
}

fn set(p: &mut Parser) -> Result<Command, Usage> {
    let mut target = Target::default();
    let mut code = None;
    let mut message = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some("set"))),
            Short('u') | Long("unit") => target.unit = Some(p.value()?.string()?),
            Short('r') | Long("rundir") => target.rundir = Some(p.value()?.into()),
            Short('m') | Long("message") => message = Some(p.value()?.string()?),
            Value(v) if code.is_none() => {
                let v = v.string()?;
                code = Some(number("error code", &v, 0, i32::MAX as u64)? as u32);
            }
            // `set -5`: a negative code reads as an option.
            Short(c) if c.is_ascii_digit() => {
                return Err(Usage::new(
                    "error code: must be a decimal number from 0 to 2147483647",
                ));
            }
            arg => return Err(arg.unexpected().into()),
        }
    }
    Ok(Command::Set {
        target,
        code: code.ok_or_else(|| Usage::new("missing error code (0 = healthy)"))?,
        message,
    })
}

/// `ready`, `not-ready` and `reset`: the unit, nothing else; `command`
/// makes the command of the target.
fn target_only(
    name: &'static str,
    p: &mut Parser,
    command: fn(Target) -> Command,
) -> Result<Command, Usage> {
    let mut target = Target::default();
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some(name))),
            Short('u') | Long("unit") => target.unit = Some(p.value()?.string()?),
            Short('r') | Long("rundir") => target.rundir = Some(p.value()?.into()),
            arg => return Err(arg.unexpected().into()),
        }
    }
    Ok(command(target))
}

fn beat(p: &mut Parser) -> Result<Command, Usage> {
    let mut target = Target::default();
    let mut deadline = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some("beat"))),
            Short('u') | Long("unit") => target.unit = Some(p.value()?.string()?),
            Short('r') | Long("rundir") => target.rundir = Some(p.value()?.into()),
            Long("deadline") => {
                deadline = Some(whole_seconds("--deadline", &p.value()?.string()?)?);
            }
            arg => return Err(arg.unexpected().into()),
        }
    }
    Ok(Command::Beat { target, deadline })
}

fn status(p: &mut Parser) -> Result<Command, Usage> {
    let mut rundir = None;
    let mut json = false;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some("status"))),
            Short('r') | Long("rundir") => rundir = Some(p.value()?.into()),
            Long("json") => json = true,
            arg => return Err(arg.unexpected().into()),
        }
    }
    Ok(Command::Status { rundir, json })
}

fn run(p: &mut Parser) -> Result<Command, Usage> {
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
        return Err(Usage::new(
            "missing command (liveness run [options] -- CMD [ARGS...])",
        ));
    }
    Ok(Command::Run(r))
}

fn terminate(p: &mut Parser) -> Result<Command, Usage> {
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
                    Usage::new(format!("--signal: {v:?} is not a signal name or number"))
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

fn wait(p: &mut Parser) -> Result<Command, Usage> {
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
                    return Err(Usage::new(
                        "--ready, --gone and --tombstone exclude each other",
                    ));
                }
                what = Some(w);
            }
            Long("timeout") => timeout = duration("--timeout", &p.value()?.string()?)?,
            Value(v) => units.push(v.string()?),
            arg => return Err(arg.unexpected().into()),
        }
    }
    let what = what.ok_or_else(|| Usage::new("one of --ready, --gone, --tombstone is required"))?;
    if units.is_empty() {
        return Err(Usage::new("missing unit names"));
    }
    Ok(Command::Wait {
        rundir,
        what,
        units,
        timeout,
    })
}

fn serve(p: &mut Parser) -> Result<Command, Usage> {
    let mut rundir = None;
    let mut units = Vec::new();
    let mut listen = None;
    let mut request_timeout = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some("serve"))),
            Short('u') | Long("unit") => units.push(p.value()?.string()?),
            Short('r') | Long("rundir") => rundir = Some(p.value()?.into()),
            Short('l') | Long("listen") => listen = Some(p.value()?.string()?),
            Long("request-timeout") => {
                let v = p.value()?.string()?;
                request_timeout = Some(millis("--request-timeout", &v)?);
            }
            arg => return Err(arg.unexpected().into()),
        }
    }
    Ok(Command::Serve {
        listen,
        units,
        rundir,
        request_timeout,
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
        Usage::new(format!(
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

/// A canonical decimal number in `min..=max` ([`text::number`]).
fn number(what: &str, v: &str, min: u64, max: u64) -> Result<u64, Usage> {
    text::number(v, min, max)
        .ok_or_else(|| Usage::new(format!("{what}: {v:?} is not a number from {min} to {max}")))
}

/// The unit of a bare number in a duration option.
#[derive(Clone, Copy)]
enum Bare {
    Seconds,
    Millis,
}

/// A duration option or variable ([`text::duration`]): a bare number
/// counts in `bare` units, as the option always took it (and is refused in
/// the same words), or Go's form (`1.5s`, `1m30s`, `500ms`); from `min` to
/// `max`.
fn duration_in(
    what: &str,
    v: &str,
    bare: Bare,
    min: Duration,
    max: Duration,
) -> Result<Duration, Usage> {
    let (unit, forms) = match bare {
        Bare::Seconds => (Duration::from_secs(1), "30, 30s, 1m30s, 1.5s, 500ms, 2h"),
        Bare::Millis => (Duration::from_millis(1), "800, 800ms, 1.5s"),
    };
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let per = |d: Duration| u64::try_from(d.as_nanos() / unit.as_nanos()).unwrap_or(u64::MAX);
        let n = number(what, v, per(min), per(max))?;
        return Ok(match bare {
            Bare::Seconds => Duration::from_secs(n),
            Bare::Millis => Duration::from_millis(n),
        });
    }
    let d = text::duration(v, unit)
        .ok_or_else(|| Usage::new(format!("{what}: {v:?} is not a duration ({forms})")))?;
    if !(min..=max).contains(&d) {
        return Err(Usage::new(format!(
            "{what}: {v:?} is not a duration from {} to {}",
            text::duration_text(min),
            text::duration_text(max)
        )));
    }
    Ok(d)
}

/// A duration of `liveness run`, `terminate` or `wait`, or of kubexit's
/// `KUBEXIT_*` variables: seconds, or Go's form; up to a year.
pub fn duration(what: &str, v: &str) -> Result<Duration, Usage> {
    duration_in(what, v, Bare::Seconds, Duration::ZERO, YEAR)
}

/// A heartbeat's age limit: seconds, or Go's form; 1 s to a year.
fn age(what: &str, v: &str) -> Result<Duration, Usage> {
    duration_in(what, v, Bare::Seconds, Duration::from_secs(1), YEAR)
}

/// A heartbeat deadline: whole seconds (the state file holds seconds),
/// bare or in Go's form (`90`, `1m30s`); 1 s to a year.
fn whole_seconds(what: &str, v: &str) -> Result<Duration, Usage> {
    let d = age(what, v)?;
    if d.subsec_nanos() != 0 {
        return Err(Usage::new(format!(
            "{what}: {v:?} is not a whole number of seconds"
        )));
    }
    Ok(d)
}

/// The probe's and the server's timeouts: milliseconds, or Go's form; 1 ms
/// to 600 s.
fn millis(what: &str, v: &str) -> Result<Duration, Usage> {
    let max = Duration::from_millis(MAX_PROBE_TIMEOUT_MS);
    duration_in(what, v, Bare::Millis, Duration::from_millis(1), max)
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
            (&["set", "1", "2"], "unexpected argument \"2\""),
            (&["frobnicate"], "no such command"),
            (&["load", "--pid", "x"], "--pid"),
            (&["beat", "--deadline", "0"], "--deadline"),
            (&["status", "--unit", "x"], "--unit"),
            (&["serve", "--request-timeout", "0"], "--request-timeout"),
            (&["serve", "--listen"], "--listen"),
        ] {
            let e = parse_str(args).unwrap_err().to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e:?}");
        }
    }

    /// A usage error names its command: `main` tells `run`'s (exit 125)
    /// from the others' (exit 2) by it, not by the words of the message.
    #[test]
    fn usage_errors_carry_their_command() {
        let command = |args: &[&str]| parse_str(args).unwrap_err().command;
        assert_eq!(command(&["run", "--grace", "soon", "--", "x"]), Some("run"));
        assert_eq!(command(&["run"]), Some("run"));
        assert_eq!(command(&["probe", "--bogus"]), Some("probe"));
        assert_eq!(command(&["frobnicate"]), None);
        assert_eq!(command(&["help", "run: x"]), None);
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

    /// Every duration option takes Go's forms; a bare number keeps the
    /// unit, range and words the option always had; a bad value is a
    /// usage error naming the option.
    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        let probe = |args: &[&str]| {
            let mut argv = vec!["probe"];
            argv.extend(args);
            parse_str(&argv)
        };
        let timeout = |v: &str| match probe(&["--timeout", v]) {
            Ok(Command::Probe { timeout, .. }) => Ok(timeout),
            other => Err(other.unwrap_err().to_string()),
        };
        assert_eq!(timeout("500"), Ok(ms(500)), "bare: milliseconds");
        assert_eq!(timeout("1.5s"), Ok(ms(1500)));
        assert_eq!(
            timeout("0"),
            Err("probe: --timeout: \"0\" is not a number from 1 to 600000".into())
        );
        assert_eq!(
            timeout("11m"),
            Err("probe: --timeout: \"11m\" is not a duration from 0.001 s to 600 s".into())
        );
        assert!(matches!(
            probe(&["--max-age", "1m30s"]),
            Ok(Command::Probe { max_age: Some(d), .. }) if d == ms(90_000)
        ));
        assert!(matches!(
            parse_str(&["beat", "--deadline", "2m"]),
            Ok(Command::Beat { deadline: Some(d), .. }) if d == ms(120_000)
        ));
        let e = parse_str(&["load", "--heartbeat", "1500ms"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "load: --heartbeat: \"1500ms\" is not a whole number of seconds"
        );
        assert!(matches!(
            parse_str(&["serve", "--request-timeout", "2s"]),
            Ok(Command::Serve { request_timeout: Some(d), .. }) if d == ms(2000)
        ));
        assert_eq!(duration("--grace", "1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("--grace", "0.5s"), Ok(ms(500)));
        let e = duration("--grace", "soon").unwrap_err();
        assert_eq!(
            e.message,
            "--grace: \"soon\" is not a duration (30, 30s, 1m30s, 1.5s, 500ms, 2h)"
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
    }
}
