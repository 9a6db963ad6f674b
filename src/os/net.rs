//! The HTTP server's listening socket and descriptor limit.

use std::io;

use super::io_err;

/// Raises a listening socket's accept backlog: std listens with 128, too
/// few for a burst of connections queued while every handler is busy.
/// Calling `listen(2)` again on a listening socket only changes the
/// backlog; the kernel caps it at `net.core.somaxconn`.
pub(crate) fn set_backlog(listener: &std::net::TcpListener, backlog: i32) -> io::Result<()> {
    let backlog = nix::sys::socket::Backlog::new(backlog).map_err(io_err)?;
    nix::sys::socket::listen(listener, backlog).map_err(io_err)
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to `want`, or to the
/// hard limit if that is lower, when it is below; never lowers it. Returns
/// the soft limit in force afterwards (the old one if raising failed).
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
