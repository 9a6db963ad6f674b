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
use crate::os::fs;
use crate::state::format;
use crate::state::read::{self, Liveness, LockKnown, Owner};
use crate::state::trust;
use crate::state::unit::Unit;
use crate::state::write;

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
    // A lock we replaced (not ours) was free when we locked it.
    let mut replaced = false;
    loop {
        let (file, created) = open_lock(unit, dir)?;
        match file.try_lock() {
            Ok(()) => {
                if !still_linked(dir, &file) {
                    continue;
                }
                if !created && !adopt_lock(unit, dir, &file)? {
                    replaced = true;
                    continue;
                }
                // A live owner that holds no lock (registered with
                // `load --pid`): refused, even when it is the claimant
                // itself, so a second load never wipes a live unit.
                let known = if created && !replaced {
                    LockKnown::Absent
                } else {
                    LockKnown::Free
                };
                if let Some(owner) = live_owner(unit, dir, known)? {
                    // A lock file we created must not outlive the refusal:
                    // left free, it would read as "the owner died".
                    if created && let Err(e) = write::remove_at(dir, format::LOCK) {
                        log::warn!("unit {}: {}: {e}", unit.name(), format::LOCK);
                    }
                    return Err(busy(unit, &owner));
                }
                return Ok(Claim::Held(file));
            }
            Err(TryLockError::WouldBlock) => {
                if let Some(owner) = live_owner(unit, dir, LockKnown::Held)? {
                    if owner.why.is_none() && target.is(&owner.owner) {
                        return Ok(Claim::Attached);
                    }
                    return Err(busy(unit, &owner));
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

/// Opens the `lock` file, creating it (0644 whatever the umask) when there
/// is none. Returns whether we created it.
fn open_lock(unit: &Unit, dir: BorrowedFd<'_>) -> Result<(File, bool)> {
    loop {
        let (file, created) = match fs::open_read_at(dir, format::LOCK) {
            Ok(f) => (f, false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::create_lock_at(dir, format::LOCK) {
                    Ok(f) => (f, true),
                    // Another claim created it first: open theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(lock_error(unit, e)),
                }
            }
            Err(e) => return Err(lock_error(unit, e)),
        };
        let st = fs::fstat(file.as_fd()).map_err(|e| lock_error(unit, e))?;
        if !fs::is_regular(&st) {
            return Err(lock_error(
                unit,
                io::Error::new(io::ErrorKind::InvalidData, "not a regular file"),
            ));
        }
        return Ok((file, created));
    }
}

/// Whether the existing `lock` we just locked may be kept: ours, with one
/// link. Made under a restrictive umask, it is widened to 0644 so probes
/// running as another user can test it. A lock that is not ours (another
/// owner, or a hard link to some other file) is never chmod-ed: it is
/// unlinked, and the caller creates a fresh one.
fn adopt_lock(unit: &Unit, dir: BorrowedFd<'_>, file: &File) -> Result<bool> {
    let st = fs::fstat(file.as_fd()).map_err(|e| lock_error(unit, e))?;
    if !trust::is_own_file(&st) {
        log::warn!(
            "unit {}: replacing a lock that is not ours (owner uid {}, {} links)",
            unit.name(),
            st.st_uid,
            st.st_nlink
        );
        write::remove_at(dir, format::LOCK).map_err(|e| lock_error(unit, e))?;
        return Ok(false);
    }
    if st.st_mode & 0o7777 != fs::FILE_MODE as nix::libc::mode_t {
        fs::fchmod(file.as_fd(), fs::FILE_MODE).map_err(|e| lock_error(unit, e))?;
    }
    Ok(true)
}

fn busy(unit: &Unit, owner: &LiveOwner) -> Error {
    let pid = owner.owner.pid;
    let why = match &owner.why {
        None => format!("owned by pid {pid}"),
        Some(why) => {
            format!("owned by pid {pid}, which cannot be verified: {why}; not taking over")
        }
    };
    Error::busy(unit.name(), Some(pid), why)
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
    match (fs::fstat(file.as_fd()), fs::lstat_at(dir, format::LOCK)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// A recorded owner that a claim must not take over.
struct LiveOwner {
    owner: Owner,
    /// `None`: proven alive. `Some`: unverifiable, and why.
    why: Option<String>,
}

/// The recorded owner, when it is a live process or cannot be proven dead
/// (an unverifiable owner is never taken over).
fn live_owner(unit: &Unit, dir: BorrowedFd<'_>, lock: LockKnown) -> Result<Option<LiveOwner>> {
    match read::judged_owner(dir, lock) {
        Ok(Some((owner, Liveness::Alive))) => Ok(Some(LiveOwner { owner, why: None })),
        Ok(Some((owner, Liveness::Unverifiable(why)))) => Ok(Some(LiveOwner {
            owner,
            why: Some(why),
        })),
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
