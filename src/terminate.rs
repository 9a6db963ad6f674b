//! `liveness terminate`: signal a unit's owner, safely, and wait for it.
//!
//! The owner is identified by its `pid` *and* its `starttime`: a process
//! that merely reuses the pid is never signalled. The check and the signal
//! go through a pidfd (`pidfd_open`, then the start time is compared, then
//! `pidfd_send_signal`), so the process cannot be replaced in between.
//!
//! Under `liveness run` the `pid` file names the supervised child: signalling
//! it ends the child, and the supervisor then writes the tombstone, clears
//! the state and exits. `terminate` waits for both steps: the process must
//! have exited *and* the unit must be released (no `pid` file naming it, or
//! its lock no longer held).

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::error::{Error, ErrorKind, Result};
use crate::os::proc;
use crate::os::{self, process};
use crate::state::read::{self, LockState, OpenUnit};
use crate::state::trust;
use crate::state::unit::Unit;
use crate::vocab::text;
use crate::watch::{self, Watcher};

/// What [`terminate`] did.
///
/// # Examples
///
/// ```
/// assert_ne!(liveness::Terminated::Exited, liveness::Terminated::Signalled);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Terminated {
    /// The owner was signalled and has exited; the unit is released.
    Exited,
    /// The owner was signalled; nobody waited (`wait` was `None`).
    Signalled,
}

