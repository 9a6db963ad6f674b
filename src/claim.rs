//! Claiming a unit: the `lock` file protocol.
//!
//! The owner of a unit holds `flock(LOCK_EX)` on `<unit>/lock` for as long as
//! it lives; the kernel releases it when the process dies, however it dies.
//! A claim:
//!
//! 1. opens (or creates) `lock` without following symlinks and tries
//!    `LOCK_EX|LOCK_NB`;
//! 2. on success, checks that `lock` still names the inode it locked (a
//!    writer that removed the file in between would otherwise leave two
//!    holders), then refuses if the `pid` file names a live process (an
//!    owner registered by `liveness load --pid`, which cannot hold the lock
//!    itself) — even the claimant: a second load never wipes a live unit;
//! 3. when the lock is held: if the `pid` file names the claimant itself
//!    (pid and start time), the claimant *attaches* — its supervisor holds
//!    the lock on its behalf; if it names another live process, the claim is
//!    refused naming that pid; otherwise the holder is a probe testing the
//!    lock or a claim in progress, and the claim retries for a moment.

use std::fs::{File, TryLockError};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::format;
use crate::read::{self, Liveness, LockKnown, Owner};
use crate::sys;
use crate::unit::Unit;

/// The process a claim is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    pub pid: u32,
    pub starttime: u64,
}

impl Target {
    fn is(&self, owner: &Owner) -> bool {
        owner.pid == self.pid && owner.starttime == Some(self.starttime)
    }
}

/// The outcome of a successful claim.
#[derive(Debug)]
pub(crate) enum Claim {
    /// We hold the lock: keep the file open for as long as the unit is ours.
    Held(File),
    /// Another process (our supervisor) holds the lock and the state already
    /// names us: report into the unit without claiming it.
    Attached,
}

/// How long a claim waits for a lock held by something that is not a live
/// owner (a probe testing the lock, another claim in progress).
const RETRY_FOR: Duration = Duration::from_millis(500);
const RETRY_EVERY: Duration = Duration::from_millis(2);

/// Claims `unit` (whose directory is `dir`) for `target`.
pub(crate) fn claim(unit: &Unit, dir: BorrowedFd<'_>, target: Target) -> Result<Claim> {
    let give_up = Instant::now() + RETRY_FOR;
    loop {
        let file = sys::open_or_create_at(dir, format::LOCK).map_err(|e| lock_error(unit, e))?;
        match file.try_lock() {
            Ok(()) => {
                if !still_linked(dir, &file) {
                    continue;
                }
                // A live owner that holds no lock (registered with
                // `load --pid`): refused, even when it is the claimant
                // itself, so a second load never wipes a live unit.
                if let Some(owner) = live_owner(unit, dir, LockKnown::Free)? {
                    return Err(busy(unit, owner.pid));
                }
                return Ok(Claim::Held(file));
            }
            Err(TryLockError::WouldBlock) => {
                if let Some(owner) = live_owner(unit, dir, LockKnown::Held)? {
                    if target.is(&owner) {
                        return Ok(Claim::Attached);
                    }
                    return Err(busy(unit, owner.pid));
                }
                if Instant::now() >= give_up {
                    return Err(Error::busy(
                        unit.name(),
                        None,
                        "lock is held by another process",
                    ));
                }
                std::thread::sleep(RETRY_EVERY);
            }
            Err(TryLockError::Error(e)) => return Err(lock_error(unit, e)),
        }
    }
}

fn busy(unit: &Unit, pid: u32) -> Error {
    Error::busy(unit.name(), Some(pid), format!("owned by pid {pid}"))
}

fn lock_error(unit: &Unit, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(nix::libc::ELOOP) => Error::new(
            ErrorKind::Corrupt,
            unit.file(format::LOCK).display().to_string(),
            "is a symlink",
        ),
        _ if e.kind() == io::ErrorKind::InvalidData => Error::new(
            ErrorKind::Corrupt,
            unit.file(format::LOCK).display().to_string(),
            "not a regular file",
        ),
        _ => Error::io(&unit.file(format::LOCK), e),
    }
}

/// Whether `lock` in `dir` is still the inode we hold open.
fn still_linked(dir: BorrowedFd<'_>, file: &File) -> bool {
    match (sys::fstat(file.as_fd()), sys::lstat_at(dir, format::LOCK)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// The recorded owner, when it is a live process.
fn live_owner(unit: &Unit, dir: BorrowedFd<'_>, lock: LockKnown) -> Result<Option<Owner>> {
    match read::judged_owner(dir, lock) {
        Ok(Some((owner, Liveness::Alive))) => Ok(Some(owner)),
        Ok(Some((_, Liveness::Gone(why)))) => {
            log::debug!("unit {}: previous owner gone: {why}", unit.name());
            Ok(None)
        }
        Ok(None) => Ok(None),
        Err(bad) => {
            // A previous owner left something we cannot parse. It cannot be
            // a live owner's state (ours is always well formed): it will be
            // replaced.
            log::warn!(
                "unit {}: ignoring corrupt {}: {}",
                unit.name(),
                bad.file,
                bad.why
            );
            Ok(None)
        }
    }
}
