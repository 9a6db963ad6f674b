//! The owner's side of a unit directory: creating and claiming it,
//! clearing what a previous owner left, recording who owns it. The owner's
//! handle ([`Health`](crate::Health)) and the supervisor (`liveness run`,
//! which owns units on behalf of its children) both go through here, so
//! neither depends on the other.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, PoisonError};

use crate::error::{Error, ErrorKind, Result};
use crate::os::{fs, proc};
use crate::state::claim::{self, Claim, Target};
use crate::state::format;
use crate::state::trust;
use crate::state::unit::Unit;
use crate::state::write;

/// A unit directory's `(st_dev, st_ino)`: what tells two handles on one
/// unit apart from handles on two units.
pub(crate) type Key = (u64, u64);

/// Unit directories loaded by this process: a second handle on the same unit
/// is refused, like a second process would be.
static LOADED_HERE: Mutex<Vec<Key>> = Mutex::new(Vec::new());

/// Opens (creating as needed) the unit directory and claims it.
pub(crate) fn claim_unit(unit: &Unit, target: Target) -> Result<(OwnedFd, Claim, Key)> {
    let dir = open_unit_dir(unit)?;
    let st = fs::fstat(&dir).map_err(|e| Error::io(&unit.dir(), e))?;
    let key = (st.st_dev as u64, st.st_ino as u64);
    let claim = claim::claim(unit, dir.as_fd(), target)?;
    Ok((dir, claim, key))
}

/// Creates the run directory, its missing parents and the unit directory
/// as needed (each 0755 whatever the umask), opens the unit directory
/// without following a symlink, and checks that it is ours to write
/// ([`trust::writer_dir`]).
pub(crate) fn open_unit_dir(unit: &Unit) -> Result<OwnedFd> {
    let rundir = unit.rundir();
    trust::create_dirs(rundir).map_err(|e| Error::io(rundir, e))?;
    let parent = trust::open_configured_dir(rundir).map_err(|e| Error::io(rundir, e))?;
    let dir = match fs::create_dir_at(parent.as_fd(), unit.name()) {
        Ok(Some(fd)) => Ok(fd),
        Ok(None) => fs::open_dir_at(parent.as_fd(), unit.name()),
        Err(e) => Err(e),
    };
    let dir = dir.map_err(|e| match e.raw_os_error() {
        // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR or ELOOP.
        Some(nix::libc::ELOOP | nix::libc::ENOTDIR) => {
            let symlink =
                fs::lstat_at(parent.as_fd(), unit.name()).is_ok_and(|st| fs::is_symlink(&st));
            Error::new(
                ErrorKind::Corrupt,
                unit.dir().display().to_string(),
                if symlink {
                    "is a symlink"
                } else {
                    "is not a directory"
                },
            )
        }
        _ => Error::io(&unit.dir(), e),
    })?;
    trust::writer_dir(unit, dir.as_fd())?;
    Ok(dir)
}

/// Maps an I/O error on the unit's file `name` to an [`Error`] naming it.
fn file_error(unit: &Unit, name: &str) -> impl FnOnce(io::Error) -> Error + use<> {
    let path = unit.file(name);
    move |e| Error::io(&path, e)
}

/// Clears what a previous owner left and records `owner`: the unit starts a
/// new incarnation in the *starting* state. Without `owner` (a supervisor
/// that hands the unit to its child at once) the previous owner's
/// identity is removed too, and the unit has no state until the child's is
/// written.
///
/// The directory is listed once (for stale temporary files), and only the
/// files it holds are removed: on a disk-backed file system every
/// `unlink` of a missing name is a wasted directory lookup.
pub(crate) fn start_incarnation(
    unit: &Unit,
    dir: BorrowedFd<'_>,
    owner: Option<Target>,
    sync: bool,
) -> Result<()> {
    let io = |name: &str| file_error(unit, name);
    let names = fs::list_dir(dir).map_err(|e| Error::io(&unit.dir(), e))?;
    match write::remove_stale_temps_in(dir, &names) {
        Ok(n) if n > 0 => log::info!("unit {}: removed {n} stale temporary files", unit.name()),
        Ok(_) => {}
        Err(e) => return Err(Error::io(&unit.dir(), e)),
    }
    let present = |name: &str| names.iter().any(|n| n == name);
    // The order `reset` uses: the report, then (without a new owner to
    // record) the identity, so that a reader never pairs a pid with
    // another process's start time.
    let identity: &[&str] = match owner {
        Some(_) => &[],
        None => &format::IDENTITY_FILES,
    };
    let stale = format::REPORT_FILES
        .iter()
        .chain(&[format::TOMBSTONE])
        .chain(identity);
    for &name in stale {
        if present(name) && write::remove_at(dir, name).map_err(io(name))? {
            log::info!(
                "unit {}: removed stale {name} of a previous owner",
                unit.name()
            );
        }
    }
    match owner {
        Some(owner) => write_identity(unit, dir, owner, sync),
        None => Ok(()),
    }
}

/// Records `owner` as the unit's owner: `pid`, `starttime`, `pidns`. Alone
/// (without clearing anything) when `liveness run` hands the unit it
/// claimed for itself to its child.
pub(crate) fn write_identity(
    unit: &Unit,
    dir: BorrowedFd<'_>,
    owner: Target,
    sync: bool,
) -> Result<()> {
    let io = |name: &str| file_error(unit, name);
    // The owner's identity is three files, replaced in an order that never
    // shows a reader a pid paired with another process's start time (see
    // `read::owner`): the old start time goes first, the new one comes last.
    write::remove_at(dir, format::STARTTIME).map_err(io(format::STARTTIME))?;
    match proc::own_pidns() {
        Ok(ns) => write::write_at(dir, format::PIDNS, &format::format_number(ns), sync)
            .map_err(io(format::PIDNS))?,
        Err(_) => {
            write::remove_at(dir, format::PIDNS).map_err(io(format::PIDNS))?;
        }
    }
    write::write_at(
        dir,
        format::PID,
        &format::format_number(owner.pid.into()),
        sync,
    )
    .map_err(io(format::PID))?;
    write::write_at(
        dir,
        format::STARTTIME,
        &format::format_number(owner.starttime),
        sync,
    )
    .map_err(io(format::STARTTIME))?;
    Ok(())
}

/// Records that a handle of this process loaded the unit directory `key`;
/// refuses a second one, as a second process would be refused.
pub(crate) fn register(key: Key, unit: &Unit) -> Result<()> {
    let mut here = LOADED_HERE.lock().unwrap_or_else(PoisonError::into_inner);
    if here.contains(&key) {
        return Err(Error::busy(
            unit.name(),
            Some(std::process::id()),
            "already loaded by another handle in this process",
        ));
    }
    here.push(key);
    Ok(())
}

/// Forgets `key`: the handle that loaded it reset or failed.
pub(crate) fn unregister(key: Key) {
    LOADED_HERE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|k| *k != key);
}
