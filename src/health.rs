//! The `Health` handle: one unit's state, written by its owner.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::check::{self, Check, CheckResult, FnCheck};
use crate::error::{Error, ErrorKind, Result};
use crate::notify::Notifier;
use crate::os;
use crate::os::proc;
use crate::state::claim::{Claim, Target};
use crate::state::format::{self, Heartbeat};
use crate::state::owner;
use crate::state::quiet::Quiet;
use crate::state::read;
use crate::state::trust;
use crate::state::unit::Unit;
use crate::state::write::{self, Known};
use crate::vocab::text;

/// Builds a [`Health`] handle: which unit, which checks, which heartbeat.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir()?;
/// let health = liveness::Health::builder()
///     .unit("worker")
///     .rundir(dir.path())
///     .check("config", || {
///         std::fs::metadata("/")?;
///         Ok(())
///     })
///     .heartbeat(Duration::from_secs(30))
///     .build()?;
/// health.load()?;
/// health.set(0)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct Builder {
    unit: Option<String>,
    rundir: Option<PathBuf>,
    checks: Vec<Box<dyn Check>>,
    heartbeat: Option<Duration>,
    sync: bool,
    owner: Option<u32>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let checks: Vec<&str> = self.checks.iter().map(|c| c.name()).collect();
        f.debug_struct("Builder")
            .field("unit", &self.unit)
            .field("rundir", &self.rundir)
            .field("checks", &checks)
            .field("heartbeat", &self.heartbeat)
            .field("sync", &self.sync)
            .field("owner", &self.owner)
            .finish()
    }
}

impl Builder {
    /// Names the unit. Default: `LIVENESS_UNIT_NAME`, else the host name.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = liveness::Health::builder().unit("api");
    /// # let _ = b;
    /// ```
    pub fn unit(mut self, name: impl Into<String>) -> Builder {
        self.unit = Some(name.into());
        self
    }

    /// Sets the run directory. Default: `LIVENESS_RUNDIR`, else `/run`.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = liveness::Health::builder().rundir("/tmp/run");
    /// # let _ = b;
    /// ```
    pub fn rundir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.rundir = Some(dir.into());
        self
    }

    /// Adds a named check, run by `load` after the checks added before it.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = liveness::Health::builder()
    ///     .check("always", || Ok(()))
    ///     .check("env", || match std::env::var("HOME") {
    ///         Ok(_) => Ok(()),
    ///         Err(_) => Err("HOME is not set".into()),
    ///     });
    /// # let _ = b;
    /// ```
    pub fn check<F>(self, name: &str, f: F) -> Builder
    where
        F: FnMut() -> CheckResult + Send + 'static,
    {
        self.check_with(FnCheck::new(name, f))
    }

    /// Adds a check implemented as a type.
    ///
    /// # Examples
    ///
    /// ```
    /// use liveness::{Check, CheckResult};
    /// struct Ok_;
    /// impl Check for Ok_ {
    ///     fn name(&self) -> &str { "ok" }
    ///     fn check(&mut self) -> CheckResult { Ok(()) }
    /// }
    /// let b = liveness::Health::builder().check_with(Ok_);
    /// # let _ = b;
    /// ```
    pub fn check_with(mut self, check: impl Check + 'static) -> Builder {
        self.checks.push(Box::new(check));
        self
    }

    /// Declares a heartbeat deadline: the process promises to call
    /// [`Health::beat`] more often than `deadline`; a probe reports the unit
    /// stale (exit 5) when it does not. Whole seconds, 1 s to one year.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = liveness::Health::builder().heartbeat(std::time::Duration::from_secs(30));
    /// # let _ = b;
    /// ```
    pub fn heartbeat(mut self, deadline: Duration) -> Builder {
        self.heartbeat = Some(deadline);
        self
    }

    /// Flushes every write to stable storage (`fsync` of the file and the
    /// directory). Off by default: `/run` is a tmpfs, where it only costs
    /// time. Turn it on for state on a disk-backed volume.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = liveness::Health::builder().sync(true);
    /// # let _ = b;
    /// ```
    pub fn sync(mut self, sync: bool) -> Builder {
        self.sync = sync;
        self
    }

    /// Registers another running process as the unit's owner, instead of
    /// the calling process: what `liveness load --pid` does for a shell job.
    ///
    /// Such an owner cannot hold the unit's lock (this process is the one
    /// that would hold it, and it is about to exit), so [`Health::load`]
    /// takes the lock only to make the claim, then removes the `lock` file:
    /// readers judge the owner by its pid and start time alone. Dropping the
    /// handle leaves the state in place; the owner (or anyone) removes it
    /// with `liveness reset`.
    ///
    /// # Examples
    ///
    /// ```
    /// let parent = std::os::unix::process::parent_id();
    /// let b = liveness::Health::builder().owner(parent);
    /// # let _ = b;
    /// ```
    pub fn owner(mut self, pid: u32) -> Builder {
        self.owner = Some(pid);
        self
    }

    /// Validates the settings and makes the handle. Nothing is written yet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUnit`] for a bad unit name,
    /// [`ErrorKind::InvalidInput`] for a heartbeat deadline out of range, and
    /// [`ErrorKind::Io`] when the host name (the default unit) is unreadable.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = liveness::Health::builder().unit("a/b").build().err().unwrap();
    /// assert_eq!(err.kind(), liveness::ErrorKind::InvalidUnit);
    /// ```
    pub fn build(self) -> Result<Health> {
        let unit = Unit::resolve(self.unit.as_deref(), self.rundir.as_deref())?;
        let heartbeat = self.heartbeat.map(deadline_seconds).transpose()?;
        Ok(Health {
            unit,
            owner: self.owner,
            sync: self.sync,
            checks: Mutex::new(self.checks),
            state: Mutex::new(State {
                loaded: None,
                heartbeat_s: heartbeat,
            }),
            last_beat: AtomicU64::new(NEVER),
            beat_every: AtomicU64::new(heartbeat.map_or(0, beat_interval_ms)),
            notify: Notifier::from_env(),
            shutdown: OnceLock::new(),
        })
    }
}

