//! Waking up when units change: inotify on the run directory and the unit
//! directories, with a slow fallback poll.
//!
//! Writers replace state files by renaming (`IN_MOVED_TO`) and remove them
//! (`IN_DELETE`); a unit directory appears in the run directory
//! (`IN_CREATE`). An owner that dies without writing anything changes no
//! file — its lock is released by the kernel, which inotify does not report
//! — so every waiter also re-checks every [`FALLBACK`] interval.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::os;
use crate::probe::{Mode, Probe, Verdict};
use crate::state::read::{self, OpenUnit};
use crate::state::tombstone::{self, Tombstone};
use crate::state::trust;
use crate::state::unit::Unit;

/// How often a waiter re-checks without an inotify event.
pub(crate) const FALLBACK: Duration = Duration::from_secs(1);

/// An inotify instance watching a set of units.
pub(crate) struct Watcher {
    inotify: Option<Inotify>,
    units: Vec<Unit>,
}

impl Watcher {
    /// Watches `units`. Without inotify (not supported, out of watches) the
    /// waiter falls back on the slow poll alone.
    pub(crate) fn new(units: &[Unit]) -> Watcher {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| log::warn!("inotify unavailable, polling every second: {e}"))
            .ok();
        let w = Watcher {
            inotify,
            units: units.to_vec(),
        };
        w.refresh();
        w
    }

    /// (Re-)adds the watches: the run directories always, each unit
    /// directory once it exists. Adding an existing watch is a no-op.
    fn refresh(&self) {
        let Some(ino) = &self.inotify else { return };
        let dir_flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_ONLYDIR;
        let unit_flags = dir_flags | AddWatchFlags::IN_ATTRIB | AddWatchFlags::IN_CLOSE_WRITE;
        for u in &self.units {
            let _ = ino.add_watch(u.rundir(), dir_flags);
            let _ = ino.add_watch(&u.dir(), unit_flags);
            // kubexit rewrites `<graveyard>/<name>` in place: a close
            // after writing, no rename.
            if let Some(g) = u.graveyard() {
                let _ = ino.add_watch(g, unit_flags);
            }
        }
    }

    /// The descriptor to poll, if inotify works.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.inotify.as_ref().map(|i| i.as_fd())
    }

    /// Drains pending events and re-adds watches (a unit directory may have
    /// appeared).
    pub(crate) fn drain(&self) {
        if let Some(ino) = &self.inotify {
            while let Ok(events) = ino.read_events() {
                if events.is_empty() {
                    break;
                }
            }
        }
        self.refresh();
    }
}

/// A state a unit can be waited for.
///
/// # Examples
///
/// ```
/// use liveness::{Awaited, Unit};
/// let dir = tempfile::tempdir()?;
/// let unit = Unit::new("never", dir.path())?;
/// // Never loaded: it is "gone" at once, never "ready".
/// assert!(Awaited::Gone.reached(&unit).is_ok());
/// assert!(Awaited::Ready.reached(&unit).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Awaited {
    /// `liveness probe --ready` passes: ready file present, error 0, owner
    /// alive, heartbeat fresh.
    Ready,
    /// No live owner: the unit was never loaded, was reset, its owner is
    /// gone, or its supervised child has exited.
    Gone,
    /// A tombstone with a `Died` line: a supervised child has ended.
    Tombstone,
}

/// Where a unit stands for a waiter ([`Awaited::progress`]).
///
/// # Examples
///
/// ```
/// use liveness::{Awaited, Progress, Unit};
/// let dir = tempfile::tempdir()?;
/// let unit = Unit::new("u", dir.path())?;
/// assert_eq!(Awaited::Gone.progress(&unit), Progress::Reached);
/// assert_eq!(Awaited::Tombstone.progress(&unit), Progress::Waiting("no tombstone".into()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The unit is in the awaited state.
    Reached,
    /// Not (yet): why, as one line.
    Waiting(String),
    /// Waiting for [`Awaited::Gone`] cannot end from here: nothing can
    /// prove the owner alive or dead (another PID namespace, no lock). A
    /// waiter stops at once instead of timing out (`liveness wait` exits 4).
    Unverifiable(String),
}

impl Progress {
    /// Why the unit is not in the awaited state; `None` when it is.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Progress::Reached.reason(), None);
    /// assert_eq!(liveness::Progress::Waiting("x".into()).reason(), Some("x"));
    /// ```
    pub fn reason(&self) -> Option<&str> {
        match self {
            Progress::Reached => None,
            Progress::Waiting(why) | Progress::Unverifiable(why) => Some(why),
        }
    }
}

/// A unit's directory as an actor sees it.
enum Seen {
    /// No unit directory.
    Missing,
    /// Not to be acted on: corrupt, unreadable or untrusted; why.
    Refused(String),
    /// Open, and every state file in it trusted.
    Trusted(OwnedFd),
}

