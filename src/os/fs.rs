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
use std::time::Duration;

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

/// Reads `file` into `buf`. Returns `Ok(false)` when it holds more than
/// `limit` bytes.
pub(crate) fn read_limited(file: &mut File, buf: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    buf.clear();
    let n = file.take(limit as u64 + 1).read_to_end(buf)?;
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

/// The signals a supervisor must leave alone, as tini does: the
/// synchronous fault signals (a fault of the supervisor itself must kill it
/// now, not wait in a queue) and SIGTTIN/SIGTTOU (ignored instead, see
/// [`SupervisorSignals::take`]).
const NOT_FORWARDED: [i32; 9] = [
    nix::libc::SIGFPE,
    nix::libc::SIGILL,
    nix::libc::SIGSEGV,
    nix::libc::SIGBUS,
    nix::libc::SIGABRT,
    nix::libc::SIGTRAP,
    nix::libc::SIGSYS,
    nix::libc::SIGTTIN,
    nix::libc::SIGTTOU,
];

/// What a supervisor changed in its signal handling, and what its child
/// must get back: the blocked mask and the dispositions of SIGTTIN,
/// SIGTTOU and SIGPIPE as they were. Plain C structures, so the child can
/// restore them between `fork` and `exec` without allocating.
#[derive(Clone, Copy)]
pub(crate) struct SupervisorSignals {
    /// The set blocked and read from the `signalfd`.
    pub taken: nix::libc::sigset_t,
    /// The calling thread's mask before.
    old_mask: nix::libc::sigset_t,
    old_ttin: nix::libc::sigaction,
    old_ttou: nix::libc::sigaction,
    /// SIGPIPE for the child: as when the process started (Rust's runtime
    /// ignores it before `main`), else the default.
    child_pipe: nix::libc::sighandler_t,
}

impl std::fmt::Debug for SupervisorSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SupervisorSignals")
    }
}

impl SupervisorSignals {
    /// Blocks every signal but the fault signals, SIGTTIN and SIGTTOU in
    /// the calling thread (threads spawned later inherit the mask; the
    /// signals then wait in the kernel for a `signalfd`), and ignores
    /// SIGTTIN and SIGTTOU, as tini does: the supervisor may lose the
    /// terminal to its child and must not be stopped for writing to it.
    pub(crate) fn take() -> io::Result<SupervisorSignals> {
        use nix::libc;
        use std::mem::MaybeUninit;
        // SAFETY: each call writes only into the local, properly sized
        // structures passed by pointer, which are initialised by
        // sigfillset/sigemptyset or by the kernel before being read;
        // SIG_IGN installs no handler code.
        unsafe {
            let mut taken = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
            libc::sigfillset(&mut taken);
            for s in NOT_FORWARDED {
                libc::sigdelset(&mut taken, s);
            }
            let mut old_mask = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
            let r = libc::pthread_sigmask(libc::SIG_SETMASK, &taken, &mut old_mask);
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            let mut ign = MaybeUninit::<libc::sigaction>::zeroed().assume_init();
            ign.sa_sigaction = libc::SIG_IGN;
            libc::sigemptyset(&mut ign.sa_mask);
            let mut old_ttin = MaybeUninit::<libc::sigaction>::zeroed().assume_init();
            let mut old_ttou = MaybeUninit::<libc::sigaction>::zeroed().assume_init();
            if libc::sigaction(libc::SIGTTIN, &ign, &mut old_ttin) != 0
                || libc::sigaction(libc::SIGTTOU, &ign, &mut old_ttou) != 0
            {
                return Err(io::Error::last_os_error());
            }
            let child_pipe = match SIGPIPE_AT_START.load(Ordering::Relaxed) {
                PIPE_IGNORED => libc::SIG_IGN,
                _ => libc::SIG_DFL,
            };
            Ok(SupervisorSignals {
                taken,
                old_mask,
                old_ttin,
                old_ttou,
                child_pipe,
            })
        }
    }

    /// The blocked set as a [`SigSet`], for the `signalfd`.
    pub(crate) fn set(&self) -> SigSet {
        // SAFETY: `taken` was initialised by sigfillset.
        unsafe { SigSet::from_sigset_t_unchecked(self.taken) }
    }
}