/// Converts a heartbeat deadline to whole seconds, refusing 0 and more than
/// a year.
pub(crate) fn deadline_seconds(deadline: Duration) -> Result<u64> {
    let s = deadline.as_secs();
    if s == 0 || s > format::MAX_DEADLINE_S || deadline.subsec_nanos() != 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("heartbeat deadline {deadline:?}"),
            format!("must be whole seconds from 1 to {}", format::MAX_DEADLINE_S),
        ));
    }
    Ok(s)
}

/// How often a beat reaches the disk: often enough that a healthy process
/// always looks fresh, rarely enough that calling `beat` in a hot loop
/// costs nothing.
fn beat_interval_ms(deadline_s: u64) -> u64 {
    (deadline_s * 1000 / 8).min(1000)
}

const NEVER: u64 = u64::MAX;

/// Starts an installed shutdown plan and waits for the process to exit: it
/// never returns.
pub(crate) type ShutdownTrigger = dyn Fn() -> Result<Infallible> + Send + Sync;

/// The health state of one unit, written by the process that owns it.
///
/// Made by [`Health::builder`]. [`load`](Health::load) runs the sanity
/// checks and claims the unit; then [`set`](Health::set),
/// [`ready`](Health::ready) and [`beat`](Health::beat) report;
/// [`reset`](Health::reset) (or dropping the handle) removes the state.
///
/// Every method takes `&self` and the handle is `Send + Sync`: share it
/// across threads in an `Arc`.
///
/// # Examples
///
/// ```
/// use liveness::{Health, Mode, Probe, Verdict};
///
/// let dir = tempfile::tempdir()?;
/// let health = Health::builder().unit("job").rundir(dir.path()).build()?;
/// health.load()?;
/// let probe = Probe::new(Mode::Live);
/// assert_eq!(probe.check(health.unit()).verdict, Verdict::Starting);
/// health.set_with_message(3, "database unreachable")?;
/// let report = probe.check(health.unit());
/// assert_eq!(report.to_string(), "unit job: unhealthy: error 3: database unreachable");
/// health.set(0)?;
/// assert_eq!(probe.check(health.unit()).verdict, Verdict::Ok);
/// health.reset()?;
/// assert_eq!(probe.check(health.unit()).verdict, Verdict::NoState);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Health {
    unit: Unit,
    /// The process to register as owner, when it is not this one.
    owner: Option<u32>,
    sync: bool,
    checks: Mutex<Vec<Box<dyn Check>>>,
    state: Mutex<State>,
    /// Coarse monotonic milliseconds of the last beat written, or `NEVER`.
    last_beat: AtomicU64,
    /// Minimum milliseconds between two beats reaching the disk.
    beat_every: AtomicU64,
    /// sd_notify, when `NOTIFY_SOCKET` was set at build time.
    notify: Notifier,
    /// What [`Health::shutdown`] runs: set once, by the shutdown plan's
    /// `install`. The shutdown layer sits above this one and drives it;
    /// this module never names its types.
    shutdown: OnceLock<Box<ShutdownTrigger>>,
}

