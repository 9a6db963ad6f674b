//! Judging a unit: the verdict behind `liveness probe`, `health.sh`,
//! `liveness status` and the HTTP endpoints.

pub(crate) mod json;
pub mod status;

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use crate::os;
use crate::state::format::{self, Corruption};
use crate::state::read::{self, Bad, Liveness, LockKnown, OpenUnit};
use crate::state::tombstone;
use crate::state::unit::Unit;
use crate::vocab::text;

/// Which question a probe answers, as Kubernetes asks them.
///
/// | mode      | passes when |
/// |-----------|-------------|
/// | `Live`    | the owner runs, its heartbeat (if any) is fresh, and it reported error 0 |
/// | `Ready`   | as `Live`, and the `ready` file is present |
/// | `Startup` | the owner runs, its heartbeat (if any) is fresh, and it has reported *any* error code: it has finished starting; whether it is healthy is `Live`'s question |
///
/// No mode passes a unit whose supervised child has ended
/// ([`Verdict::Exited`]).
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::Mode::default(), liveness::Mode::Live);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Liveness: alive, not hung, healthy.
    #[default]
    Live,
    /// Readiness: live and ready for traffic.
    Ready,
    /// Startup: alive, not hung, and past start-up.
    Startup,
}

impl Mode {
    /// `live`, `ready` or `startup`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Mode::Ready.as_str(), "ready");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Ready => "ready",
            Mode::Startup => "startup",
        }
    }
}

/// The outcome of a probe. Each verdict has its own exit code, shared by
/// `liveness probe` and `scripts/health.sh`.
///
/// # Examples
///
/// ```
/// use liveness::Verdict;
/// assert_eq!(Verdict::Ok.exit_code(), 0);
/// assert_eq!(Verdict::OwnerGone.exit_code(), 4);
/// assert_eq!(Verdict::Corrupt.as_str(), "corrupt state");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// 0: the unit passes.
    Ok,
    /// 1: the owner reported a non-zero error code.
    Unhealthy,
    /// 3: the unit was never loaded, or was reset.
    NoState,
    /// 4: the owner is not running, its pid was reused, or its lock is free.
    OwnerGone,
    /// 4: nothing can prove the owner alive from here: it lives in another
    /// PID namespace (or `/proc` cannot be read) and holds no lock. A unit
    /// registered with `liveness load --pid` is judged by `/proc` only, so
    /// only from its owner's PID namespace.
    Unverifiable,
    /// 5: the heartbeat is older than its deadline (the owner hangs).
    Stale,
    /// 6: loaded, but no error code reported yet.
    Starting,
    /// 6: live, but not ready for traffic.
    NotReady,
    /// 7: a state file cannot be trusted (unparsable, symlink, not a regular
    /// file, unreadable).
    Corrupt,
    /// 12: no owner, and the tombstone says the supervised child has ended
    /// (`liveness run`): how and when.
    Exited,
}

impl Verdict {
    /// The probe's exit code for this verdict.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Verdict::Stale.exit_code(), 5);
    /// ```
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::Unhealthy => 1,
            Verdict::NoState => 3,
            Verdict::OwnerGone | Verdict::Unverifiable => 4,
            Verdict::Stale => 5,
            Verdict::Starting | Verdict::NotReady => 6,
            Verdict::Corrupt => 7,
            Verdict::Exited => 12,
        }
    }

    /// Whether this verdict passes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(liveness::Verdict::Ok.is_ok());
    /// assert!(!liveness::Verdict::Starting.is_ok());
    /// ```
    pub fn is_ok(self) -> bool {
        self == Verdict::Ok
    }

    /// The words the one-line reason starts with.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Verdict::Stale.as_str(), "heartbeat stale");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Unhealthy => "unhealthy",
            Verdict::NoState => "no state",
            Verdict::OwnerGone => "owner gone",
            Verdict::Unverifiable => "owner unverifiable",
            Verdict::Stale => "heartbeat stale",
            Verdict::Starting => "starting",
            Verdict::NotReady => "not ready",
            Verdict::Corrupt => "corrupt state",
            Verdict::Exited => "exited",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a probe learned about a unit, and its verdict.
///
/// `Display` is the one line the probe prints on failure, without the
/// `liveness: ` prefix: `unit worker: unhealthy: error 3: database unreachable`.
///
/// # Examples
///
/// ```
/// let unit = liveness::Unit::new("never-loaded", std::env::temp_dir())?;
/// let report = liveness::Probe::new(liveness::Mode::Live).check(&unit);
/// assert_eq!(report.verdict, liveness::Verdict::NoState);
/// assert!(report.to_string().starts_with("unit never-loaded: no state: "));
/// # Ok::<(), liveness::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The unit's name.
    pub unit: String,
    /// The question that was asked.
    pub mode: Mode,
    /// The answer.
    pub verdict: Verdict,
    /// Why, after the verdict's own words (`error 3: database unreachable`).
    pub reason: String,
    /// The recorded owner pid, when the `pid` file was readable.
    pub pid: Option<u32>,
    /// The reported error code, when read.
    pub error: Option<u32>,
    /// The message that goes with a non-zero error code.
    pub message: Option<String>,
    /// Whether the `ready` file is present (`None` when not looked at).
    pub ready: Option<bool>,
    /// Age of the last heartbeat, when there is one.
    pub heartbeat_age: Option<Duration>,
    /// The deadline the writer declared for its heartbeat.
    pub heartbeat_deadline: Option<Duration>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unit {}: {}", self.unit, self.verdict)?;
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

