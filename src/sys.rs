//! Thin `io::Result` wrappers around the system calls the crate makes.
//!
//! Everything above this module is safe Rust that speaks `io::Result`. State
//! files are always reached relative to an open directory descriptor
//! (`openat`, `renameat`, `unlinkat`), never through a path that could be
//! swapped for a symlink between two calls, and opened with `O_NOFOLLOW`.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;

/// Mode of every directory we create: state must be readable by a probe that
/// runs as another user.
pub(crate) const DIR_MODE: u32 = 0o755;
/// Mode of every file we create.
pub(crate) const FILE_MODE: u32 = 0o644;

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits as nix::libc::mode_t)
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from(e)
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

/// Creates `name` in `dir` exclusively for writing, mode 0644 whatever the
/// umask.
pub(crate) fn create_excl_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode(FILE_MODE),
    )
    .map_err(io_err)?;
    fchmod(&fd, FILE_MODE)?;
    Ok(File::from(fd))
}

/// Creates `name` in `dir` exclusively and opens it for reading only, mode
/// 0644 whatever the umask. Used for the lock file: `flock` needs no write
/// access, and a descriptor open for reading only does not keep the file
/// system from being remounted read-only.
pub(crate) fn create_lock_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
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

pub(crate) fn is_symlink(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
}

/// Flushes the directory entry changes of `dir` to stable storage.
pub(crate) fn fsync_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    nix::unistd::fsync(dir).map_err(io_err)
}

/// Reads `file` into `buf`. Returns `Ok(false)` when it holds more than
/// `limit` bytes.
pub(crate) fn read_limited(file: &mut File, buf: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    buf.clear();
    let n = file.take(limit as u64 + 1).read_to_end(buf)?;
    Ok(n <= limit)
}

/// Names in `dir`, without `.` and `..`.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
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
        out.push(OsStr::from_bytes(name).to_os_string());
    }
    Ok(out)
}

/// Milliseconds of `CLOCK_BOOTTIME`: the clock `/proc/uptime` shows, shared by
/// every container on the host and immune to wall-clock jumps.
pub(crate) fn boottime_ms() -> io::Result<u64> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map_err(io_err)?;
    Ok(ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000)
}

/// Milliseconds of `CLOCK_MONOTONIC_COARSE`: a few nanoseconds to read, a few
/// milliseconds of resolution; used only to rate-limit.
pub(crate) fn coarse_monotonic_ms() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE) {
        Ok(ts) => ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000,
        // Cannot fail on Linux; if it ever did, never rate-limit.
        Err(_) => 0,
    }
}

/// The kernel's host name (`uname(2)`).
pub(crate) fn hostname() -> io::Result<String> {
    let name = nix::unistd::gethostname().map_err(io_err)?;
    name.into_string()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "host name is not UTF-8"))
}

/// Whether a process with this pid exists (in our PID namespace), as far as
/// `kill(pid, 0)` can tell: `EPERM` means it exists but is not ours.
pub(crate) fn pid_exists(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// The text of an OS error without Rust's ` (os error N)` suffix, for
/// one-line messages.
pub(crate) fn error_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

// ---- Processes and signals (the supervisor, `terminate`, `wait`) ----

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

fn pid_t(pid: u32) -> io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Blocks `set` in the calling thread (threads spawned later inherit the
/// mask); the signals then wait in the kernel for a `signalfd` to read them.
pub(crate) fn block_signals(set: &SigSet) -> io::Result<()> {
    set.thread_block().map_err(io_err)
}

/// A non-blocking, close-on-exec `signalfd` for `set` (which must be
/// blocked).
pub(crate) fn signalfd(set: &SigSet) -> io::Result<nix::sys::signalfd::SignalFd> {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    SignalFd::with_flags(set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(io_err)
}

/// `prctl(PR_SET_CHILD_SUBREAPER, 1)`: orphaned descendants are re-parented
/// to us instead of to PID 1, so we can reap (and kill) them.
pub(crate) fn set_child_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io_err)
}

/// Sends `sig` to `pid`, or to the process group `pid` leads when `group`.
pub(crate) fn kill(pid: u32, sig: Signal, group: bool) -> io::Result<()> {
    let p = pid_t(pid)?;
    if group {
        nix::sys::signal::killpg(p, sig).map_err(io_err)
    } else {
        nix::sys::signal::kill(p, sig).map_err(io_err)
    }
}

/// `kill(-1, SIGKILL)`: every process we may signal but ourselves. Only
/// PID 1 of a PID namespace calls it, where that means "everything else in
/// the namespace".
pub(crate) fn kill_all_but_self() {
    let _ = nix::sys::signal::kill(Pid::from_raw(-1), Signal::SIGKILL);
}

/// How a reaped process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    Code(u8),
    Signal(i32),
}

