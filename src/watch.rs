//! Waking up when units change: inotify on the run directory and the unit
//! directories, with a slow fallback poll.
//!
//! Writers replace state files by renaming (`IN_MOVED_TO`) and remove them
//! (`IN_DELETE`); a unit directory appears in the run directory
//! (`IN_CREATE`). An owner that dies without writing anything changes no
//! file — its lock is released by the kernel, which inotify does not report
//! — so every waiter also re-checks every [`FALLBACK`] interval.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::probe::{Mode, Probe, Verdict};
use crate::unit::Unit;

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
        match self {
            Awaited::Ready => {
                let r = Probe::new(Mode::Ready).check(unit);
                if r.verdict == Verdict::Ok {
                    Ok(())
                } else {
                    Err(strip_unit(&r.to_string(), unit))
                }
            }
            Awaited::Gone => {
                let r = Probe::new(Mode::Startup).check(unit);
                match r.verdict {
                    Verdict::NoState | Verdict::OwnerGone | Verdict::Exited => Ok(()),
                    _ => Err(format!("owner alive: {}", strip_unit(&r.to_string(), unit))),
                }
            }
            Awaited::Tombstone => match crate::tombstone::read_dep(unit) {
                Ok(Some(t)) if t.died.is_some() => Ok(()),
                Ok(Some(_)) => Err("running (tombstone has no Died)".into()),
                Ok(None) => Err("no tombstone".into()),
                Err(e) => Err(e),
            },
        }
    }
}

fn strip_unit(line: &str, unit: &Unit) -> String {
    let prefix = format!("unit {}: ", unit.name());
    line.strip_prefix(&prefix).unwrap_or(line).to_owned()
}

/// Blocks until every unit in `units` is in state `what`, or `timeout`
/// passes. Returns the units still waiting, each with the reason; empty
/// when all arrived.
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
    let watcher = Watcher::new(units);
    let deadline = Instant::now() + timeout;
    loop {
        watcher.drain();
        let left = pending(units, what);
        let now = Instant::now();
        if left.is_empty() || now >= deadline {
            return left;
        }
        let wait = (deadline - now).min(FALLBACK);
        let fds: Vec<BorrowedFd<'_>> = watcher.fd().into_iter().collect();
        if fds.is_empty() {
            std::thread::sleep(wait);
        } else if let Err(e) = crate::sys::poll_readable(&fds, millis(wait)) {
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
