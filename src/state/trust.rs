//! Who may be believed: the trust rules of `doc/state-format.md` (*Trust*).
//!
//! In Kubernetes an `emptyDir` is mode 0777, and `/tmp` and `/dev/shm` are
//! 1777: another user may create a unit directory before us, or plant files
//! in one. So:
//!
//! - a **writer** (`load`, `run`, `open`, and the CLI commands built on
//!   them) writes only into a unit directory owned by its own effective uid
//!   that no one else may write; inside it, a file that is not its own
//!   (another owner, or more than one link) is replaced, never chmod-ed or
//!   written through;
//! - an **actor** (`terminate`, `wait`, birth and death dependencies) acts
//!   only on state that no untrusted user could have written: every file it
//!   reads and the directory itself owned by our effective uid or by root
//!   (for `terminate`, also by the target process's own uid), not writable
//!   by group or others, regular files with exactly one link;
//! - **readers** (probes, `status`, HTTP) judge what is there: they cannot
//!   know whom to expect.
//!
//! Every directory we create, the run directory's missing parents
//! included, is 0755 whatever the umask.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::stat::FileStat;

use crate::error::{Error, ErrorKind, Result};
use crate::os::fs;
use crate::state::format;
use crate::state::unit::Unit;
use crate::vocab::text;

/// The files an actor may read: each must be trusted when present.
const ACTOR_FILES: [&str; 9] = [
    format::PID,
    format::STARTTIME,
    format::PIDNS,
    format::LOCK,
    format::ERROR,
    format::MESSAGE,
    format::READY,
    format::HEARTBEAT,
    format::TOMBSTONE,
];

/// Permission bits that let someone other than the owner write.
const GROUP_OTHER_WRITE: nix::libc::mode_t = 0o022;

fn mode_of(st: &FileStat) -> nix::libc::mode_t {
    st.st_mode & 0o7777
}

/// Whether a file in our own unit directory is ours to keep, chmod or
/// lock: owned by our effective uid, with no other name (a hard link
/// elsewhere would make a chmod, or a write through it, reach another
/// file).
pub(crate) fn is_own_file(st: &FileStat) -> bool {
    st.st_uid == fs::euid() && st.st_nlink == 1
}

/// A writer's test of the unit directory it is about to write into: it
/// must be owned by our effective uid and not writable by group or others.
///
/// # Errors
///
/// [`ErrorKind::Corrupt`], naming the path, its owner and mode, and what to
/// do; [`ErrorKind::Io`] when it cannot be examined.
pub(crate) fn writer_dir(unit: &Unit, dir: BorrowedFd<'_>) -> Result<()> {
    let path = unit.dir();
    let st = fs::fstat(dir).map_err(|e| Error::io(&path, e))?;
    let me = fs::euid();
    let mode = mode_of(&st);
    if st.st_uid == me && mode & GROUP_OTHER_WRITE == 0 {
        return Ok(());
    }
    let why = if st.st_uid == me {
        "writable by group or others"
    } else {
        "owned by another user"
    };
    Err(Error::new(
        ErrorKind::Corrupt,
        path.display().to_string(),
        format!(
            "unit directory {why} (owner uid {}, mode {mode:04o}); this process (uid {me}) \
             writes state only into a directory it owns that no one else can write: \
             remove it, or chown it to uid {me} and chmod it 0755",
            st.st_uid
        ),
    ))
}

/// An actor's test of a unit's state: the directory and every state file
/// present must be owned by our effective uid, root or one of `also`, not
/// writable by group or others, and (regular files) have one link.
///
/// # Errors
///
/// The first untrusted path, its owner and mode, as one line.
pub(crate) fn actor(
    unit: &Unit,
    dir: BorrowedFd<'_>,
    also: &[u32],
) -> std::result::Result<(), String> {
    let judge = |path: &Path, st: &FileStat| actor_file(path, st, also);
    let st = fs::fstat(dir).map_err(|e| format!("{}: {}", unit.dir().display(), e))?;
    judge(&unit.dir(), &st)?;
    for name in ACTOR_FILES {
        match fs::lstat_at(dir, name) {
            Ok(st) => judge(&unit.file(name), &st)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "untrusted state: {}: {}",
                    unit.file(name).display(),
                    text::error_text(&e)
                ));
            }
        }
    }
    Ok(())
}