/// Opens `unit` for a waiter or a dependency: the state must be trusted
/// ([`trust::actor`]) before anything is judged, and it is judged through
/// the same descriptor.
fn look(unit: &Unit) -> Seen {
    match read::open_unit(unit) {
        OpenUnit::Missing => Seen::Missing,
        OpenUnit::Bad(why) => Seen::Refused(format!("corrupt state: unit directory: {why}")),
        OpenUnit::Dir(fd) => match trust::actor(unit, fd.as_fd(), &[]) {
            Ok(()) => Seen::Trusted(fd),
            Err(why) => Seen::Refused(why),
        },
    }
}

impl Awaited {
    /// Whether `unit` is in this state now; `Err` says why not.
    ///
    /// # Errors
    ///
    /// The reason the unit is not (yet) in the state, as one line.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let unit = liveness::Unit::new("u", dir.path())?;
    /// let why = liveness::Awaited::Tombstone.reached(&unit).unwrap_err();
    /// assert_eq!(why, "no tombstone");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reached(self, unit: &Unit) -> Result<(), String> {
        match self.progress(unit).reason() {
            None => Ok(()),
            Some(why) => Err(why.to_owned()),
        }
    }

    /// Where `unit` stands: the one judgement behind `liveness wait`,
    /// [`wait_for`] and the birth dependencies of [`Supervisor`]
    /// (death dependencies use the same rules).
    ///
    /// The unit's directory and every state file in it must be trusted
    /// (owned by this process's uid or root, not writable by group or
    /// others, one link), or the unit is [`Progress::Waiting`] with the
    /// reason: state another user could have written is never acted on.
    /// An owner that cannot be verified from here is not ready, and ends a
    /// wait for [`Awaited::Gone`] at once ([`Progress::Unverifiable`]).
    ///
    /// [`Supervisor`]: crate::Supervisor
    ///
    /// # Examples
    ///
    /// ```
    /// use liveness::{Awaited, Progress};
    /// let dir = tempfile::tempdir()?;
    /// let h = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// h.load()?;
    /// assert!(matches!(Awaited::Gone.progress(h.unit()), Progress::Waiting(_)));
    /// h.reset()?;
    /// assert_eq!(Awaited::Gone.progress(h.unit()), Progress::Reached);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn progress(self, unit: &Unit) -> Progress {
        let dir = match look(unit) {
            Seen::Trusted(fd) => fd,
            Seen::Missing => {
                return match self {
                    Awaited::Gone => Progress::Reached,
                    Awaited::Ready => Progress::Waiting(format!(
                        "no state: no unit directory {}",
                        unit.dir().display()
                    )),
                    // A kubexit container has no unit directory, only
                    // its file in the graveyard.
                    Awaited::Tombstone => match tombstone_of(unit, None) {
                        Ok(Some(t)) if t.died.is_some() => Progress::Reached,
                        Ok(Some(_)) => Progress::Waiting("running (tombstone has no Died)".into()),
                        Ok(None) => Progress::Waiting("no tombstone".into()),
                        Err(e) => Progress::Waiting(e),
                    },
                };
            }
            Seen::Refused(why) => return Progress::Waiting(why),
        };
        let dir = dir.as_fd();
        match self {
            Awaited::Ready => {
                let r = Probe::new(Mode::Ready).check_at(unit, dir);
                if r.verdict == Verdict::Ok {
                    Progress::Reached
                } else {
                    Progress::Waiting(strip_unit(&r.to_string(), unit))
                }
            }
            Awaited::Gone => {
                let r = Probe::new(Mode::Startup).check_at(unit, dir);
                match r.verdict {
                    Verdict::NoState | Verdict::OwnerGone | Verdict::Exited => Progress::Reached,
                    Verdict::Unverifiable => {
                        Progress::Unverifiable(strip_unit(&r.to_string(), unit))
                    }
                    _ => Progress::Waiting(format!(
                        "owner alive: {}",
                        strip_unit(&r.to_string(), unit)
                    )),
                }
            }
            Awaited::Tombstone => match tombstone_of(unit, Some(dir)) {
                Ok(Some(t)) if t.died.is_some() => Progress::Reached,
                Ok(Some(_)) => Progress::Waiting("running (tombstone has no Died)".into()),
                Ok(None) => Progress::Waiting("no tombstone".into()),
                Err(e) => Progress::Waiting(e),
            },
        }
    }
}

/// Whether the death dependency `unit` has died, and how: its tombstone
/// has `Died`, or its owner is gone, or its owner cannot be verified from
/// here (counted as dead, and logged, so that a Job's sidecars always
/// end). A unit that is not loaded, alive, corrupt or untrusted has not
/// died; untrusted or corrupt state is logged once.
pub(crate) fn death(unit: &Unit) -> Option<String> {
    let dir = match look(unit) {
        Seen::Trusted(fd) => Some(fd),
        Seen::Missing => None,
        Seen::Refused(why) => {
            warn_once(unit, &why);
            return None;
        }
    };
    match tombstone_of(unit, dir.as_ref().map(AsFd::as_fd)) {
        Ok(Some(t)) => {
            if let Some(how) = t.ending() {
                return Some(format!("exited: {how}"));
            }
        }
        Ok(None) => {}
        Err(why) => warn_once(unit, &format!("ignoring its tombstone: {why}")),
    }
    // No unit directory (and no kubexit file): never started, or reset.
    let dir = dir?;
    let dir = dir.as_fd();
    let r = Probe::new(Mode::Startup).check_at(unit, dir);
    match r.verdict {
        Verdict::OwnerGone => Some(format!("owner gone: {}", r.reason)),
        Verdict::Unverifiable => {
            log::warn!(
                "death dependency {}: owner unverifiable: {}: counted as dead",
                unit.name(),
                r.reason
            );
            Some(format!("owner unverifiable: {}", r.reason))
        }
        _ => None,
    }
}