impl Report {
    fn new(unit: &Unit, mode: Mode) -> Report {
        Report {
            unit: unit.name().to_owned(),
            mode,
            verdict: Verdict::Ok,
            reason: String::new(),
            pid: None,
            error: None,
            message: None,
            ready: None,
            heartbeat_age: None,
            heartbeat_deadline: None,
        }
    }

    fn failed(mut self, (verdict, reason): Fail) -> Report {
        self.verdict = verdict;
        self.reason = reason;
        self
    }

    /// The report as one JSON object (no trailing newline).
    ///
    /// # Examples
    ///
    /// ```
    /// let unit = liveness::Unit::new("none", std::env::temp_dir())?;
    /// let json = liveness::Probe::new(liveness::Mode::Live).check(&unit).to_json();
    /// assert!(json.starts_with(r#"{"unit":"none","mode":"live","verdict":"no state","code":3,"#));
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        let mut o = crate::probe::json::Object::new();
        o.str("unit", &self.unit)
            .str("mode", self.mode.as_str())
            .str("verdict", self.verdict.as_str())
            .num("code", u64::from(self.verdict.exit_code()))
            .str("reason", &self.reason)
            .opt_num("pid", self.pid.map(u64::from))
            .opt_num("error", self.error.map(u64::from))
            .opt_str("message", self.message.as_deref())
            .opt_bool("ready", self.ready)
            .opt_num(
                "heartbeat_age_ms",
                self.heartbeat_age.map(|d| d.as_millis() as u64),
            )
            .opt_num(
                "heartbeat_deadline_s",
                self.heartbeat_deadline.map(|d| d.as_secs()),
            );
        o.finish()
    }
}

/// A probe: which question, and an optional cap on the heartbeat's age.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use liveness::{Mode, Probe, Unit};
///
/// let report = Probe::new(Mode::Ready)
///     .max_age(Duration::from_secs(30))
///     .check(&Unit::from_env()?);
/// if !report.verdict.is_ok() {
///     eprintln!("liveness: {report}");
///     std::process::exit(report.verdict.exit_code().into());
/// }
/// # Ok::<(), liveness::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Probe {
    mode: Mode,
    max_age: Option<Duration>,
}

/// How far in the future a beat stamp may lie before it is called corrupt.
const FUTURE_SLACK_MS: u64 = 1000;

impl Probe {
    /// A probe asking `mode`'s question.
    ///
    /// # Examples
    ///
    /// ```
    /// let probe = liveness::Probe::new(liveness::Mode::Startup);
    /// # let _ = probe;
    /// ```
    pub fn new(mode: Mode) -> Probe {
        Probe {
            mode,
            max_age: None,
        }
    }

    /// Require a heartbeat no older than `max_age`, in place of the deadline
    /// the writer declared. A unit without a heartbeat then fails as stale.
    ///
    /// # Examples
    ///
    /// ```
    /// let probe = liveness::Probe::new(liveness::Mode::Live)
    ///     .max_age(std::time::Duration::from_secs(10));
    /// # let _ = probe;
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> Probe {
        self.max_age = Some(max_age);
        self
    }

    /// Judges `unit`. Never fails: every problem is a verdict.
    ///
    /// Checks run in this order, and the first failure is the verdict:
    /// unit directory and `pid` (3, 7) → owner (4) → heartbeat (5) →
    /// `error` (6 while starting, 1 when non-zero) → `ready` (6). Any file
    /// that is a symlink, not a regular file, or unparsable gives 7.
    ///
    /// # Examples
    ///
    /// ```
    /// let unit = liveness::Unit::new("nothing-here", std::env::temp_dir())?;
    /// let report = liveness::Probe::default().check(&unit);
    /// assert_eq!(report.verdict.exit_code(), 3);
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn check(&self, unit: &Unit) -> Report {
        match read::open_unit(unit) {
            OpenUnit::Dir(fd) => self.check_at(unit, fd.as_fd()),
            OpenUnit::Missing => {
                let reason = format!("no unit directory {}", unit.dir().display());
                Report::new(unit, self.mode).failed((Verdict::NoState, reason))
            }
            OpenUnit::Bad(why) => Report::new(unit, self.mode)
                .failed((Verdict::Corrupt, format!("unit directory: {why}"))),
        }
    }

