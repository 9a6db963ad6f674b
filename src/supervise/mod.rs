//! `liveness run`: a supervisor that owns a unit on behalf of a child.
//!
//! Here: the builder ([`Supervisor`]), how a run ended ([`Outcome`]) and
//! what is written about it afterwards (the termination log). The run
//! itself — the claim, the gate, the loop — is `run.rs`; the loop's stop
//! policy, a state machine, is `stop.rs`.

mod run;
mod stop;

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::state::unit::Unit;
use crate::vocab::text;

/// Default `--grace`: what Kubernetes gives a pod after SIGTERM.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// Default `--birth-timeout`.
const DEFAULT_BIRTH_TIMEOUT: Duration = Duration::from_secs(30);
/// The termination message Kubernetes reads is capped at 4096 bytes.
const TERMINATION_LOG_MAX: usize = 4096;

/// Runs a command as the supervised owner of a unit (`liveness run`).
///
/// # Examples
///
/// ```
/// use liveness::{Supervisor, Unit};
///
/// let dir = tempfile::tempdir()?;
/// let unit = Unit::new("job", dir.path())?;
/// let outcome = Supervisor::new(unit.clone(), ["sh", "-c", "exit 3"])
///     .exit_code_map(3, 0)
///     .run()?;
/// assert_eq!(outcome.child_code, 3);
/// assert_eq!(outcome.exit_code, 0);
/// let tombstone = liveness::Tombstone::read(&unit)?.expect("written");
/// assert_eq!(tombstone.exit_code, Some(3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Supervisor {
    unit: Unit,
    argv: Vec<OsString>,
    ready_on_start: bool,
    grace: Duration,
    process_group: bool,
    birth_deps: Vec<Unit>,
    birth_timeout: Duration,
    death_deps: Vec<Unit>,
    termination_log: Option<PathBuf>,
    exit_code_map: Vec<(u8, u8)>,
}

/// How a supervised run ended.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let unit = liveness::Unit::new("j", dir.path())?;
/// let out = liveness::Supervisor::new(unit, ["/nonexistent/cmd"]).run()?;
/// assert_eq!(out.exit_code, 127);
/// assert!(out.exec_error.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// The status to exit with: [`child_code`](Outcome::child_code) after
    /// the exit-code map.
    pub exit_code: u8,
    /// The child's exit code; 128 + N when signal N killed it; 127 when the
    /// command was not found, 126 when it could not be executed; 128 + N
    /// when signal N stopped the supervisor before the child started.
    pub child_code: u8,
    /// The signal that killed the child (or stopped the supervisor before
    /// the child started).
    pub signal: Option<i32>,
    /// Why the command could not be started (exit 126 or 127).
    pub exec_error: Option<String>,
    /// Why the supervisor stopped the child, if it did: a signal name, or
    /// the death dependency that died.
    pub stopped_by: Option<String>,
    /// Whether the supervisor killed the child with SIGKILL (grace expired,
    /// or a second SIGINT).
    pub killed: bool,
    /// Other processes reaped: orphans re-parented to the supervisor.
    pub orphans_reaped: u64,
    /// From the start of the child (or of the supervisor, when the child
    /// never started) to its end.
    pub duration: Duration,
}

