//! The sd_notify bridge: the same state changes, told to systemd (or to
//! Podman's `--sdnotify=container`) when `NOTIFY_SOCKET` is set.
//!
//! A [`Health`](crate::Health) handle reads the variable once, when it is
//! built; when it is unset, every call here is one branch on an `Option`.
//! The words are the `sd-notify` crate's [`NotifyState`]s. The sending is
//! ours: `sd_notify::notify` re-reads the environment on every call and
//! connects to an `@name` address as a file path, so the abstract sockets
//! systemd and Podman may pass would fail; here both a path (`/run/...`)
//! and an abstract `@name` work. A failed send is logged at debug level and
//! otherwise ignored, as the manual recommends: the files are the contract,
//! the notification is a courtesy.

use std::fmt::Write as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;

use sd_notify::NotifyState;

use crate::vocab::env;

/// Where to tell the service manager, decided once.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    target: Option<Target>,
}

#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    /// Made on first use, kept for the handle's life.
    sock: OnceLock<std::io::Result<UnixDatagram>>,
}

/// `/path` or `@abstract`; anything else (`vsock:...`) is not supported.
fn parse_address(v: &std::ffi::OsStr) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match v.as_bytes() {
        [b'@', name @ ..] => SocketAddr::from_abstract_name(name),
        [b'/', ..] => SocketAddr::from_pathname(v),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "not a socket path or @abstract name",
        )),
    }
}

impl Notifier {
    /// On when `NOTIFY_SOCKET` names a path or an abstract socket.
    pub(crate) fn from_env() -> Notifier {
        let Some(v) = std::env::var_os(env::NOTIFY_SOCKET).filter(|v| !v.is_empty()) else {
            return Notifier::default();
        };
        match parse_address(&v) {
            Ok(addr) => Notifier {
                target: Some(Target {
                    addr,
                    sock: OnceLock::new(),
                }),
            },
            Err(e) => {
                log::debug!("${}={v:?}: {e}; not notifying", env::NOTIFY_SOCKET);
                Notifier::default()
            }
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        let Some(t) = &self.target else { return };
        let mut msg = String::new();
        for s in states {
            let _ = writeln!(msg, "{s}");
        }
        let sent = match t.sock.get_or_init(UnixDatagram::unbound) {
            Ok(sock) => sock.send_to_addr(msg.as_bytes(), &t.addr).map(drop),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        };
        if let Err(e) = sent {
            log::debug!("sd_notify to ${}: {e}", env::NOTIFY_SOCKET);
        }
    }

    /// `READY=1`: the unit became ready.
    pub(crate) fn ready(&self) {
        self.send(&[NotifyState::Ready]);
    }

    /// `STATUS=ok`, or `STATUS=error N[: message]` and `ERRNO=N`: the words
    /// `liveness probe` would use.
    pub(crate) fn status(&self, code: u32, message: Option<&str>) {
        if self.target.is_none() {
            return;
        }
        if code == 0 {
            self.send(&[NotifyState::Status("ok")]);
            return;
        }
        let status = match message {
            Some(m) => format!("error {code}: {m}"),
            None => format!("error {code}"),
        };
        self.send(&[NotifyState::Status(&status), NotifyState::Errno(code)]);
    }

    /// `WATCHDOG=1`: a heartbeat reached the disk.
    pub(crate) fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// `STOPPING=1`: shutdown started.
    pub(crate) fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths and abstract names are accepted; other forms are refused, so
    /// the handle stays silent instead of sending somewhere wrong.
    #[test]
    fn addresses() {
        use std::os::linux::net::SocketAddrExt;
        let a = parse_address("@sd".as_ref()).unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"sd"[..]));
        let p = parse_address("/run/systemd/notify".as_ref()).unwrap();
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        for bad in ["vsock:2:1234", "relative/path"] {
            assert!(parse_address(bad.as_ref()).is_err(), "{bad}");
        }
    }
}
