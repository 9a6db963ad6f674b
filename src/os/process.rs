//! Processes and signals: what the supervisor, `terminate` and `wait`
//! need (signals taken and forwarded, children reaped, pidfds, the gate a
//! supervised child passes before `exec`), and the ends of a process.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use super::io_err;

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

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io_err)
}

/// Makes the child `cmd` spawns pass the gate ([`gate_in_child`]) between
/// `fork` and `exec`, with `pid_w`, `rel_r` and `rel_w`: the write end of
/// the pipe it writes its pid to, and both ends of the release pipe. The
/// three must stay open until `cmd` is spawned.
pub(crate) fn gate_before_exec(
    cmd: &mut std::process::Command,
    [pid_w, rel_r, rel_w]: [&OwnedFd; 3],
    signals: SupervisorSignals,
) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let (pw, rr, rw) = (pid_w.as_raw_fd(), rel_r.as_raw_fd(), rel_w.as_raw_fd());
    // SAFETY: the hook runs between fork and exec, where only
    // async-signal-safe calls are allowed: `gate_in_child` makes only such
    // system calls, allocates nothing and takes no lock; the closure
    // captures plain integers and C structures (`SupervisorSignals` is
    // `Copy`).
    unsafe {
        cmd.pre_exec(move || gate_in_child(pw, rr, rw, &signals));
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
fn gate_in_child(
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

/// `_exit(2)`: ends the process at once. No `atexit` handlers and no flush
/// of Rust's buffered stdout, which would wait for a reader that may never
/// drain the pipe.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes a plain int, touches no memory of ours and never
    // returns; it is async-signal-safe.
    unsafe { nix::libc::_exit(code) }
}