/// Sends signal number `signal` to the owner of `unit` after verifying its
/// identity (pid and start time), then, when `wait` is given, waits up to
/// that long until it has exited and the unit is released.
///
/// # Errors
///
/// - [`ErrorKind::NotLoaded`]: no unit directory or no `pid` file.
/// - [`ErrorKind::OwnerGone`]: the owner is not running, is a zombie, its
///   pid was reused (start time differs), or no start time was recorded to
///   verify it; nothing was signalled.
/// - [`ErrorKind::Timeout`]: signalled, but still running (or the unit
///   still held) when `wait` passed.
/// - [`ErrorKind::Corrupt`]: the state cannot be read, or cannot be trusted:
///   the unit directory or a state file is owned by a user other than this
///   process's, root or the target's own, is writable by group or others,
///   or has more than one link; nothing was signalled.
/// - [`ErrorKind::InvalidInput`]: not a signal number.
/// - [`ErrorKind::Io`]: the kernel refused (`EPERM`), or the owner lives in
///   another PID namespace.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let unit = liveness::Unit::new("nobody", dir.path())?;
/// let err = liveness::terminate(&unit, 15, None).unwrap_err();
/// assert_eq!(err.kind(), liveness::ErrorKind::NotLoaded);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn terminate(unit: &Unit, signal: i32, wait: Option<Duration>) -> Result<Terminated> {
    let what = format!("unit {}", unit.name());
    let sig = Signal::try_from(signal).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("signal {signal}"),
            "not a signal number",
        )
    })?;
    let dir = match read::open_unit(unit) {
        OpenUnit::Missing => {
            return Err(Error::new(ErrorKind::NotLoaded, what, "no unit directory"));
        }
        OpenUnit::Bad(why) => return Err(Error::new(ErrorKind::Corrupt, what, why.to_string())),
        OpenUnit::Dir(fd) => fd,
    };
    let corrupt = |bad: read::Bad| {
        Error::new(
            ErrorKind::Corrupt,
            unit.file(bad.file).display().to_string(),
            bad.why.to_string(),
        )
    };
    let owner = read::owner(dir.as_fd()).map_err(corrupt)?.ok_or_else(|| {
        Error::new(
            ErrorKind::NotLoaded,
            what.clone(),
            "not loaded (no pid file)",
        )
    })?;
    let pid = owner.pid;
    let untrusted = |why: String| Error::new(ErrorKind::Corrupt, what.clone(), why).with_pid(pid);
    trusted_for(unit, dir.as_fd(), pid).map_err(untrusted)?;
    let gone = |why: String| Error::new(ErrorKind::OwnerGone, what.clone(), why).with_pid(pid);
    let Some(recorded) = owner.starttime else {
        return Err(gone(format!(
            "no start time recorded: cannot verify pid {pid}, not signalled"
        )));
    };
    // The start time is checked through `/proc`: it must be our PID
    // namespace's, and the owner must live in it.
    let elsewhere = match (owner.pidns, proc::own_pidns()) {
        _ if !proc::proc_is_ours() => Some(format!(
            "cannot verify pid {pid}: {}, not signalled",
            text::error_text(&proc::foreign_proc())
        )),
        (_, Err(e)) => Some(format!(
            "cannot verify pid {pid}: our own PID namespace is unknown ({}), not signalled",
            text::error_text(&e)
        )),
        (Some(theirs), Ok(ours)) if theirs != ours => Some(format!(
            "pid {pid} is in another PID namespace: cannot signal it from here"
        )),
        _ => None,
    };
    if let Some(why) = elsewhere {
        return Err(Error::new(ErrorKind::Io, what, why).with_pid(pid));
    }
    let pidfd = match process::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => {
            return Err(gone(format!("pid {pid} is not running")));
        }
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Io,
                what,
                format!("pidfd_open({pid}): {e}"),
            ));
        }
    };
    // The pidfd pins the process: if the start time matches now, the
    // signal below reaches this very process.
    match proc::read_stat(pid) {
        Ok(Some(st)) if st.exited() => {
            return Err(gone(format!("pid {pid} has exited (zombie)")));
        }
        Ok(Some(st)) if st.starttime != recorded => {
            return Err(gone(format!(
                "pid {pid} was reused (start time {}, recorded {recorded}): not signalled",
                st.starttime
            )));
        }
        Ok(Some(_)) => {}
        Ok(None) => return Err(gone(format!("pid {pid} is not running"))),
        Err(e) => {
            return Err(Error::io(
                std::path::Path::new(&format!("/proc/{pid}/stat")),
                e,
            ));
        }
    }
    // Once more for the process now pinned: state its own uid wrote is
    // acceptable only if this very process has that uid.
    trusted_for(unit, dir.as_fd(), pid).map_err(untrusted)?;
    match process::pidfd_send_signal(pidfd.as_fd(), sig) {
        Ok(()) => log::info!("{what}: sent {sig} to pid {pid}"),
        Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => {
            return Err(gone(format!("pid {pid} exited before the signal")));
        }
        Err(e) => {
            return Err(
                Error::new(ErrorKind::Io, what, format!("signal pid {pid}: {e}")).with_pid(pid),
            );
        }
    }
    let Some(wait) = wait else {
        return Ok(Terminated::Signalled);
    };
    let deadline = Instant::now() + wait;
    let timeout = |why: &str| {
        Error::new(
            ErrorKind::Timeout,
            what.clone(),
            format!("pid {pid} {why} after {} ms", wait.as_millis()),
        )
        .with_pid(pid)
    };
    // 1. The process exits: its pidfd becomes readable.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ready = os::poll_readable(&[pidfd.as_fd()], watch::millis(left))
            .map_err(|e| Error::new(ErrorKind::Io, what.clone(), format!("poll: {e}")))?;
        if ready.first().copied().unwrap_or(false) {
            break;
        }
        if left.is_zero() {
            return Err(timeout("still running"));
        }
    }
    // 2. The unit is released: its pid file no longer names the process, or
    // its lock is no longer held.
    let watcher = Watcher::new(std::slice::from_ref(unit));
    loop {
        watcher.drain();
        let named = matches!(read::owner(dir.as_fd()), Ok(Some(o)) if o.pid == pid);
        let held = matches!(read::lock_state(dir.as_fd()), Ok(LockState::Held));
        if !named || !held {
            return Ok(Terminated::Exited);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout("exited but the unit is still held"));
        }
        let fds: Vec<_> = watcher.fd().into_iter().collect();
        let wait = left.min(Duration::from_millis(100));
        if fds.is_empty() {
            std::thread::sleep(wait);
        } else {
            let _ = os::poll_readable(&fds, watch::millis(wait));
        }
    }
}

/// Whether the state of `unit` may be acted on to signal `pid`: trusted
/// ([`trust::actor`]), or written by `pid`'s own uid (real or effective),
/// which could signal it anyway.
fn trusted_for(unit: &Unit, dir: BorrowedFd<'_>, pid: u32) -> std::result::Result<(), String> {
    let Err(why) = trust::actor(unit, dir, &[]) else {
        return Ok(());
    };
    match proc::uids(pid) {
        Ok(Some(uids)) if trust::actor(unit, dir, &uids).is_ok() => Ok(()),
        _ => Err(format!("{why}; not signalled")),
    }
}