/// The tombstone a waiter or a dependent judges `unit` by: its own, read
/// through its trusted directory `dir`, else — a kubexit container has no
/// unit — kubexit's `<graveyard>/<name>`, read leniently and only when
/// trusted ([`crate::state::kubexit`]).
fn tombstone_of(
    unit: &Unit,
    dir: Option<BorrowedFd<'_>>,
) -> std::result::Result<Option<Tombstone>, String> {
    if let Some(dir) = dir {
        match tombstone::read_at(dir) {
            Ok(Some(t)) => return Ok(Some(t)),
            Ok(None) => {}
            Err(bad) => return Err(format!("{}: {}", unit.file(bad.file).display(), bad.why)),
        }
    }
    match crate::state::kubexit::read(unit)? {
        crate::state::kubexit::Found::Nothing => Ok(None),
        crate::state::kubexit::Found::Tombstone(t) => Ok(Some(t)),
    }
}

/// Logs, once per unit directory and reason in this process, why a death dependency's
/// state is not acted on.
fn warn_once(unit: &Unit, why: &str) {
    static WARNED: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    let key = (unit.dir(), why.to_owned());
    if !warned.contains(&key) {
        log::warn!("death dependency {}: not acted on: {why}", unit.name());
        warned.push(key);
    }
}

fn strip_unit(line: &str, unit: &Unit) -> String {
    let prefix = format!("unit {}: ", unit.name());
    line.strip_prefix(&prefix).unwrap_or(line).to_owned()
}

/// Blocks until every unit in `units` is in state `what`, or `timeout`
/// passes. Returns the units still waiting, each with the reason; empty
/// when all arrived. Returns at once, with the reason, when a unit can
/// never be shown to arrive ([`Progress::Unverifiable`]); see
/// [`wait_progress`] to tell that case apart.
///
/// inotify wakes the wait as soon as a file changes; a re-check every second
/// catches owners that die without writing.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use liveness::{Awaited, Unit};
///
/// let dir = tempfile::tempdir()?;
/// let units = [Unit::new("a", dir.path())?];
/// assert!(liveness::wait_for(&units, Awaited::Gone, Duration::from_secs(1)).is_empty());
/// let left = liveness::wait_for(&units, Awaited::Ready, Duration::from_millis(10));
/// assert_eq!(left[0].0, "a");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait_for(units: &[Unit], what: Awaited, timeout: Duration) -> Vec<(String, String)> {
    wait_progress(units, what, timeout)
        .into_iter()
        .map(|(u, p)| (u, p.reason().unwrap_or_default().to_owned()))
        .collect()
}

/// Like [`wait_for`], with each unit's [`Progress`]: the units not in
/// state `what` when `timeout` passed, or at once when one of them is
/// [`Progress::Unverifiable`]. Empty when all arrived.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use liveness::{Awaited, Progress, Unit};
///
/// let dir = tempfile::tempdir()?;
/// let units = [Unit::new("a", dir.path())?];
/// let left = liveness::wait_progress(&units, Awaited::Tombstone, Duration::from_millis(10));
/// assert_eq!(left, [("a".to_owned(), Progress::Waiting("no tombstone".into()))]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait_progress(units: &[Unit], what: Awaited, timeout: Duration) -> Vec<(String, Progress)> {
    let watcher = Watcher::new(units);
    let deadline = Instant::now() + timeout;
    loop {
        watcher.drain();
        let left: Vec<(String, Progress)> = units
            .iter()
            .map(|u| (u.name().to_owned(), what.progress(u)))
            .filter(|(_, p)| *p != Progress::Reached)
            .collect();
        let now = Instant::now();
        let hopeless = left
            .iter()
            .any(|(_, p)| matches!(p, Progress::Unverifiable(_)));
        if left.is_empty() || hopeless || now >= deadline {
            return left;
        }
        let wait = (deadline - now).min(FALLBACK);
        let fds: Vec<BorrowedFd<'_>> = watcher.fd().into_iter().collect();
        if fds.is_empty() {
            std::thread::sleep(wait);
        } else if let Err(e) = os::poll_readable(&fds, millis(wait)) {
            log::warn!("poll: {e}");
            std::thread::sleep(wait);
        }
    }
}

/// The units of `units` not in state `what`, with reasons.
pub(crate) fn pending(units: &[Unit], what: Awaited) -> Vec<(String, String)> {
    units
        .iter()
        .filter_map(|u| what.reached(u).err().map(|why| (u.name().to_owned(), why)))
        .collect()
}

/// A poll timeout in milliseconds, rounded up so a wait never spins.
pub(crate) fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000)))
        .unwrap_or(i32::MAX)
}