struct State {
    loaded: Option<Loaded>,
    heartbeat_s: Option<u64>,
}

struct Loaded {
    dir: OwnedFd,
    role: Role,
    /// The process that loaded: a forked child must not reset its parent's
    /// unit when its copy of the handle drops.
    pid: u32,
    /// What this handle can prove the disk holds, file by file: a call
    /// that would write what is proven there writes nothing.
    error: Known,
    message: Known,
    ready: Known,
    /// Whether nothing in the directory changed since the values above
    /// were last proven (see `quiet.rs`).
    quiet: Quiet,
}

/// How a handle relates to its unit.
enum Role {
    /// This process owns the unit and holds its lock. `key` is the unit
    /// directory's `(st_dev, st_ino)` in the in-process registry.
    Owner {
        #[allow(dead_code)] // held, not read: the lock lives as long as the role
        lock: File,
        key: (u64, u64),
    },
    /// This process was started by a supervisor that claimed the unit for
    /// it (`liveness run`); it reports, the supervisor owns.
    Supervised { key: (u64, u64) },
    /// This process registered another one as owner (`Builder::owner`).
    Registrar,
    /// This process reports into a unit another process loaded
    /// ([`Health::open`]).
    Reporter,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the state inconsistent:
    // every field is updated after the disk write it mirrors.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Health {
    /// The longest message written, in bytes; longer ones are cut at a
    /// character boundary.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let h = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// h.load()?;
    /// h.set_with_message(1, &"x".repeat(10_000))?;
    /// let written = std::fs::read(dir.path().join("u/message"))?;
    /// assert_eq!(written.len(), liveness::Health::MAX_MESSAGE + 1); // and a newline
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const MAX_MESSAGE: usize = format::MAX_MESSAGE;