use std::sync::atomic::{AtomicU8, Ordering};

const PIPE_UNKNOWN: u8 = 0;
const PIPE_DEFAULT: u8 = 1;
const PIPE_IGNORED: u8 = 2;

/// SIGPIPE's disposition when the process started. Rust's runtime sets it
/// to `SIG_IGN` before `main`, and `std::process::Command` resets it to
/// `SIG_DFL` in every child: neither is what the process inherited, which
/// a supervised child should get (tini passes it through).
static SIGPIPE_AT_START: AtomicU8 = AtomicU8::new(PIPE_UNKNOWN);

/// Runs before Rust's runtime (an ELF constructor, as std itself uses to
/// read `argv`): records SIGPIPE's disposition.
extern "C" fn record_sigpipe() {
    use nix::libc;
    // SAFETY: a null new action only queries; the kernel writes the old
    // one into a zeroed local structure.
    let old = unsafe {
        let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed().assume_init();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) != 0 {
            return;
        }
        old
    };
    let v = if old.sa_sigaction == libc::SIG_IGN {
        PIPE_IGNORED
    } else {
        PIPE_DEFAULT
    };
    SIGPIPE_AT_START.store(v, Ordering::Relaxed);
}

#[used]
// SAFETY: `.init_array` (priority 98: before std's own at 99) holds
// pointers to functions the C runtime calls once, before `main`, with
// (argc, argv, envp), which a function taking no arguments ignores under
// the C calling convention; `record_sigpipe` only
// queries one signal disposition and stores an atomic.
#[unsafe(link_section = ".init_array.00098")]
static RECORD_SIGPIPE: extern "C" fn() = record_sigpipe;

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