impl Supervisor {
    /// A supervisor for `unit` that will run `argv` (program, then
    /// arguments; the program is searched in `PATH`).
    ///
    /// # Examples
    ///
    /// ```
    /// let unit = liveness::Unit::new("job", "/tmp")?;
    /// let s = liveness::Supervisor::new(unit, ["true"]);
    /// # let _ = s;
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn new<I, S>(unit: Unit, argv: I) -> Supervisor
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Supervisor {
            unit,
            argv: argv.into_iter().map(Into::into).collect(),
            ready_on_start: false,
            grace: DEFAULT_GRACE,
            process_group: false,
            birth_deps: Vec::new(),
            birth_timeout: DEFAULT_BIRTH_TIMEOUT,
            death_deps: Vec::new(),
            termination_log: None,
            exit_code_map: Vec::new(),
        }
    }

    /// Marks the unit ready (and error 0) as soon as the child runs, for
    /// programs that never report.
    ///
    /// # Examples
    ///
    /// ```
    /// # let unit = liveness::Unit::new("job", "/tmp")?;
    /// let s = liveness::Supervisor::new(unit, ["true"]).ready_on_start(true);
    /// # let _ = s;
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn ready_on_start(mut self, yes: bool) -> Supervisor {
        self.ready_on_start = yes;
        self
    }

    /// How long the child has, after the stop signal, before SIGKILL.
    /// Default 30 s.
    ///
    /// # Examples
    ///
    /// ```
    /// # let unit = liveness::Unit::new("job", "/tmp")?;
    /// let s = liveness::Supervisor::new(unit, ["true"]).grace(std::time::Duration::from_secs(5));
    /// # let _ = s;
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn grace(mut self, grace: Duration) -> Supervisor {
        self.grace = grace;
        self
    }

    /// Starts the child in its own process group and sends every signal
    /// (and the final SIGKILL) to the whole group.
    ///
    /// # Examples
    ///
    /// ```
    /// # let unit = liveness::Unit::new("job", "/tmp")?;
    /// let s = liveness::Supervisor::new(unit, ["true"]).process_group(true);
    /// # let _ = s;
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn process_group(mut self, yes: bool) -> Supervisor {
        self.process_group = yes;
        self
    }

    /// Units that must be ready (`probe --ready` passes) before the child is
    /// started, and how long to wait for them (default 30 s).
    ///
    /// # Examples
    ///
    /// ```
    /// # let unit = liveness::Unit::new("job", "/tmp")?;
    /// let db = liveness::Unit::new("db", "/tmp")?;
    /// let s = liveness::Supervisor::new(unit, ["true"])
    ///     .birth_deps(vec![db], std::time::Duration::from_secs(60));
    /// # let _ = s;
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn birth_deps(mut self, units: Vec<Unit>, timeout: Duration) -> Supervisor {
        self.birth_deps = units;
        self.birth_timeout = timeout;
        self
    }

    /// Units whose death (a tombstone with `Died`, or an owner gone) stops
    /// the child gracefully. A tombstone already there counts.
    ///
    /// # Examples
    ///
    /// ```
    /// # let unit = liveness::Unit::new("sidecar", "/tmp")?;
    /// let main = liveness::Unit::new("main", "/tmp")?;
    /// let s = liveness::Supervisor::new(unit, ["true"]).death_deps(vec![main]);
    /// # let _ = s;
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn death_deps(mut self, units: Vec<Unit>) -> Supervisor {
        self.death_deps = units;
        self
    }

    /// Writes a one-paragraph summary (at most 4096 bytes) to `path` on
    /// exit, for Kubernetes' `terminationMessagePath`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let unit = liveness::Unit::new("job", "/tmp")?;
    /// let s = liveness::Supervisor::new(unit, ["true"]).termination_log("/dev/termination-log");
    /// # let _ = s;
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn termination_log(mut self, path: impl Into<PathBuf>) -> Supervisor {
        self.termination_log = Some(path.into());
        self
    }

    /// Maps the child's exit status `from` to `to` (e.g. 143 → 0 for a
    /// sidecar whose SIGTERM exit would fail a Job). The first matching
    /// entry applies.
    ///
    /// # Examples
    ///
    /// ```
    /// # let unit = liveness::Unit::new("job", "/tmp")?;
    /// let s = liveness::Supervisor::new(unit, ["true"]).exit_code_map(143, 0);
    /// # let _ = s;
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn exit_code_map(mut self, from: u8, to: u8) -> Supervisor {
        self.exit_code_map.push((from, to));
        self
    }

    /// Claims the unit, waits for the birth dependencies, runs the child
    /// until it ends, writes the tombstone, clears the unit's state (the
    /// tombstone stays) and returns how it ended.
    ///
    /// Signals, as tini handles them: every signal but the synchronous
    /// fault signals (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT), SIGTTIN and
    /// SIGTTOU is blocked in the calling thread and read from a `signalfd`;
    /// each is forwarded to the child (its process group with
    /// [`process_group`](Supervisor::process_group)), SIGCHLD excepted,
    /// real-time signals included. SIGTTIN and SIGTTOU are ignored. The
    /// child gets the mask and the SIGTTIN/SIGTTOU dispositions as they
    /// were when `run` was called, and SIGPIPE's as it was when the process
    /// started. All of this stays in place when `run` returns: call it from
    /// the main thread before starting any other thread, so no other thread
    /// receives the signals. Makes the process a child subreaper.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::InvalidInput`]: no command.
    /// - [`ErrorKind::Busy`]: another live process owns the unit.
    /// - [`ErrorKind::Timeout`]: a birth dependency was not ready in time;
    ///   the child was never started.
    /// - [`ErrorKind::Io`] (and others): the supervisor itself failed to set
    ///   up (signals, state files, fork).
    ///
    /// [`ErrorKind::InvalidInput`]: crate::ErrorKind::InvalidInput
    /// [`ErrorKind::Busy`]: crate::ErrorKind::Busy
    /// [`ErrorKind::Timeout`]: crate::ErrorKind::Timeout
    /// [`ErrorKind::Io`]: crate::ErrorKind::Io
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let unit = liveness::Unit::new("j", dir.path())?;
    /// let out = liveness::Supervisor::new(unit, ["sh", "-c", "kill -USR1 $$"]).run()?;
    /// assert_eq!((out.child_code, out.signal), (138, Some(10)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run(self) -> Result<Outcome> {
        let started = Instant::now();
        let result = run::run(&self, started);
        if let Some(path) = &self.termination_log {
            let text = match &result {
                Ok((outcome, last)) => self.summary(outcome, last.as_deref()),
                Err(e) => format!("unit {}: liveness run failed: {e}", self.unit.name()),
            };
            if let Err(e) = write_termination_log(path, &text) {
                log::warn!("termination log {}: {e}", path.display());
            }
        }
        result.map(|(o, _)| o)
    }

    fn map_code(&self, code: u8) -> u8 {
        self.exit_code_map
            .iter()
            .find(|(from, _)| *from == code)
            .map_or(code, |(_, to)| *to)
    }

    /// The termination message: one paragraph.
    fn summary(&self, o: &Outcome, last: Option<&str>) -> String {
        let cmd = self
            .argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let mut s = format!("unit {}: {cmd}: ", self.unit.name());
        match (&o.exec_error, o.signal) {
            (Some(e), _) => s.push_str(&format!("could not be started: {e}")),
            (None, Some(n)) => s.push_str(&format!("killed by {}", text::signal_name(n))),
            (None, None) => s.push_str(&format!("exited with code {}", o.child_code)),
        }
        s.push_str(&format!(
            " (exit status {}) after {:.3} s",
            o.exit_code,
            o.duration.as_secs_f64()
        ));
        if let Some(by) = &o.stopped_by {
            s.push_str(&format!("; stopped by the supervisor ({by})"));
        }
        if let Some(last) = last {
            s.push_str("; last ");
            s.push_str(last);
        }
        s.push('.');
        s
    }
}

/// Writes `text` (cut at 4096 bytes, on a character boundary) to `path`.
pub(crate) fn write_termination_log(path: &std::path::Path, text: &str) -> io::Result<()> {
    let mut end = text.len().min(TERMINATION_LOG_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::fs::write(path, &text.as_bytes()[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The termination log is cut at 4096 bytes without splitting a
    /// character.
    #[test]
    fn termination_log_is_truncated_on_a_char_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let text = format!("{}é{}", "a".repeat(4095), "b".repeat(100));
        write_termination_log(&p, &text).unwrap();
        let got = std::fs::read(&p).unwrap();
        assert_eq!(got.len(), 4095);
        assert!(std::str::from_utf8(&got).is_ok());
        write_termination_log(&p, "short").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"short");
    }

    /// The map applies to the first matching entry only; others pass.
    #[test]
    fn exit_code_map_applies() {
        let unit = Unit::new("u", "/tmp").unwrap();
        let s = Supervisor::new(unit, ["true"])
            .exit_code_map(143, 0)
            .exit_code_map(143, 1);
        assert_eq!(s.map_code(143), 0);
        assert_eq!(s.map_code(1), 1);
    }
}
