//! Every system call the crate makes, as thin `io::Result` wrappers.
//!
//! Everything above this module is safe Rust that speaks `io::Result`: the
//! crate denies `unsafe` everywhere else, so every `unsafe` block is here,
//! each with its `// SAFETY:` comment. Files and directories are in
//! [`fs`], processes and signals in [`process`], `/proc` in [`proc`], the
//! HTTP server's sockets and limits in `net`; waiting on descriptors and
//! the clocks, which every family uses, are here.

use std::io;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;

pub(crate) mod fs;
#[cfg(feature = "http")]
pub(crate) mod net;
pub(crate) mod proc;
pub(crate) mod process;

fn io_err(e: Errno) -> io::Error {
    io::Error::from(e)
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