/// Sends signal number `signo` (any, real-time ones included) to `pid`, or
/// to the process group `pid` leads when `group`.
pub(crate) fn kill_raw(pid: u32, signo: i32, group: bool) -> io::Result<()> {
    let p = pid_t(pid)?.as_raw();
    let target = if group { -p } else { p };
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { nix::libc::kill(target, signo) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
    let fds: Vec<(BorrowedFd<'_>, bool)> = fds.iter().map(|fd| (*fd, false)).collect();
    poll_ready(&fds, timeout_ms)
}

/// Waits up to `timeout_ms` (-1: forever) until one of `fds` is ready:
/// readable, or writable where its flag is `true`; an error or hang-up
/// counts as ready (the next read or write reports it). Returns which are.
pub(crate) fn poll_ready(fds: &[(BorrowedFd<'_>, bool)], timeout_ms: i32) -> io::Result<Vec<bool>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|(fd, write)| {
            let events = if *write {
                PollFlags::POLLOUT
            } else {
                PollFlags::POLLIN
            };
            PollFd::new(*fd, events)
        })
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

/// Runs in a child of `liveness run` between `fork` and `exec` (a
/// `pre_exec` hook), so it makes async-signal-safe system calls only: it
/// closes its copy of the release pipe's write end, gives back the signal
/// mask and the SIGTTIN, SIGTTOU and SIGPIPE dispositions the supervisor
/// had before it took its signals (`std` cleared the mask and reset SIGPIPE
/// before this hook runs), asks for SIGKILL if the supervisor dies, writes
/// its pid to `pid_w`, then blocks until the supervisor has recorded it and
/// writes one byte to the release pipe. A closed release pipe (the
/// supervisor failed) aborts the exec with `ECANCELED`.
pub(crate) fn gate_in_child(
    pid_w: i32,
    rel_r: i32,
    rel_w: i32,
    signals: &SupervisorSignals,
) -> io::Result<()> {
    use nix::libc;
    let cancel = || io::Error::from_raw_os_error(libc::ECANCELED);
    // SAFETY: each call is an async-signal-safe system call on descriptors
    // this process owns (inherited through fork) and on structures that
    // outlive the call; nothing allocates or takes a lock.
    unsafe {
        libc::close(rel_w);
        libc::pthread_sigmask(libc::SIG_SETMASK, &signals.old_mask, std::ptr::null_mut());
        libc::sigaction(libc::SIGTTIN, &signals.old_ttin, std::ptr::null_mut());
        libc::sigaction(libc::SIGTTOU, &signals.old_ttou, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, signals.child_pipe);
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

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to `want`, or to the
/// hard limit if that is lower, when it is below; never lowers it. Returns
/// the soft limit in force afterwards (the old one if raising failed).
#[cfg(feature = "http")]
pub(crate) fn raise_open_files(want: u64) -> io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io_err)?;
    let target = want.min(hard);
    if target <= soft {
        return Ok(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => Ok(target),
        Err(_) => Ok(soft),
    }
}

// ---- Start-up and last words of the `liveness` binary ----
//
// The binary compiles this module too (`#[path]` in src/bin/liveness/main.rs): it cannot
// see the library's private items, and its system calls go through here as
// well. What follows is for a process that must end on time whatever its
// readers do: no call below waits for a reader, allocates, or takes a lock,
// so each may run in a signal handler.

/// What std's runtime does before `main` and `liveness` still needs: file
/// descriptors 0, 1 and 2 open (on `/dev/null` when they were closed), so
/// that no file opened later becomes "stdout" and receives a message. One
/// `poll` when all three are open.
#[allow(dead_code)] // the binary's (src/bin/liveness/main.rs)
pub(crate) fn open_standard_fds() {
    use nix::libc;
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll reads and writes the three pollfd structures only, which
    // outlive the call; a timeout of 0 never blocks.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0;
    for p in fds {
        let closed = if polled {
            p.revents & libc::POLLNVAL != 0
        } else {
            // SAFETY: F_GETFD only reads the descriptor table.
            let flags = unsafe { libc::fcntl(p.fd, libc::F_GETFD) };
            flags < 0
        };
        if closed {
            // The lowest free descriptor is `p.fd`: 0, 1, 2 are done in order.
            let _ = nix::fcntl::open(c"/dev/null", OFlag::O_RDWR, Mode::empty())
                .map(std::os::fd::IntoRawFd::into_raw_fd);
        }
    }
}

/// Writes to a pipe whose reader has gone fail with `EPIPE` instead of
/// killing the process with `SIGPIPE`, as in any Rust program: the exit
/// code must say what happened, whatever the reader did.
#[allow(dead_code)] // the binary's (src/bin/liveness/main.rs)
pub(crate) fn ignore_sigpipe() {
    use nix::sys::signal::{SigHandler, signal};
    // SAFETY: SIG_IGN installs no code of ours to run in signal context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// The command line as the C runtime passed it to `main` (without relying
/// on std's runtime, which the binary does not start).
///
/// # Safety
///
/// `argv` must hold `argc` pointers to NUL-terminated strings that live for
/// the whole process, as `main`'s arguments do.
#[allow(dead_code)] // the binary's (src/bin/liveness/main.rs)
pub(crate) unsafe fn args_from_main(
    argc: nix::libc::c_int,
    argv: *const *const nix::libc::c_char,
) -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt;
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            // SAFETY: the caller guarantees argc valid, NUL-terminated
            // strings in argv.
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            OsStr::from_bytes(arg.to_bytes()).to_os_string()
        })
        .collect()
}

/// `_exit(2)`: ends the process at once. No `atexit` handlers and no flush
/// of Rust's buffered stdout, which would wait for a reader that may never
/// drain the pipe.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes a plain int, touches no memory of ours and never
    // returns; it is async-signal-safe.
    unsafe { nix::libc::_exit(code) }
}

/// Writes `bytes` to `fd` without waiting for a reader, and returns how
/// many were written: `WouldBlock` when a pipe, socket or terminal has no
/// room left.
///
/// - A socket: `send(MSG_DONTWAIT)`.
/// - A pipe (or FIFO) or a terminal, in order:
///   1. `pwritev2(RWF_NOWAIT)`: one call, on kernels whose pipes support it;
///   2. else a new open file description of the same pipe, through
///      `/proc/self/fd`, with `O_NONBLOCK` (setting `O_NONBLOCK` on `fd`
///      itself would change the description we share with our parent, and
///      with the child of `liveness run`);
///   3. else (no `/proc`, or the pipe belongs to another user, who alone
///      may reopen it) `poll` for room, then `write`: this one can wait,
///      if another process fills the pipe between the two calls — the
///      deadline's `SIGKILL` still ends a command that has one.
/// - Anything else (a regular file, `/dev/null`...) has no reader to wait
///   for: a plain `write`, at the shared offset.
#[allow(dead_code)] // the binary's (src/bin/liveness/main.rs)
pub(crate) fn write_now(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let kind = SFlag::from_bits_truncate(fstat(fd)?.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFSOCK {
        use nix::sys::socket::{MsgFlags, send};
        return write_all_now(bytes, |b| {
            send(
                fd.as_raw_fd(),
                b,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            )
        });
    }
    if kind != SFlag::S_IFIFO && kind != SFlag::S_IFCHR {
        return write_all_now(bytes, |b| nix::unistd::write(fd, b));
    }
    match write_all_now(bytes, |b| pwrite_nowait(fd, b)) {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(nix::libc::EOPNOTSUPP | nix::libc::EINVAL)
            ) => {}
        done => return done,
    }
    match reopen_nonblocking(fd) {
        Ok(own) => write_all_now(bytes, |b| nix::unistd::write(&own, b)),
        Err(_) => write_if_room(fd, bytes),
    }
}

/// `poll` for room, then `write` at most `PIPE_BUF` bytes (what one free
/// slot of a pipe takes whole): `WouldBlock` when there is no room.
fn write_if_room(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut pfd = [PollFd::new(fd, PollFlags::POLLOUT)];
    let room = poll(&mut pfd, PollTimeout::ZERO).map_err(io_err)? > 0
        && pfd[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLOUT));
    if !room {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let some = &bytes[..bytes.len().min(nix::libc::PIPE_BUF)];
    write_all_now(some, |b| nix::unistd::write(fd, b))
}

/// Writes with `write` until everything is written or it fails; an error
/// after some bytes ends the line short rather than failing it.
fn write_all_now(
    bytes: &[u8],
    mut write: impl FnMut(&[u8]) -> nix::Result<usize>,
) -> io::Result<usize> {
    let mut done = 0;
    while done < bytes.len() {
        match write(&bytes[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(e) if done == 0 => return Err(io_err(e)),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// `pwritev2(fd, bytes, -1, RWF_NOWAIT)`: a write at the current position
/// that fails with `EAGAIN` rather than wait; `EOPNOTSUPP` where the kernel
/// or the file does not support it.
fn pwrite_nowait(fd: BorrowedFd<'_>, bytes: &[u8]) -> nix::Result<usize> {
    use std::os::fd::AsRawFd;
    let iov = nix::libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: the kernel only reads the one iovec, which points into
    // `bytes`; both outlive the call.
    let n = unsafe { nix::libc::pwritev2(fd.as_raw_fd(), &iov, 1, -1, nix::libc::RWF_NOWAIT) };
    Errno::result(n).map(|n| n as usize)
}

/// A new, non-blocking, write-only open file description of what `fd`
/// names, through `/proc/self/fd/N` (built without allocating).
fn reopen_nonblocking(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let mut path = *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0";
    let mut digits = [0u8; 10];
    let mut n = fd.as_raw_fd().unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..len].iter().rev().enumerate() {
        path[14 + i] = *d;
    }
    let path = std::ffi::CStr::from_bytes_until_nul(&path)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    nix::fcntl::open(
        path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err)
}

/// Runs `handler` when `SIGALRM` arrives, every other signal blocked while
/// it runs. The handler must be async-signal-safe.
#[allow(dead_code)] // the binary's (src/bin/liveness/main.rs)
pub(crate) fn on_alarm(handler: extern "C" fn(nix::libc::c_int)) -> io::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(handler),
        SaFlags::empty(),
        SigSet::all(),
    );
    // SAFETY: the caller passes an async-signal-safe handler; it replaces
    // the default action (terminate) of a signal nothing else here uses.
    unsafe { sigaction(Signal::SIGALRM, &action) }
        .map(drop)
        .map_err(io_err)
}

/// Delivers `SIGALRM` once, `after` from now (`setitimer(ITIMER_REAL)`, one
/// system call). The timer survives `execve`: a process that arms it must
/// not start programs.
#[allow(dead_code)] // the binary's (src/bin/liveness/main.rs)
pub(crate) fn alarm_after(after: Duration) -> io::Result<()> {
    use nix::libc;
    // At least 1 µs: a zero timer is a disarmed one.
    let us = after.as_micros().max(1);
    let value = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: libc::time_t::try_from(us / 1_000_000).unwrap_or(libc::time_t::MAX),
            tv_usec: (us % 1_000_000) as libc::suseconds_t,
        },
    };
    // SAFETY: setitimer reads the itimerval we pass and writes nothing (a
    // null old value).
    if unsafe { libc::setitimer(libc::ITIMER_REAL, &value, std::ptr::null_mut()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `SIGKILL` to the process `after` from now (a POSIX timer, which
/// lives until the process ends). A fatal signal is what wakes a process
/// blocked in a killable wait, where no handler of ours can run.
#[allow(dead_code)] // the binary's (src/bin/liveness/main.rs)
pub(crate) fn kill_after(after: Duration) -> io::Result<()> {
    use nix::sys::signal::{SigEvent, SigevNotify};
    use nix::sys::time::TimeSpec;
    use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
    let event = SigEvent::new(SigevNotify::SigevSignal {
        signal: Signal::SIGKILL,
        si_value: 0,
    });
    let mut timer = Timer::new(nix::time::ClockId::CLOCK_MONOTONIC, event).map_err(io_err)?;
    timer
        .set(
            Expiration::OneShot(TimeSpec::from_duration(after.max(Duration::from_micros(1)))),
            TimerSetTimeFlags::empty(),
        )
        .map_err(io_err)?;
    // Dropping it would delete the timer: it must outlive this call.
    std::mem::forget(timer);
    Ok(())
}

#[cfg(test)]
mod write_now_tests {
    use super::*;

    /// A pipe whose buffer is full, and its read end (kept, never read).
    fn full_pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = pipe().unwrap();
        let filler = reopen_nonblocking(w.as_fd()).unwrap();
        while nix::unistd::write(&filler, &[0u8; 4096]).is_ok() {}
        while nix::unistd::write(&filler, &[0u8; 1]).is_ok() {}
        (r, w)
    }

    /// Every way of writing without waiting finds no room in a full pipe,
    /// and writes into an empty one; the pipe's own description stays
    /// blocking.
    #[test]
    fn no_way_waits_on_a_full_pipe() {
        let (_r, w) = full_pipe();
        let would_block =
            |r: io::Result<usize>| matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        assert!(would_block(write_now(w.as_fd(), b"line\n")));
        assert!(would_block(write_if_room(w.as_fd(), b"line\n")));
        let own = reopen_nonblocking(w.as_fd()).unwrap();
        assert_eq!(nix::unistd::write(&own, b"x"), Err(Errno::EAGAIN));
        // Kernels without RWF_NOWAIT on pipes say so; none may wait.
        assert!(matches!(
            pwrite_nowait(w.as_fd(), b"x"),
            Err(Errno::EAGAIN | Errno::EOPNOTSUPP)
        ));
        let flags = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & nix::libc::O_NONBLOCK, 0, "fd left blocking");

        let (r, w) = pipe().unwrap();
        assert_eq!(write_now(w.as_fd(), b"one\n").unwrap(), 4);
        assert_eq!(write_if_room(w.as_fd(), b"two\n").unwrap(), 4);
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&r, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"one\ntwo\n");
    }

    /// A full socket refuses without waiting; a regular file is written at
    /// its shared offset.
    #[test]
    fn sockets_and_files() {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (a, _b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )
        .unwrap();
        while nix::unistd::write(&a, &[0u8; 4096]).is_ok() {}
        let r = write_now(a.as_fd(), b"line\n");
        assert!(matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock));

        let file = tempfile::tempfile().unwrap();
        assert_eq!(write_now(file.as_fd(), b"ab").unwrap(), 2);
        assert_eq!(write_now(file.as_fd(), b"cd").unwrap(), 2);
        let mut text = String::new();
        use std::io::{Read, Seek};
        let mut file = file;
        file.rewind().unwrap();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, "abcd");
    }
}