    /// Judges `unit` through `dir`, its directory already open (and, for a
    /// waiter or a dependency, already found trusted).
    pub(crate) fn check_at(&self, unit: &Unit, dir: BorrowedFd<'_>) -> Report {
        let mut report = Report::new(unit, self.mode);
        match self.judge(dir, &mut report) {
            Ok(()) => report,
            Err(fail) => report.failed(fail),
        }
    }

    fn judge(&self, dir: BorrowedFd<'_>, r: &mut Report) -> Result<(), Fail> {
        let Some((owner, alive)) = read::judged_owner(dir, LockKnown::Unknown).map_err(corrupt)?
        else {
            // No owner: a supervised child that has ended says how.
            let ending = tombstone::read_at(dir)
                .map_err(corrupt)?
                .and_then(|t| t.ending());
            return Err(match ending {
                Some(how) => (Verdict::Exited, how),
                None => (Verdict::NoState, "not loaded (no pid file)".to_owned()),
            });
        };
        r.pid = Some(owner.pid);
        match alive {
            Liveness::Alive => {}
            Liveness::Gone(why) => return Err((Verdict::OwnerGone, why)),
            Liveness::Unverifiable(why) => return Err((Verdict::Unverifiable, why)),
        }

        self.heartbeat(dir, r)?;

        r.ready = if self.mode == Mode::Ready {
            Some(false)
        } else {
            read::marker(dir, format::READY).ok()
        };
        let error = read::read_parsed(dir, format::ERROR, format::parse_error)
            .map_err(corrupt)?
            .ok_or((Verdict::Starting, "no error code reported yet".to_owned()))?;
        r.error = Some(error);
        if self.mode == Mode::Startup {
            return Ok(());
        }
        if error != 0 {
            r.message = read::message(dir).map_err(corrupt)?;
            let reason = match &r.message {
                Some(m) => format!("error {error}: {m}"),
                None => format!("error {error}"),
            };
            return Err((Verdict::Unhealthy, reason));
        }
        if self.mode == Mode::Ready {
            if !read::marker(dir, format::READY).map_err(corrupt)? {
                return Err((Verdict::NotReady, String::new()));
            }
            r.ready = Some(true);
        }
        Ok(())
    }

    fn heartbeat(&self, dir: BorrowedFd<'_>, r: &mut Report) -> Result<(), Fail> {
        let hb =
            read::read_parsed(dir, format::HEARTBEAT, format::parse_heartbeat).map_err(corrupt)?;
        let Some(hb) = hb else {
            return match self.max_age {
                Some(max) => Err((
                    Verdict::Stale,
                    format!("no heartbeat (--max-age {})", text::age_text(max)),
                )),
                None => Ok(()),
            };
        };
        // Truncated to the 10 ms of /proc/uptime, the clock health.sh reads,
        // so that both probes judge the same age the same way.
        let now = os::boottime_ms().map(|ms| ms / 10 * 10).map_err(|e| {
            let why = Corruption::Unreadable(format!("clock: {}", text::error_text(&e)));
            corrupt(Bad::new(format::HEARTBEAT, why))
        })?;
        if hb.stamp_ms > now + FUTURE_SLACK_MS {
            return Err(corrupt(Bad::new(
                format::HEARTBEAT,
                Corruption::FutureStamp,
            )));
        }
        let age = now.saturating_sub(hb.stamp_ms);
        r.heartbeat_age = Some(Duration::from_millis(age));
        r.heartbeat_deadline = Some(Duration::from_secs(hb.deadline_s));
        let (limit, whose) = match self.max_age {
            Some(m) => (m.as_millis() as u64, "--max-age"),
            None => (hb.deadline_s * 1000, "deadline"),
        };
        if age > limit {
            return Err((
                Verdict::Stale,
                format!(
                    "last beat {} s ago, {whose} {} s",
                    text::age_text(Duration::from_millis(age)),
                    text::age_text(Duration::from_millis(limit))
                ),
            ));
        }
        Ok(())
    }
}

/// A failed step: the verdict and its reason.
type Fail = (Verdict, String);

fn corrupt(bad: Bad) -> Fail {
    (Verdict::Corrupt, format!("{}: {}", bad.file, bad.why))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exit codes are the documented table, shared with health.sh.
    #[test]
    fn verdict_exit_codes_are_the_documented_table() {
        let table = [
            (Verdict::Ok, 0),
            (Verdict::Unhealthy, 1),
            (Verdict::NoState, 3),
            (Verdict::OwnerGone, 4),
            (Verdict::Unverifiable, 4),
            (Verdict::Stale, 5),
            (Verdict::Starting, 6),
            (Verdict::NotReady, 6),
            (Verdict::Corrupt, 7),
            (Verdict::Exited, 12),
        ];
        for (v, code) in table {
            assert_eq!(v.exit_code(), code, "{v:?}");
        }
    }
}
