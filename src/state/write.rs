//! Atomic replacement of one state file.
//!
//! A new value is written to `.tmp.<pid>.<seq>.<name>` in the same directory
//! and renamed over `<name>`. `rename(2)` within one directory is atomic: a
//! reader opens either the old inode or the new one, both complete. If the
//! writer dies between the two steps, only the temporary file is left, and
//! the next `load` removes it (its name says which pid made it).
//!
//! Durability is a separate question. By default nothing is flushed: `/run`
//! is a tmpfs, which does not survive a reboot whatever we do, and `fsync`
//! would only cost time. With `sync` the file is flushed before the rename
//! and the directory after it, so the new value survives a power loss on a
//! disk-backed volume.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::stat::FileStat;

use crate::os::{fs, process};
use crate::state::format::TMP_PREFIX;

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Replaces `name` in `dir` with `bytes`, atomically.
pub(crate) fn write_at(
    dir: BorrowedFd<'_>,
    name: &str,
    bytes: &[u8],
    sync: bool,
) -> io::Result<()> {
    replace(dir, name, bytes, sync, false).map(drop)
}

/// The inode a write put in place, held open (read-only, so it neither
/// keeps the file system from being remounted read-only nor lets its
/// inode number be reused), with its status right after the rename.
#[derive(Debug)]
pub(crate) struct Pinned {
    #[allow(dead_code)] // held, not read: it pins the inode
    file: File,
    pub stamp: Stamp,
}

/// What identifies one version of one file: a rewrite in place changes
/// the times or the size, a replacement changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: nix::libc::dev_t,
    ino: nix::libc::ino_t,
    size: nix::libc::off_t,
    mtime: (nix::libc::time_t, nix::libc::c_long),
    ctime: (nix::libc::time_t, nix::libc::c_long),
}

