//! Files and directories. State files are always reached relative to an
//! open directory descriptor (`openat`, `renameat`, `unlinkat`), never
//! through a path that could be swapped for a symlink between two calls,
//! and opened with `O_NOFOLLOW`.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;

use super::io_err;

/// Mode of every directory we create: state must be readable by a probe that
/// runs as another user.
pub(crate) const DIR_MODE: u32 = 0o755;
/// Mode of every file we create.
pub(crate) const FILE_MODE: u32 = 0o644;

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits as nix::libc::mode_t)
}

/// Opens a directory by path without following a symlink in its last
/// component.
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err)
}

/// Opens the directory `name` inside `dir`, refusing symlinks.
pub(crate) fn open_dir_at<P: ?Sized + nix::NixPath>(
    dir: BorrowedFd<'_>,
    name: &P,
) -> io::Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err)
}

/// Creates the directory `name` inside `dir` (mode 0755 before the umask;
/// see [`create_dir_at`] for one that is 0755 whatever the umask).
/// `AlreadyExists` is returned as an error for the caller to judge.
pub(crate) fn mkdir_at<P: ?Sized + nix::NixPath>(dir: BorrowedFd<'_>, name: &P) -> io::Result<()> {
    nix::sys::stat::mkdirat(dir, name, mode(DIR_MODE)).map_err(io_err)
}

/// Creates the directory `name` inside `dir` and opens it, mode 0755
/// whatever the umask: the mode is set through the descriptor of the
/// directory just made, and only when it is still the one we made (ours,
/// not a symlink swapped in). `Ok(None)` when `name` already exists: not
/// ours to change.
pub(crate) fn create_dir_at<P: ?Sized + nix::NixPath>(
    dir: BorrowedFd<'_>,
    name: &P,
) -> io::Result<Option<OwnedFd>> {
    match mkdir_at(dir, name) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e),
    }
    let fd = open_dir_at(dir, name)?;
    let st = fstat(&fd)?;
    if st.st_uid == euid() && st.st_mode & 0o7777 != DIR_MODE as nix::libc::mode_t {
        fchmod(&fd, DIR_MODE)?;
    }
    Ok(Some(fd))
}

/// Sets the permission bits of an open file or directory.
pub(crate) fn fchmod(fd: impl AsFd, bits: u32) -> io::Result<()> {
    nix::sys::stat::fchmod(fd, mode(bits)).map_err(io_err)
}

/// The effective uid of this process.
pub(crate) fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Opens `name` in `dir` for reading: no symlinks, no blocking on a FIFO, no
/// controlling terminal. The caller must still check that it is a regular
/// file.
pub(crate) fn open_read_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(io_err)
}

/// Creates `name` in `dir` exclusively for writing, never through a
/// symlink, with mode 0644 minus the umask: the caller, which `fstat`s it
/// anyway, widens it to [`FILE_MODE`] when the umask took bits away.
pub(crate) fn create_excl_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode(FILE_MODE),
    )
    .map(File::from)
    .map_err(io_err)
}

/// Creates `name` in `dir` exclusively and opens it for reading only, mode
/// 0644 whatever the umask. Used for the lock file: `flock` needs no write
/// access, and a descriptor open for reading only does not keep the file
/// system from being remounted read-only.
pub(crate) fn create_lock_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    create_new_at(dir, name, OFlag::O_RDONLY)
}

/// Creates `name` in `dir` exclusively, never through a symlink, opened
/// with `access`, and makes it 0644 whatever the umask.
fn create_new_at(dir: BorrowedFd<'_>, name: &str, access: OFlag) -> io::Result<File> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        access | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode(FILE_MODE),
    )
    .map_err(io_err)?;
    fchmod(&fd, FILE_MODE)?;
    Ok(File::from(fd))
}

/// Atomically replaces `to` with `from`, both in `dir`.
pub(crate) fn rename_at(dir: BorrowedFd<'_>, from: &str, to: &str) -> io::Result<()> {
    nix::fcntl::renameat(dir, from, dir, to).map_err(io_err)
}

/// Removes the file `name` from `dir`.
pub(crate) fn unlink_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(io_err)
}

/// `lstat` relative to `dir`.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<FileStat> {
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io_err)
}

/// `fstat` of an open descriptor.
pub(crate) fn fstat(fd: impl AsFd) -> io::Result<FileStat> {
    nix::sys::stat::fstat(fd).map_err(io_err)
}

pub(crate) fn is_regular(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

pub(crate) fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

pub(crate) fn is_symlink(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
}

/// Flushes the directory entry changes of `dir` to stable storage.
pub(crate) fn fsync_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    nix::unistd::fsync(dir).map_err(io_err)
}

/// Reads the regular file `file`, whose `fstat` gave `size` bytes, into
/// `buf`. Returns `Ok(false)` when it holds more than `limit` bytes.
///
/// One `read(2)` in the common case: it asks for one byte more than
/// `size`, and a regular file returns fewer only at its end. A file that
/// grew since the `fstat` is read on, still bounded by `limit`; one whose
/// size is already over `limit` is not read at all.
pub(crate) fn read_limited(
    file: &mut File,
    size: u64,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<bool> {
    buf.clear();
    if size > limit as u64 {
        return Ok(false);
    }
    let want = size as usize + 1;
    buf.resize(want, 0);
    let n = loop {
        match file.read(buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    buf.truncate(n);
    if n < want {
        return Ok(true);
    }
    let n = n + file.take((limit + 1 - n) as u64).read_to_end(buf)?;
    Ok(n <= limit)
}

/// Names in `dir`, without `.` and `..`.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    Ok(list_dir_kinds(dir)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// Names in `dir`, without `.` and `..`, each with whether its directory
/// entry says it is a directory: `None` when the file system does not say
/// (`DT_UNKNOWN`), so no `stat` is needed to tell.
pub(crate) fn list_dir_kinds(
    dir: BorrowedFd<'_>,
) -> io::Result<Vec<(std::ffi::OsString, Option<bool>)>> {
    use std::os::unix::ffi::OsStrExt;
    let fd = nix::fcntl::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err)?;
    let mut d = nix::dir::Dir::from_fd(fd).map_err(io_err)?;
    let mut out = Vec::new();
    for entry in d.iter() {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let is_dir = entry.file_type().map(|t| t == nix::dir::Type::Directory);
        out.push((OsStr::from_bytes(name).to_os_string(), is_dir));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, bytes).unwrap();
        let f = File::open(&p).unwrap();
        (t, f)
    }

    /// A file read with the size its `fstat` gave, whatever happened to it
    /// since: the whole of it when it fits the limit, never more than the
    /// limit plus one byte, and "too large" for a size already over it.
    #[test]
    fn read_limited_trusts_no_size_it_was_given() {
        // (content, size hint, limit, fits, bytes read)
        let table: [(&[u8], u64, usize, bool, usize); 6] = [
            (b"1234\n", 5, 64, true, 5),       // the common case
            (b"", 0, 64, true, 0),             // empty
            (b"1234\n", 2, 64, true, 5),       // grew since the stat
            (b"12\n", 9, 64, true, 3),         // shrank since the stat
            (&[b'7'; 100], 10, 64, false, 65), // grew past the limit
            (b"1234\n", 65, 64, false, 0),     // over the limit: not read
        ];
        for (content, size, limit, fits, read) in table {
            let (_t, mut f) = file(content);
            let mut buf = Vec::new();
            let got = read_limited(&mut f, size, &mut buf, limit).unwrap();
            assert_eq!((got, buf.len()), (fits, read), "{content:?} size {size}");
            if fits {
                assert_eq!(buf, content);
            }
        }
    }
}
