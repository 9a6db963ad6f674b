//! `liveness`: the command-line face of the library. `main` → `run` →
//! library; one error line `liveness: <what>: <why>`; exit codes from
//! [`exit_code::ExitCode`].

#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
// The entry point is the C `main` in `os`, not std's runtime start-up.
#![cfg_attr(not(test), no_main)]

mod cli;
mod deadline;
mod exit_code;
mod help;
// The binary's own system calls, its C `main` among them: the only module
// that may use `unsafe`.
#[allow(unsafe_code)]
mod os;

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::process::Command as Process;
use std::time::Duration;

use cli::{Command, Target, Usage};
use exit_code::ExitCode;
use liveness::{ErrorKind, Health, Probe, Progress, Unit};

/// A failure of the command itself (not a probe verdict).
enum Failure {
    Usage(Usage),
    Lib(liveness::Error),
    /// `liveness run` failed itself: exit 123 to 125.
    Run(Box<Failure>),
    /// The output could not be written to stdout (its reader has gone).
    Output(std::io::Error),
}

impl From<liveness::Error> for Failure {
    fn from(e: liveness::Error) -> Failure {
        Failure::Lib(e)
    }
}

impl From<Usage> for Failure {
    fn from(u: Usage) -> Failure {
        Failure::Usage(u)
    }
}

impl Failure {
    fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::Usage,
            Failure::Lib(e) => e.kind().into(),
            Failure::Run(f) => match &**f {
                Failure::Lib(e) => ExitCode::of_run_failure(e.kind()),
                _ => ExitCode::RunFailed,
            },
            Failure::Output(_) => ExitCode::Io,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(u) => write!(f, "usage: {u} (see 'liveness --help')"),
            Failure::Lib(e) => e.fmt(f),
            Failure::Run(inner) => inner.fmt(f),
            Failure::Output(e) => write!(f, "stdout: {}", liveness::text::error_text(e)),
        }
    }
}

/// Under `cargo test` the test harness owns `main`.
#[cfg(test)]
fn main() {
    let _ = start(std::env::args_os().collect());
}

/// Runs the command line `args` (program name first) and returns the exit
/// code: what the C `main` (`os::main`) calls.
fn start(args: Vec<OsString>) -> u8 {
    init_logging();
    let code = match run(args.into_iter().skip(1)) {
        Ok(code) => code,
        Err(failure) => {
            deadline::last_line(&format!("liveness: {failure}\n"));
            failure.exit_code()
        }
    };
    // What std's runtime does at exit: anything but a partial line has
    // been written already.
    let _ = std::io::stdout().flush();
    code.code()
}

/// Writes `text` to stdout and flushes it: bulk output, which waits for its
/// reader.
fn out(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(Failure::Output)
}

fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<ExitCode, Failure> {
    let command = match cli::parse(args) {
        Ok(c) => c,
        Err(u) if u.command == Some("run") => return Err(Failure::Run(Box::new(u.into()))),
        Err(u) => return Err(u.into()),
    };
    match command {
        Command::Run(r) => supervise(r).map_err(|f| Failure::Run(Box::new(f))),
        Command::Terminate {
            target,
            signal,
            timeout,
            wait,
        } => {
            let unit = unit(&target)?;
            if wait {
                deadline::arm(
                    timeout.saturating_add(deadline::BACKSTOP),
                    format!(
                        "liveness: unit {}: terminate timed out after {}: the state could not be read in time\n",
                        unit.name(),
                        liveness::text::duration_text(timeout)
                    ),
                );
            }
            liveness::terminate(&unit, signal, wait.then_some(timeout))?;
            Ok(ExitCode::Ok)
        }
        Command::Wait {
            rundir,
            what,
            units,
            timeout,
        } => {
            let units = units
                .iter()
                .map(|u| Unit::resolve(Some(u), rundir.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            deadline::arm(
                timeout.saturating_add(deadline::BACKSTOP),
                format!(
                    "liveness: wait: timed out after {}: the state could not be read in time\n",
                    liveness::text::duration_text(timeout)
                ),
            );
            let left = liveness::wait_progress(&units, what, timeout);
            if left.is_empty() {
                return Ok(ExitCode::Ok);
            }
            // An owner that cannot be verified from here never becomes
            // "gone": say so at once, with the reason, instead of timing out.
            let unverifiable: Vec<String> = left
                .iter()
                .filter(|(_, p)| matches!(p, Progress::Unverifiable(_)))
                .map(|(u, p)| format!("unit {u}: {}", p.reason().unwrap_or_default()))
                .collect();
            if !unverifiable.is_empty() {
                deadline::last_line(&format!("liveness: wait: {}\n", unverifiable.join(", ")));
                return Ok(ExitCode::OwnerGone);
            }
            let list = left
                .iter()
                .map(|(u, p)| format!("{u} ({})", p.reason().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ");
            deadline::last_line(&format!(
                "liveness: wait: timed out after {}: still waiting for {list}\n",
                liveness::text::duration_text(timeout)
            ));
            Ok(ExitCode::Timeout)
        }
        Command::Help(topic) => {
            out(topic.map_or(help::HELP, help::command_help))?;
            Ok(ExitCode::Ok)
        }
        Command::Version => {
            out(&format!("liveness {}\n", env!("CARGO_PKG_VERSION")))?;
            Ok(ExitCode::Ok)
        }
        Command::Probe {
            target,
            mode,
            max_age,
            timeout,
            json,
            verbose,
        } => {
            let unit = unit(&target)?;
            deadline::arm(
                timeout,
                format!(
                    "liveness: unit {}: probe timed out after {} ms\n",
                    unit.name(),
                    timeout.as_millis()
                ),
            );
            #[cfg(debug_assertions)]
            test_stall();
            let mut probe = Probe::new(mode);
            if let Some(max_age) = max_age {
                probe = probe.max_age(max_age);
            }
            let report = probe.check(&unit);
            // The verdict is the exit code: a reader that went away cannot
            // change it.
            if json {
                let _ = out(&format!("{}\n", report.to_json()));
            }
            if verbose || !report.verdict.is_ok() {
                deadline::last_line(&format!("liveness: {report}\n"));
            }
            Ok(report.verdict.into())
        }
        Command::Load {
            target,
            pid,
            checks,
            heartbeat,
        } => {
            let owner = pid.unwrap_or_else(std::os::unix::process::parent_id);
            let mut builder = builder(&target).owner(owner);
            for cmd in checks {
                builder = builder.check(&cmd.clone(), move || run_check(&cmd));
            }
            if let Some(deadline) = heartbeat {
                builder = builder.heartbeat(deadline);
            }
            builder.build()?.load()?;
            Ok(ExitCode::Ok)
        }
        Command::Set {
            target,
            code,
            message,
        } => {
            let h = open(&target)?;
            match message {
                Some(m) => h.set_with_message(code, &m)?,
                None => h.set(code)?,
            }
            Ok(ExitCode::Ok)
        }
        Command::Ready(target) => {
            open(&target)?.ready()?;
            Ok(ExitCode::Ok)
        }
        Command::NotReady(target) => {
            open(&target)?.not_ready()?;
            Ok(ExitCode::Ok)
        }
        Command::Beat { target, deadline } => {
            let h = open(&target)?;
            match deadline {
                Some(d) => h.set_heartbeat(d)?,
                None => h.beat()?,
            }
            Ok(ExitCode::Ok)
        }
        Command::Reset(target) => {
            let h = builder(&target).build()?;
            match h.open() {
                Ok(()) => h.reset()?,
                Err(e) if e.kind() == ErrorKind::NotLoaded => {}
                Err(e) => return Err(e.into()),
            }
            Ok(ExitCode::Ok)
        }
        Command::Status { rundir, json } => {
            let rundir = match rundir {
                Some(d) => d,
                None => Unit::resolve(Some("status"), None)?.rundir().to_path_buf(),
            };
            let reports = liveness::status::scan_parallel(&rundir)?;
            if json {
                out(&format!("{}\n", liveness::status::json(&reports)))?;
            } else {
                out(&liveness::status::table(&reports))?;
            }
            Ok(ExitCode::Ok)
        }
        Command::Serve {
            listen,
            units,
            rundir,
            request_timeout,
        } => serve(listen, units, rundir, request_timeout),
    }
}

/// `liveness run`: flags, then `LIVENESS_*` and kubexit's environment
/// variables, then defaults. The unit (and its kubexit graveyard) is
/// resolved as for every command.
fn supervise(r: cli::Run) -> Result<ExitCode, Failure> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let unit = self::unit(&r.target)?;
    let ready_on_start = r.ready_on_start
        || match env("LIVENESS_READY_ON_START").as_deref() {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(v) => {
                return Err(Failure::Usage(Usage {
                    command: Some("run"),
                    message: format!("$LIVENESS_READY_ON_START: {v:?} is not 1, true, 0 or false"),
                }));
            }
        };
    let env_duration = |name: &str| -> Result<Option<Duration>, Failure> {
        env(name)
            .map(|v| cli::duration(&format!("${name}"), &v))
            .transpose()
            .map_err(Failure::from)
    };
    let deps = |flag: Option<Vec<String>>, name: &str| -> Result<Vec<Unit>, Failure> {
        let names =
            flag.unwrap_or_else(|| env(name).map(|v| cli::unit_list(&v)).unwrap_or_default());
        Ok(names
            .iter()
            .map(|n| unit.sibling(n.clone()))
            .collect::<Result<Vec<_>, _>>()?)
    };
    let grace = match r.grace {
        Some(g) => Some(g),
        None => env_duration("KUBEXIT_GRACE_PERIOD")?,
    };
    let birth_timeout = match r.birth_timeout {
        Some(t) => t,
        None => env_duration("KUBEXIT_BIRTH_TIMEOUT")?.unwrap_or(cli::DEFAULT_WAIT),
    };
    let birth = deps(r.birth_deps, "KUBEXIT_BIRTH_DEPS")?;
    let death = deps(r.death_deps, "KUBEXIT_DEATH_DEPS")?;
    let mut s = liveness::Supervisor::new(unit.clone(), r.argv)
        .ready_on_start(ready_on_start)
        .process_group(r.process_group)
        .birth_deps(birth, birth_timeout)
        .death_deps(death);
    if let Some(g) = grace {
        s = s.grace(g);
    }
    for (from, to) in r.exit_code_map {
        s = s.exit_code_map(from, to);
    }
    let default_log = std::path::Path::new("/dev/termination-log");
    match r.termination_log {
        Some(p) => s = s.termination_log(p),
        None if default_log.exists()
            && nix::unistd::access(default_log, nix::unistd::AccessFlags::W_OK).is_ok() =>
        {
            s = s.termination_log(default_log);
        }
        None => {}
    }
    let outcome = s.run()?;
    if let Some(why) = &outcome.exec_error {
        deadline::last_line(&format!("liveness: run: {why}\n"));
    }
    Ok(ExitCode::Child(outcome.exit_code))
}

#[cfg(feature = "http")]
fn serve(
    listen: Option<String>,
    units: Vec<String>,
    rundir: Option<std::path::PathBuf>,
    request_timeout: Option<Duration>,
) -> Result<ExitCode, Failure> {
    let mut builder = liveness::Server::builder();
    if units.is_empty() {
        builder = builder.unit(Unit::resolve(None, rundir.as_deref())?);
    }
    for u in &units {
        builder = builder.unit(Unit::resolve(Some(u), rundir.as_deref())?);
    }
    if let Some(l) = listen {
        builder = builder.listen(l);
    }
    if let Some(t) = request_timeout {
        builder = builder.request_timeout(t);
    }
    let server = builder.start()?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{}", server.local_addr());
    let _ = out.flush();
    drop(out);
    server.wait()?;
    Ok(ExitCode::Ok)
}

#[cfg(not(feature = "http"))]
fn serve(
    _: Option<String>,
    _: Vec<String>,
    _: Option<std::path::PathBuf>,
    _: Option<Duration>,
) -> Result<ExitCode, Failure> {
    Err(Failure::Usage(Usage {
        command: Some("serve"),
        message: "this liveness was built without the http feature".into(),
    }))
}

fn unit(target: &Target) -> Result<Unit, Failure> {
    Ok(Unit::resolve(
        target.unit.as_deref(),
        target.rundir.as_deref(),
    )?)
}

fn builder(target: &Target) -> liveness::Builder {
    let mut b = Health::builder();
    if let Some(u) = &target.unit {
        b = b.unit(u.clone());
    }
    if let Some(d) = &target.rundir {
        b = b.rundir(d.clone());
    }
    b
}

/// A handle on a unit another process loaded.
fn open(target: &Target) -> Result<Health, Failure> {
    let h = builder(target).build()?;
    h.open()?;
    Ok(h)
}

/// A `load --check` command: `sh -c CMD`, output passed through.
fn run_check(cmd: &str) -> liveness::CheckResult {
    let status = Process::new("sh").arg("-c").arg(cmd).status()?;
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    Err(match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}").into(),
        (None, Some(sig)) => format!("killed by signal {sig}").into(),
        _ => "failed".into(),
    })
}

/// Test seam, compiled into debug builds only: `LIVENESS_TEST_STALL_MS`
/// makes the probe hang before reading state, so the tests can watch the
/// deadline fire. Release binaries have no such variable.
#[cfg(debug_assertions)]
fn test_stall() {
    if let Some(ms) = std::env::var("LIVENESS_TEST_STALL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// `LIVENESS_LOG=error|warn|info|debug` sends the library's log to stderr.
fn init_logging() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            // Never waits for the reader: a supervisor must not stop
            // forwarding signals or reaping because its log is not read.
            deadline::say(&format!(
                "liveness: {}: {}\n",
                record.level().as_str().to_lowercase(),
                record.args()
            ));
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    let Some(level) = std::env::var_os("LIVENESS_LOG") else {
        return;
    };
    let level = match level.to_str() {
        Some("error") => log::LevelFilter::Error,
        Some("warn") => log::LevelFilter::Warn,
        Some("info") => log::LevelFilter::Info,
        Some("debug" | "trace") => log::LevelFilter::Debug,
        _ => return,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
