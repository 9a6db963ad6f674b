//! The binary's own system calls: its start without std's runtime (the C
//! `main`) and last words that never wait for a reader. The library keeps
//! its system calls to itself (`src/os/`); these are the ones only a
//! command that must end on time needs. Apart from `main`, no call here
//! waits for a reader, allocates or takes a lock, so each may run in a
//! signal handler. Every `unsafe` of the binary is in this module, each
//! with its `// SAFETY:` comment.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::{Mode, SFlag};

fn io_err(e: Errno) -> io::Error {
    io::Error::from(e)
}

/// The process's entry point, in place of std's runtime start-up.
///
/// std's start-up was about a third of what the probe cost beyond a static
/// C program that does nothing: it reads `/proc/self/maps` and sets up an
/// alternate signal stack and `SIGSEGV`/`SIGBUS` handlers, only to report a
/// stack overflow by name (17 system calls and their page faults). Without
/// it an overflow still ends the process, with `SIGSEGV` on the kernel's
/// guard gap. What the binary needs of it is done here: descriptors 0 to 2
/// open, `SIGPIPE` ignored, a panic reported and ended with exit 101 (the
/// hook prints it); [`crate::start`] flushes stdout. Figures:
/// `doc/deadlines.md`.
#[cfg(not(test))]
// SAFETY: the program defines no other `main` symbol: the crate is
// `#![no_main]`, so std's runtime start-up, which would, is left out.
#[unsafe(no_mangle)]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    open_standard_fds();
    ignore_sigpipe();
    // SAFETY: these are the C runtime's own arguments to main.
    let args = unsafe { args_from_main(argc, argv) };
    std::panic::catch_unwind(move || crate::start(args)).map_or(101, libc::c_int::from)
}

/// What std's runtime does before `main` and `liveness` still needs: file
/// descriptors 0, 1 and 2 open (on `/dev/null` when they were closed), so
/// that no file opened later becomes "stdout" and receives a message. One
/// `poll` when all three are open.
#[cfg_attr(test, allow(dead_code))] // called by `main`, which tests replace
fn open_standard_fds() {
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
#[cfg_attr(test, allow(dead_code))] // called by `main`, which tests replace
fn ignore_sigpipe() {
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
#[cfg_attr(test, allow(dead_code))] // called by `main`, which tests replace
unsafe fn args_from_main(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
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
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes a plain int, touches no memory of ours and never
    // returns; it is async-signal-safe.
    unsafe { libc::_exit(code) }
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
pub fn write_now(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let kind = SFlag::from_bits_truncate(nix::sys::stat::fstat(fd).map_err(io_err)?.st_mode)
        & SFlag::S_IFMT;
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
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => {}
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
    let some = &bytes[..bytes.len().min(libc::PIPE_BUF)];
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
    let iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: the kernel only reads the one iovec, which points into
    // `bytes`; both outlive the call.
    let n = unsafe { libc::pwritev2(fd.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
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
pub fn on_alarm(handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
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
pub fn alarm_after(after: Duration) -> io::Result<()> {
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
pub fn kill_after(after: Duration) -> io::Result<()> {
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
    use std::os::fd::AsFd;

    /// A pipe whose buffer is full, and its read end (kept, never read).
    fn full_pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
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
        assert_eq!(flags & libc::O_NONBLOCK, 0, "fd left blocking");

        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
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