impl Stamp {
    pub(crate) fn of(st: &FileStat) -> Stamp {
        Stamp {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

/// [`write_at`], keeping the new inode pinned. `Ok(None)`: written, but
/// not pinned (it could not be reopened, or changed between the write and
/// the rename): the caller must not assume what the disk holds.
pub(crate) fn write_pinned_at(
    dir: BorrowedFd<'_>,
    name: &str,
    bytes: &[u8],
    sync: bool,
) -> io::Result<Option<Pinned>> {
    replace(dir, name, bytes, sync, true)
}

fn replace(
    dir: BorrowedFd<'_>,
    name: &str,
    bytes: &[u8],
    sync: bool,
    pin: bool,
) -> io::Result<Option<Pinned>> {
    let pid = std::process::id();
    let (tmp, mut file) = loop {
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let tmp = format!("{TMP_PREFIX}{pid}.{seq}.{name}");
        match fs::create_excl_at(dir, &tmp) {
            Ok(f) => break (tmp, f),
            // A leftover of a dead process that had our pid: take the next
            // sequence number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let mut reader = None;
    let result = file
        .write_all(bytes)
        .and_then(|()| if sync { file.sync_all() } else { Ok(()) })
        .and_then(|()| {
            let written = fs::fstat(&file)?;
            // Made under a restrictive umask: widen it, so that probes
            // running as another user can read it.
            if written.st_mode & 0o7777 != fs::FILE_MODE as nix::libc::mode_t {
                fs::fchmod(&file, fs::FILE_MODE)?;
            }
            if pin {
                // Our own temporary file, in a directory only we may
                // write: reopened read-only, and checked below to be the
                // very inode we wrote.
                reader = fs::open_read_at(dir, &tmp).ok().map(|r| (r, written));
            }
            drop(file);
            fs::rename_at(dir, &tmp, name)
        })
        .and_then(|()| if sync { fs::fsync_dir(dir) } else { Ok(()) });
    if let Err(e) = result {
        // Leave the previous value alone; only our temporary file goes.
        let _ = fs::unlink_at(dir, &tmp);
        return Err(e);
    }
    Ok(reader.and_then(|(file, written)| {
        let now = fs::fstat(&file).ok()?;
        let (w, n) = (Stamp::of(&written), Stamp::of(&now));
        // The rename changes the ctime; nothing else may have changed.
        (w.dev == n.dev && w.ino == n.ino && w.size == n.size && w.mtime == n.mtime)
            .then_some(Pinned { file, stamp: n })
    }))
}

/// What a writer can prove a state file on disk holds.
///
/// The cache may skip a write only when a stat of the file proves it is
/// still the very inode this handle wrote (pinned open, so its number
/// cannot be reused), unchanged since (same size and times; a rewrite in
/// place moves the times), or still absent after this handle removed it.
/// Anything else — a helper process's `liveness set`, a supervisor's
/// `--ready-on-start`, a handle that attached or opened — is unknown, and
/// the next call writes.
#[derive(Debug)]
pub(crate) enum Known {
    /// Nothing is proven: write.
    Unknown,
    /// We wrote `bytes` into the pinned inode.
    Written { bytes: Vec<u8>, pinned: Pinned },
    /// We removed the file.
    Absent,
}

impl Known {
    /// Whether the file `name` in `dir` provably holds `want` (`None`:
    /// provably absent): one `fstatat`, or none when `quiet` (nothing in
    /// the directory changed since this was last proven).
    pub(crate) fn proves(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        want: Option<&[u8]>,
        quiet: bool,
    ) -> bool {
        match (self, want) {
            (Known::Written { bytes, pinned }, Some(want)) if bytes.as_slice() == want => {
                quiet || fs::lstat_at(dir, name).is_ok_and(|st| Stamp::of(&st) == pinned.stamp)
            }
            (Known::Absent, None) => {
                quiet
                    || matches!(fs::lstat_at(dir, name), Err(e) if e.kind() == io::ErrorKind::NotFound)
            }
            _ => false,
        }
    }

    /// What a successful write of `bytes` leaves proven.
    pub(crate) fn written(bytes: &[u8], pinned: Option<Pinned>) -> Known {
        match pinned {
            Some(pinned) => Known::Written {
                bytes: bytes.to_vec(),
                pinned,
            },
            None => Known::Unknown,
        }
    }
}

/// Replaces `name` in `dir` by removing it, then renaming the new content
/// into the free name: for files whose readers take "none yet" as "not
/// yet" (the tombstone). A rename over an existing file makes ext4 start
/// writing the new file out at once (`auto_da_alloc`, its guard against
/// zero-length files after a crash), and the next `unlink` of that inode
/// waits for the disk: a millisecond each. Readers see the old content,
/// then for an instant no file, then the new content — never a partial one.
pub(crate) fn replace_fresh(dir: BorrowedFd<'_>, name: &str, bytes: &[u8]) -> io::Result<()> {
    remove_at(dir, name)?;
    write_at(dir, name, bytes, false)
}

/// Removes `name` from `dir`; a file that is already gone is not an error.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    match fs::unlink_at(dir, name) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes temporary files left by writers that are no longer running.
/// Returns how many were removed.
#[cfg(test)]
pub(crate) fn remove_stale_temps(dir: BorrowedFd<'_>) -> io::Result<usize> {
    remove_stale_temps_in(dir, &fs::list_dir(dir)?)
}

/// [`remove_stale_temps`] on a listing of `dir` the caller already made.
pub(crate) fn remove_stale_temps_in(
    dir: BorrowedFd<'_>,
    names: &[std::ffi::OsString],
) -> io::Result<usize> {
    let mut removed = 0;
    for name in names {
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = crate::state::format::tmp_writer_pid(name) else {
            continue;
        };
        if pid != std::process::id() && process::pid_exists(pid) {
            continue;
        }
        if remove_at(dir, name)? {
            log::debug!("removed stale temporary file {name}");
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn dir() -> (tempfile::TempDir, std::os::fd::OwnedFd) {
        let t = tempfile::tempdir().unwrap();
        let fd = fs::open_dir(t.path()).unwrap();
        (t, fd)
    }

    /// A write replaces the whole file, leaves no temporary file behind and
    /// makes it 0644 whatever the umask.
    #[test]
    fn write_replaces_and_cleans_up() {
        use std::os::unix::fs::PermissionsExt;
        let (t, fd) = dir();
        write_at(fd.as_fd(), "error", b"3\n", false).unwrap();
        write_at(fd.as_fd(), "error", b"0\n", true).unwrap();
        assert_eq!(std::fs::read(t.path().join("error")).unwrap(), b"0\n");
        let names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["error"]);
        let mode = std::fs::metadata(t.path().join("error"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    /// A symlink planted where a state file belongs is replaced, never
    /// written through.
    #[test]
    fn write_never_follows_a_symlink() {
        let (t, fd) = dir();
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, t.path().join("error")).unwrap();
        write_at(fd.as_fd(), "error", b"1\n", false).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(t.path().join("error")).unwrap(), b"1\n");
    }

    /// Temporary files of dead writers are removed; those of live writers
    /// and unrelated files stay.
    #[test]
    fn stale_temps_of_dead_writers_are_removed() {
        let (t, fd) = dir();
        let dead = format!("{TMP_PREFIX}{}.0.error", i32::MAX);
        let live = format!("{TMP_PREFIX}1.0.error");
        for n in [&dead, &live, &"pid".to_string()] {
            std::fs::write(t.path().join(n), b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(fd.as_fd()).unwrap(), 1);
        assert!(!t.path().join(&dead).exists());
        assert!(t.path().join(&live).exists());
        assert!(t.path().join("pid").exists());
    }

    /// Removing a missing file is not an error.
    #[test]
    fn remove_missing_is_ok() {
        let (_t, fd) = dir();
        assert!(!remove_at(fd.as_fd(), "ready").unwrap());
    }
}