    /// Starts building a handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let health = liveness::Health::builder().unit("w").rundir("/tmp").build()?;
    /// assert_eq!(health.unit().name(), "w");
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder {
            unit: None,
            rundir: None,
            checks: Vec::new(),
            heartbeat: None,
            sync: false,
            owner: None,
        }
    }

    /// The unit this handle writes.
    ///
    /// # Examples
    ///
    /// ```
    /// let health = liveness::Health::builder().unit("w").rundir("/tmp").build()?;
    /// assert_eq!(health.unit().dir(), std::path::Path::new("/tmp/w"));
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn unit(&self) -> &Unit {
        &self.unit
    }

    /// Whether [`load`](Health::load) succeeded and [`reset`](Health::reset)
    /// has not been called since.
    ///
    /// # Examples
    ///
    /// ```
    /// let health = liveness::Health::builder().unit("w").rundir("/tmp").build()?;
    /// assert!(!health.is_loaded());
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn is_loaded(&self) -> bool {
        lock(&self.state).loaded.is_some()
    }

    /// Whether this handle reports into a unit its supervisor claimed
    /// (`liveness run`), rather than owning it.
    ///
    /// # Examples
    ///
    /// ```
    /// let health = liveness::Health::builder().unit("w").rundir("/tmp").build()?;
    /// assert!(!health.is_attached());
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn is_attached(&self) -> bool {
        lock(&self.state)
            .loaded
            .as_ref()
            .is_some_and(|l| matches!(l.role, Role::Supervised { .. }))
    }

    /// Runs every check in order, then claims the unit and records this
    /// process as its owner.
    ///
    /// The first failing check stops `load` and nothing is written. On
    /// success the unit directory holds `lock` (held until reset or exit),
    /// `pidns`, `starttime` and `pid`, and stale files of a previous owner
    /// are gone: the unit is *starting* (no `error` file) until the first
    /// [`set`](Health::set). When a heartbeat deadline is declared, a first
    /// beat is written.
    ///
    /// When the unit's lock is held by another process and its `pid` file
    /// already names this process (pid and start time), `load` *attaches*:
    /// the supervisor (`liveness run`) owns the unit and this process only
    /// reports into it.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::CheckFailed`]: a check failed; its name and reason are
    ///   in the message.
    /// - [`ErrorKind::Busy`]: another live process owns the unit (its pid is
    ///   in [`Error::pid`]), or this handle or another handle in this
    ///   process already loaded it.
    /// - [`ErrorKind::Corrupt`]: the unit directory or lock is a symlink or
    ///   not what it should be.
    /// - [`ErrorKind::Io`]: the run directory cannot be written.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let a = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// a.load()?;
    /// let b = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// assert_eq!(b.load().unwrap_err().kind(), liveness::ErrorKind::Busy);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(&self) -> Result<()> {
        let mut state = lock(&self.state);
        if state.loaded.is_some() {
            return Err(self.loaded_twice());
        }
        for c in lock(&self.checks).iter_mut() {
            check::run(c.as_mut())?;
        }
        let target = self.target()?;
        let (dir, claim, key) = owner::claim_unit(&self.unit, target)?;
        let registrar = self.owner.is_some();
        let role = match claim {
            Claim::Held(file) => {
                if !registrar {
                    owner::register(key, &self.unit)?;
                }
                let started =
                    owner::start_incarnation(&self.unit, dir.as_fd(), Some(target), self.sync)
                        .and_then(|()| {
                            if registrar {
                                // The owner cannot hold the lock: do not leave a
                                // free lock that would read as "owner died".
                                self.remove(dir.as_fd(), format::LOCK)
                            } else {
                                Ok(())
                            }
                        });
                if let Err(e) = started {
                    owner::unregister(key);
                    return Err(e);
                }
                log::info!("unit {}: loaded, pid {}", self.unit.name(), target.pid);
                if registrar {
                    Role::Registrar
                } else {
                    Role::Owner { lock: file, key }
                }
            }
            Claim::Attached if registrar => Role::Registrar,
            Claim::Attached => {
                owner::register(key, &self.unit)?;
                log::info!(
                    "unit {}: attached to the supervisor's claim, pid {}",
                    self.unit.name(),
                    target.pid
                );
                Role::Supervised { key }
            }
        };
        let loaded = Loaded {
            dir,
            role,
            pid: std::process::id(),
            error: Known::Unknown,
            message: Known::Unknown,
            ready: Known::Unknown,
            quiet: Quiet::new(),
        };
        if let Some(deadline_s) = state.heartbeat_s
            && let Err(e) = self.write_beat(&loaded, deadline_s)
        {
            let _ = self.remove_all(&loaded);
            if let Role::Owner { key, .. } | Role::Supervised { key } = loaded.role {
                owner::unregister(key);
            }
            return Err(e);
        }
        state.loaded = Some(loaded);
        Ok(())
    }

    /// The process this handle claims the unit for.
    fn target(&self) -> Result<Target> {
        match self.owner {
            None => Ok(Target {
                pid: std::process::id(),
                starttime: proc::own_starttime()
                    .map_err(|e| Error::io(std::path::Path::new("/proc/self/stat"), e))?,
            }),
            Some(pid) if !proc::proc_is_ours() => Err(Error::new(
                ErrorKind::Io,
                format!("pid {pid}"),
                "cannot be verified: /proc is not mounted, or is another PID namespace's",
            )
            .with_pid(pid)),
            Some(pid) => match proc::starttime_of(pid) {
                Ok(Some(starttime)) => Ok(Target { pid, starttime }),
                Ok(None) => Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("pid {pid}"),
                    "is not running",
                )
                .with_pid(pid)),
                Err(e) => Err(Error::io(
                    std::path::Path::new(&format!("/proc/{pid}/stat")),
                    e,
                )),
            },
        }
    }

    /// Opens a unit that another process loaded, to report into it without
    /// claiming it: what `liveness set`, `ready` and `beat` do for shell
    /// jobs, and what a helper process of a service can do.
    ///
    /// The current `error`, `message` and `ready` are checked (corrupt
    /// state is refused) and the heartbeat deadline is read, so that
    /// [`beat`](Health::beat) keeps the declared deadline. The first call
    /// of each setter writes: what another process wrote is never assumed.
    /// Dropping the handle leaves the state alone; [`reset`](Health::reset)
    /// removes what a reporter may remove (see there).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotLoaded`] when the unit has no `pid` file;
    /// [`ErrorKind::Corrupt`] when its directory or state files cannot be
    /// trusted; [`ErrorKind::Busy`] when this handle is already loaded.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let owner = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// owner.load()?;
    /// let helper = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// helper.open()?;
    /// helper.set(0)?;
    /// drop(helper); // leaves the state alone
    /// assert!(dir.path().join("u/error").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self) -> Result<()> {
        let mut state = lock(&self.state);
        if state.loaded.is_some() {
            return Err(self.loaded_twice());
        }
        let not_loaded = || {
            Error::new(
                ErrorKind::NotLoaded,
                format!("unit {}", self.unit.name()),
                "not loaded",
            )
        };
        let corrupt = |bad: read::Bad| {
            Error::new(
                ErrorKind::Corrupt,
                self.unit.file(bad.file).display().to_string(),
                bad.why.to_string(),
            )
        };
        let dir = match read::open_unit(&self.unit) {
            read::OpenUnit::Dir(d) => d,
            read::OpenUnit::Missing => return Err(not_loaded()),
            read::OpenUnit::Bad(why) => {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    self.unit.dir().display().to_string(),
                    why.to_string(),
                ));
            }
        };
        let fd = dir.as_fd();
        trust::writer_dir(&self.unit, fd)?;
        if read::owner(fd).map_err(corrupt)?.is_none() {
            return Err(not_loaded());
        }
        read::read_parsed(fd, format::ERROR, format::parse_error).map_err(corrupt)?;
        read::message(fd).map_err(corrupt)?;
        read::marker(fd, format::READY).map_err(corrupt)?;
        if state.heartbeat_s.is_none()
            && let Ok(Some(hb)) = read::read_parsed(fd, format::HEARTBEAT, format::parse_heartbeat)
        {
            state.heartbeat_s = Some(hb.deadline_s);
            self.beat_every
                .store(beat_interval_ms(hb.deadline_s), Ordering::Relaxed);
        }
        state.loaded = Some(Loaded {
            dir,
            role: Role::Reporter,
            pid: std::process::id(),
            error: Known::Unknown,
            message: Known::Unknown,
            ready: Known::Unknown,
            quiet: Quiet::new(),
        });
        Ok(())
    }

    /// Sets the error code (0 = healthy) and clears the message.
    ///
    /// A call writes nothing when a stat proves the disk already holds its
    /// values as this handle wrote them; a value another process wrote
    /// since (a helper's `liveness set`) is always overwritten.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotLoaded`] before `load`, [`ErrorKind::InvalidInput`]
    /// for a code above 2147483647, [`ErrorKind::Io`] when the file cannot
    /// be written. A failed write never leaves a *better* state visible: for
    /// a non-zero code, `error` is removed instead (the unit reads
    /// "starting", which fails every probe), and the error says so; when
    /// even that fails (a read-only file system), it says that the previous
    /// state stays visible. A failed `set(0)` leaves the previous code.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let h = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// assert_eq!(h.set(0).unwrap_err().kind(), liveness::ErrorKind::NotLoaded);
    /// h.load()?;
    /// h.set(0)?;
    /// assert_eq!(std::fs::read(dir.path().join("u/error"))?, b"0\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, code: u32) -> Result<()> {
        self.set_inner(code, None)
    }

    /// Sets the error code and the one-line message that explains it.
    ///
    /// The message is flattened to one line of at most 512 bytes
    /// ([`Health::MAX_MESSAGE`]); an empty message clears it.
    /// For a non-zero code the message is written first, so a probe that
    /// sees the new code sees its message. A call with the values this
    /// handle can prove are on disk does not touch the disk.
    ///
    /// # Errors
    ///
    /// As [`set`](Health::set). When the message cannot be written, the
    /// code still is, and the previous message is removed rather than left
    /// under the new code.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let h = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// h.load()?;
    /// h.set_with_message(3, "database\nunreachable")?;
    /// assert_eq!(std::fs::read(dir.path().join("u/message"))?, b"database unreachable\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_with_message(&self, code: u32, message: &str) -> Result<()> {
        self.set_inner(code, format::sanitize_message(message))
    }

    fn set_inner(&self, code: u32, message: Option<String>) -> Result<()> {
        if u64::from(code) > format::MAX_INT {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("error code {code}"),
                "out of range (0..=2147483647)",
            ));
        }
        let mut state = lock(&self.state);
        let l = self.loaded_mut(&mut state)?;
        let error_bytes = format::format_number(code.into());
        let message_bytes = message.as_deref().map(format::format_message);
        let quiet = l.quiet.holds();
        if !quiet {
            l.quiet.drain();
        }
        let dir = l.dir.as_fd();
        let error_there = l
            .error
            .proves(dir, format::ERROR, Some(&error_bytes), quiet);
        // No reader shows a message with error 0 (verdicts and lines give
        // one only with a non-zero code): for `set(0)`, a message need not
        // be proven absent once error 0 is proven, nor when this handle
        // removed it itself.
        let message_there = (code == 0
            && message_bytes.is_none()
            && (error_there || matches!(l.message, Known::Absent)))
            || l.message
                .proves(dir, format::MESSAGE, message_bytes.as_deref(), quiet);
        if error_there && message_there {
            if !quiet {
                l.quiet.proven(l.dir.as_fd());
            }
            return Ok(());
        }
        l.quiet.wrote();
        // A non-zero code goes with its message, written first so that a
        // probe that sees the new code sees its message; a zero code first,
        // so the unit is healthy again as soon as possible.
        let mut failed = None;
        if code != 0 && !message_there {
            failed = self.put_message(l, message_bytes.as_deref()).err();
        }
        if !error_there {
            let written = self.put(l.dir.as_fd(), format::ERROR, &error_bytes);
            match written {
                Ok(known) => l.error = known,
                Err(e) => {
                    l.error = Known::Unknown;
                    let e = match failed {
                        Some(first) => e.then(format!("and before it: {first}")),
                        None => e,
                    };
                    return Err(if code != 0 { self.fall_back(l, e) } else { e });
                }
            }
        }
        if code == 0 && !message_there {
            failed = self.put_message(l, message_bytes.as_deref()).err();
        }
        if let Some(e) = failed {
            return Err(e);
        }
        log::debug!("unit {}: error {code}", self.unit.name());
        self.notify.status(code, message.as_deref());
        Ok(())
    }

    /// Writes (or, for `None`, removes) the message. When it cannot be
    /// written, the previous one is removed rather than left to explain a
    /// code it does not belong to; the error says so.
    fn put_message(&self, l: &mut Loaded, bytes: Option<&[u8]>) -> Result<()> {
        let dir = l.dir.as_fd();
        let done = match bytes {
            Some(b) => self.put(dir, format::MESSAGE, b),
            None => self.remove(dir, format::MESSAGE).map(|()| Known::Absent),
        };
        match done {
            Ok(known) => {
                l.message = known;
                Ok(())
            }
            Err(e) => {
                l.message = Known::Unknown;
                Err(match (bytes, self.remove(dir, format::MESSAGE)) {
                    (Some(_), Ok(())) => {
                        l.message = Known::Absent;
                        e.then("removed the previous message instead")
                    }
                    _ => e,
                })
            }
        }
    }

    /// After a failed write of a worse state (a non-zero error code, not
    /// ready, a shorter heartbeat deadline): removes `error`, so that the
    /// unit reads "starting" — which fails every probe — instead of
    /// showing the better state it had. The returned error says which.
    fn fall_back(&self, l: &mut Loaded, failed: Error) -> Error {
        match self.remove(l.dir.as_fd(), format::ERROR) {
            Ok(()) => {
                l.error = Known::Absent;
                log::warn!(
                    "unit {}: {failed}: removed error, the unit reads 'starting'",
                    self.unit.name()
                );
                failed
                    .then("removed error instead: the unit reads 'starting' until a write succeeds")
            }
            Err(e) => {
                l.error = Known::Unknown;
                let why = match e.os_error() {
                    Some(os) => text::error_text(os),
                    None => e.to_string(),
                };
                failed.then(format!(
                    "error cannot be removed either ({why}): the previous state stays visible"
                ))
            }
        }
    }

    /// Marks the unit ready for traffic (creates `ready`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotLoaded`] before `load`; [`ErrorKind::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let h = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// h.load()?;
    /// h.ready()?;
    /// assert!(dir.path().join("u/ready").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ready(&self) -> Result<()> {
        self.set_ready(true)
    }

    /// Marks the unit not ready for traffic (removes `ready`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotLoaded`] before `load`; [`ErrorKind::Io`] when
    /// `ready` cannot be removed: `error` is then removed instead (the unit
    /// reads "starting"), or the error says the previous state stays
    /// visible.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let h = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// h.load()?;
    /// h.ready()?;
    /// h.not_ready()?;
    /// assert!(!dir.path().join("u/ready").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn not_ready(&self) -> Result<()> {
        self.set_ready(false)
    }

    fn set_ready(&self, ready: bool) -> Result<()> {
        let mut state = lock(&self.state);
        let l = self.loaded_mut(&mut state)?;
        let want: Option<&[u8]> = if ready { Some(b"") } else { None };
        let quiet = l.quiet.holds();
        if !quiet {
            l.quiet.drain();
        }
        let dir = l.dir.as_fd();
        if l.ready.proves(dir, format::READY, want, quiet) {
            if !quiet {
                l.quiet.proven(l.dir.as_fd());
            }
            return Ok(());
        }
        l.quiet.wrote();
        let done = if ready {
            self.put(dir, format::READY, b"")
        } else {
            self.remove(dir, format::READY).map(|()| Known::Absent)
        };
        match done {
            Ok(known) => l.ready = known,
            Err(e) => {
                l.ready = Known::Unknown;
                return Err(if ready { e } else { self.fall_back(l, e) });
            }
        }
        log::debug!("unit {}: ready {ready}", self.unit.name());
        if ready {
            self.notify.ready();
        }
        Ok(())
    }

    /// Records that the process is making progress.
    ///
    /// Cheap enough for every loop iteration: it reaches the disk at most
    /// every eighth of the deadline (and at least every second); other calls
    /// read a coarse clock and return.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotLoaded`] before `load`, [`ErrorKind::InvalidInput`]
    /// when no deadline was declared, [`ErrorKind::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let h = liveness::Health::builder()
    ///     .unit("u")
    ///     .rundir(dir.path())
    ///     .heartbeat(std::time::Duration::from_secs(10))
    ///     .build()?;
    /// h.load()?;
    /// for _ in 0..1000 {
    ///     h.beat()?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn beat(&self) -> Result<()> {
        let last = self.last_beat.load(Ordering::Relaxed);
        if last != NEVER {
            let now = os::coarse_monotonic_ms();
            if now.wrapping_sub(last) < self.beat_every.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
        self.beat_slow()
    }

    #[cold]
    fn beat_slow(&self) -> Result<()> {
        let mut state = lock(&self.state);
        let Some(deadline_s) = state.heartbeat_s else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("unit {}", self.unit.name()),
                "no heartbeat deadline declared (Builder::heartbeat or Health::set_heartbeat)",
            ));
        };
        let l = self.loaded_mut(&mut state)?;
        self.write_beat(l, deadline_s)
    }

    /// Declares (or changes) the heartbeat deadline and beats at once. A
    /// process about to do something slow can extend its deadline, and
    /// shorten it again afterwards.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a deadline of 0, of more than a year,
    /// or not in whole seconds; [`ErrorKind::NotLoaded`]; [`ErrorKind::Io`]
    /// — when a shorter (or a first) deadline cannot be written, `error` is
    /// removed instead, as for [`set`](Health::set).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let h = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// h.load()?;
    /// h.set_heartbeat(Duration::from_secs(300))?;
    /// assert!(std::fs::read_to_string(dir.path().join("u/heartbeat"))?.starts_with("300 "));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_heartbeat(&self, deadline: Duration) -> Result<()> {
        let deadline_s = deadline_seconds(deadline)?;
        let mut state = lock(&self.state);
        let before = state.heartbeat_s.replace(deadline_s);
        self.beat_every
            .store(beat_interval_ms(deadline_s), Ordering::Relaxed);
        let l = self.loaded_mut(&mut state)?;
        match self.write_beat(l, deadline_s) {
            // A shorter (or a first) deadline that cannot be written must
            // not leave the laxer one passing.
            Err(e) if before.is_none_or(|b| deadline_s < b) => Err(self.fall_back(l, e)),
            other => other,
        }
    }

    fn write_beat(&self, l: &Loaded, deadline_s: u64) -> Result<()> {
        let stamp_ms =
            os::boottime_ms().map_err(|e| Error::io(&self.unit.file(format::HEARTBEAT), e))?;
        let bytes = format::format_heartbeat(Heartbeat {
            deadline_s,
            stamp_ms,
        });
        self.write(l.dir.as_fd(), format::HEARTBEAT, &bytes)?;
        self.last_beat
            .store(os::coarse_monotonic_ms(), Ordering::Relaxed);
        self.notify.watchdog();
        Ok(())
    }

    /// Removes the unit's state and releases the claim; the unit reads as
    /// *no state* (exit 3) afterwards. Files go in this order: `ready`,
    /// `error`, `heartbeat`, `message`, then `pid`, `starttime` and
    /// `pidns`, so no probe ever sees a ready or healthy unit without an
    /// owner. An attached process removes only the first four; its
    /// supervisor owns the rest.
    ///
    /// A reporter ([`open`](Health::open)) removes the owner's identity too
    /// only when no live process holds the lock (a shell job registered with
    /// `liveness load --pid`); under a live supervisor it removes the first
    /// four files only.
    ///
    /// Idempotent; also done when an owner's or supervised process's handle
    /// drops. A forked child's copy of the handle never resets its parent's
    /// unit.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] when a file cannot be removed; the others are
    /// still removed and the claim is released.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let h = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// h.load()?;
    /// h.reset()?;
    /// h.reset()?;
    /// assert!(!dir.path().join("u/pid").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset(&self) -> Result<()> {
        let mut state = lock(&self.state);
        self.reset_locked(&mut state)
    }

    fn reset_locked(&self, state: &mut State) -> Result<()> {
        let Some(l) = state.loaded.take() else {
            return Ok(());
        };
        self.last_beat.store(NEVER, Ordering::Relaxed);
        if l.pid != std::process::id() {
            log::debug!(
                "unit {}: not resetting in forked child {}",
                self.unit.name(),
                std::process::id()
            );
            return Ok(());
        }
        let result = self.remove_all(&l);
        if let Role::Owner { key, .. } | Role::Supervised { key } = l.role {
            owner::unregister(key);
        }
        log::info!("unit {}: reset", self.unit.name());
        // Dropping `l` releases the lock, after the pid file is gone.
        drop(l);
        result
    }

    /// Whether `reset` may remove the owner's identity (`pid`, `starttime`,
    /// `pidns`): yes for an owner or registrar; no for a supervised process,
    /// whose supervisor owns it; for a reporter, only when no live process
    /// holds the lock (a shell job registered with `load --pid`).
    fn owns_identity(&self, l: &Loaded) -> bool {
        match l.role {
            Role::Owner { .. } | Role::Registrar => true,
            Role::Supervised { .. } => false,
            Role::Reporter => !matches!(read::lock_state(l.dir.as_fd()), Ok(read::LockState::Held)),
        }
    }

    fn remove_all(&self, l: &Loaded) -> Result<()> {
        let identity: &[&str] = if self.owns_identity(l) {
            &format::IDENTITY_FILES
        } else {
            &[]
        };
        let mut first = None;
        for &name in format::REPORT_FILES.iter().chain(identity) {
            if let Err(e) = self.remove(l.dir.as_fd(), name) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The trigger of the shutdown plan installed on this handle, if any:
    /// what [`Health::shutdown`] runs.
    pub(crate) fn shutdown_trigger(&self) -> Option<&ShutdownTrigger> {
        self.shutdown.get().map(|b| &**b)
    }

    /// Records the trigger of the shutdown plan being installed; `false`
    /// when a plan is already installed.
    pub(crate) fn set_shutdown_trigger(&self, trigger: Box<ShutdownTrigger>) -> bool {
        self.shutdown.set(trigger).is_ok()
    }

    /// The sd_notify bridge of this handle.
    pub(crate) fn notifier(&self) -> &Notifier {
        &self.notify
    }

    /// The error for a second `load` or `open` of this handle.
    fn loaded_twice(&self) -> Error {
        Error::busy(
            self.unit.name(),
            Some(std::process::id()),
            "already loaded by this handle",
        )
    }

    fn loaded_mut<'s>(&self, state: &'s mut State) -> Result<&'s mut Loaded> {
        state.loaded.as_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::NotLoaded,
                format!("unit {}", self.unit.name()),
                "not loaded",
            )
        })
    }

    fn write(&self, dir: BorrowedFd<'_>, name: &str, bytes: &[u8]) -> Result<()> {
        write::write_at(dir, name, bytes, self.sync)
            .map_err(|e| Error::io(&self.unit.file(name), e))
    }

    /// Writes `bytes` to `name` and returns what that proves.
    fn put(&self, dir: BorrowedFd<'_>, name: &str, bytes: &[u8]) -> Result<Known> {
        write::write_pinned_at(dir, name, bytes, self.sync)
            .map(|pinned| Known::written(bytes, pinned))
            .map_err(|e| Error::io(&self.unit.file(name), e))
    }

    fn remove(&self, dir: BorrowedFd<'_>, name: &str) -> Result<()> {
        write::remove_at(dir, name)
            .map(drop)
            .map_err(|e| Error::io(&self.unit.file(name), e))
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        let owns = state
            .loaded
            .as_ref()
            .is_some_and(|l| matches!(l.role, Role::Owner { .. } | Role::Supervised { .. }));
        if !owns {
            return;
        }
        if let Err(e) = self.reset_locked(&mut state) {
            log::warn!("unit {}: reset on drop: {e}", self.unit.name());
        }
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("unit", &self.unit)
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}