/// An actor's test of one file (or directory) it is about to act on, given
/// its `lstat`: owned by our effective uid, root or one of `also`, not
/// writable by group or others, and (a regular file) one link.
///
/// # Errors
///
/// `path`, why it is not trusted, its owner and mode, as one line.
pub(crate) fn actor_file(
    path: &Path,
    st: &FileStat,
    also: &[u32],
) -> std::result::Result<(), String> {
    let me = fs::euid();
    let mode = mode_of(st);
    let why = if st.st_uid != me && st.st_uid != 0 && !also.contains(&st.st_uid) {
        "owned by an untrusted user"
    } else if !fs::is_symlink(st) && mode & GROUP_OTHER_WRITE != 0 {
        "writable by group or others"
    } else if fs::is_regular(st) && st.st_nlink != 1 {
        "has more than one link"
    } else {
        return Ok(());
    };
    let links = if fs::is_regular(st) {
        format!(", {} links", st.st_nlink)
    } else {
        String::new()
    };
    Err(format!(
        "untrusted state: {} {why} (owner uid {}, mode {mode:04o}{links}); \
         only uid {me} or root may write what this command acts on",
        path.display(),
        st.st_uid,
    ))
}

/// Creates `path` and its missing parents, each 0755 whatever the umask.
/// Directories that already exist are left as they are: not ours to
/// change. Symlinks in the path are followed: the run directory is
/// configuration (`/var/run` → `/run`), not state.
///
/// # Errors
///
/// The first directory that cannot be created or opened.
pub(crate) fn create_dirs(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => return Err(io::Error::from_raw_os_error(nix::libc::ENOTDIR)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        // `/`, or a path ending in `..`: nothing we could name to create.
        return Err(io::Error::from_raw_os_error(nix::libc::ENOENT));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    create_dirs(parent)?;
    let parent_fd = open_configured_dir(parent)?;
    fs::create_dir_at(parent_fd.as_fd(), name).map(drop)
}

/// Opens a directory named by configuration (the run directory or one of
/// its parents), following a symlink to it.
pub(crate) fn open_configured_dir(path: &Path) -> io::Result<OwnedFd> {
    fs::open_dir(path).or_else(|e| match e.raw_os_error() {
        Some(nix::libc::ELOOP) => std::fs::File::open(path).map(OwnedFd::from),
        _ => Err(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Missing parents are created 0755 under the strictest umask; an
    /// existing directory keeps its mode.
    #[test]
    fn create_dirs_ignores_the_umask() {
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let deep = t.path().join("a/b/c");
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        let made = create_dirs(&deep);
        nix::sys::stat::umask(old);
        made.unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            let mode = std::fs::metadata(t.path().join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o755, "{d}");
        }
        let mode = std::fs::metadata(t.path()).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o7777,
            0o700,
            "an existing directory is not ours to change"
        );
        create_dirs(&deep).unwrap();
    }

    /// A file in the way is refused, not replaced.
    #[test]
    fn create_dirs_refuses_a_file_in_the_way() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"").unwrap();
        assert!(create_dirs(&t.path().join("f/sub")).is_err());
        assert!(create_dirs(&t.path().join("f")).is_err());
    }

    /// A group-writable unit directory of our own is refused by a writer and
    /// by an actor; fixed, both accept it.
    #[test]
    fn group_writable_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let unit = Unit::new("u", t.path()).unwrap();
        std::fs::create_dir(unit.dir()).unwrap();
        std::fs::set_permissions(unit.dir(), std::fs::Permissions::from_mode(0o775)).unwrap();
        let fd = fs::open_dir(&unit.dir()).unwrap();
        let err = writer_dir(&unit, fd.as_fd()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert!(err.to_string().contains("mode 0775"), "{err}");
        assert!(
            actor(&unit, fd.as_fd(), &[])
                .unwrap_err()
                .contains("mode 0775")
        );
        std::fs::set_permissions(unit.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        writer_dir(&unit, fd.as_fd()).unwrap();
        actor(&unit, fd.as_fd(), &[]).unwrap();
    }

    /// A state file with a second link is untrusted for an actor.
    #[test]
    fn hard_linked_state_is_untrusted() {
        let t = tempfile::tempdir().unwrap();
        let unit = Unit::new("u", t.path()).unwrap();
        std::fs::create_dir(unit.dir()).unwrap();
        std::fs::write(unit.file("pid"), b"1\n").unwrap();
        let fd = fs::open_dir(&unit.dir()).unwrap();
        actor(&unit, fd.as_fd(), &[]).unwrap();
        std::fs::hard_link(unit.file("pid"), t.path().join("elsewhere")).unwrap();
        let why = actor(&unit, fd.as_fd(), &[]).unwrap_err();
        assert!(why.contains("more than one link"), "{why}");
    }
}
