//! The sd_notify bridge: the same state changes, told to systemd (or to
//! Podman's `--sdnotify=container`) when `NOTIFY_SOCKET` is set.
//!
//! A [`Health`](crate::Health) handle reads the variable once, when it is
//! built; when it is unset, every call here is one branch on a `bool`. The
//! messages follow `sd_notify(3)`; sending them is the `sd-notify` crate's
//! job (path and abstract `@` sockets). A failed send is logged at debug
//! level and otherwise ignored, as the manual recommends: the files are the
//! contract, the notification is a courtesy.

use sd_notify::NotifyState;

/// The environment variable systemd and Podman set.
pub(crate) const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Whether to tell the service manager, decided once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Notifier {
    enabled: bool,
}

impl Notifier {
    /// On when `NOTIFY_SOCKET` is set and not empty.
    pub(crate) fn from_env() -> Notifier {
        Notifier {
            enabled: std::env::var_os(NOTIFY_SOCKET).is_some_and(|v| !v.is_empty()),
        }
    }

    fn send(self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            log::debug!("sd_notify to ${NOTIFY_SOCKET}: {e}");
        }
    }

    /// `READY=1`: the unit became ready.
    pub(crate) fn ready(self) {
        self.send(&[NotifyState::Ready]);
    }

    /// `STATUS=ok`, or `STATUS=error N[: message]` and `ERRNO=N`: the words
    /// `liveness probe` would use.
    pub(crate) fn status(self, code: u32, message: Option<&str>) {
        if !self.enabled {
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
    pub(crate) fn watchdog(self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// `STOPPING=1`: shutdown started.
    pub(crate) fn stopping(self) {
        self.send(&[NotifyState::Stopping]);
    }
}
