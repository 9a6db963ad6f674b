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