/// `waitpid(-1, WNOHANG)` (or blocking): `Ok(None)` when no child has
/// changed state, `Err` with `ECHILD` when there are no children left.
pub(crate) fn reap_any(block: bool) -> io::Result<Option<(u32, Ended)>> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let flags = if block {
        WaitPidFlag::empty()
    } else {
        WaitPidFlag::WNOHANG
    };
    loop {
        match waitpid(Pid::from_raw(-1), Some(flags)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                return Ok(Some((pid.as_raw() as u32, Ended::Code(code as u8))));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                return Ok(Some((pid.as_raw() as u32, Ended::Signal(sig as i32))));
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            // Stopped/continued are not reported without WUNTRACED.
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(io_err(e)),
        }
    }
}

/// `pidfd_open(2)`: a descriptor that names exactly one process, immune to
/// pid reuse.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let p = pid_t(pid)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, p.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(2)`: signals the process the descriptor names, never
/// a process that reused its pid.
pub(crate) fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: Signal) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call; a null
    // siginfo pointer is allowed and means "as kill(2) would".
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig as i32,
            std::ptr::null::<nix::libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout_ms` (-1: forever) until one of `fds` is readable.
/// Returns which ones are.
pub(crate) fn poll_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<bool>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    let timeout = if timeout_ms < 0 {
        PollTimeout::NONE
    } else {
        PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::MAX)
    };
    match nix::poll::poll(&mut pfds, timeout) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(e) => return Err(io_err(e)),
    }
    Ok(pfds
        .iter()
        .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
        .collect())
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io_err)
}

/// The signal's name (`SIGTERM`), `SIGRTMIN+N` for a real-time signal.
pub(crate) fn signal_name(n: i32) -> String {
    match Signal::try_from(n) {
        Ok(s) => s.as_str().to_owned(),
        Err(_) => {
            let min = nix::libc::SIGRTMIN();
            if n >= min {
                format!("SIGRTMIN+{}", n - min)
            } else {
                format!("SIG{n}")
            }
        }
    }
}

/// Runs in a child of `liveness run` between `fork` and `exec` (a
/// `pre_exec` hook), so it makes async-signal-safe system calls only: it
/// closes its copy of the release pipe's write end, unblocks every signal,
/// asks for SIGKILL if the supervisor dies, writes its pid to `pid_w`, then
/// blocks until the supervisor has recorded it and writes one byte to the
/// release pipe. A closed release pipe (the supervisor failed) aborts the
/// exec with `ECANCELED`.
pub(crate) fn gate_in_child(pid_w: i32, rel_r: i32, rel_w: i32) -> io::Result<()> {
    use nix::libc;
    let cancel = || io::Error::from_raw_os_error(libc::ECANCELED);
    // SAFETY: each call is an async-signal-safe system call on descriptors
    // this process owns (inherited through fork) and on stack buffers that
    // outlive the call; nothing allocates or takes a lock.
    unsafe {
        libc::close(rel_w);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        let pid = libc::getpid().to_ne_bytes();
        if libc::write(pid_w, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
            return Err(cancel());
        }
        libc::close(pid_w);
        let mut byte = [0u8; 1];
        loop {
            let n = libc::read(rel_r, byte.as_mut_ptr().cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(cancel());
        }
        libc::close(rel_r);
    }
    Ok(())
}

/// Raises a listening socket's accept backlog: std listens with 128, too
/// few for a burst of connections queued while every handler is busy.
/// Calling `listen(2)` again on a listening socket only changes the
/// backlog; the kernel caps it at `net.core.somaxconn`.
#[cfg(feature = "http")]
pub(crate) fn set_backlog(listener: &std::net::TcpListener, backlog: i32) -> io::Result<()> {
    let backlog = nix::sys::socket::Backlog::new(backlog).map_err(io_err)?;
    nix::sys::socket::listen(listener, backlog).map_err(io_err)
}
