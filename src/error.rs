//! The crate's one error type.
//!
//! Every error says *what* it was about (a unit, a path, a check, a pid) and
//! *why* it failed, so `Display` gives the `<what>: <why>` line the binary
//! prints after `liveness: `. It converts into [`io::Error`] without losing
//! the message, so callers that only speak `io::Result` lose nothing.

use std::fmt;
use std::io;
use std::path::Path;

/// The class of an [`Error`], stable enough to branch on.
///
/// The binary maps each kind to a documented exit code.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let h = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
/// match h.set(0) {
///     Err(e) if e.kind() == liveness::ErrorKind::NotLoaded => {} // load first
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A unit name was refused (empty, too long, a path, `.` or `..`).
    InvalidUnit,
    /// A value given by the caller is out of range (an error code, a
    /// deadline); nothing was written.
    InvalidInput,
    /// A sanity check failed during `load`; nothing was written.
    CheckFailed,
    /// The unit is owned by another live process.
    Busy,
    /// The unit is not loaded (no `pid` file, or the handle never loaded it).
    NotLoaded,
    /// Existing state cannot be trusted (a symlink, a non-regular file, an
    /// unparsable value); it was left as it is.
    Corrupt,
    /// The operating system refused (read-only or full file system,
    /// permissions, ...). Previous state is intact.
    Io,
    /// A wait ran out of time (`liveness run --birth-deps`, `terminate`,
    /// `wait`).
    Timeout,
    /// The recorded owner is not running, or its pid now names another
    /// process (`terminate` refuses to signal it).
    OwnerGone,
}

/// An error from the `liveness` library.
///
/// `Display` is one line, `<what>: <why>`, e.g.
/// `unit worker: owned by pid 4242` or
/// `/run/worker/error: Read-only file system (os error 30)`.
///
/// # Examples
///
/// ```
/// use liveness::{ErrorKind, Unit};
///
/// let err = Unit::new("../etc", "/run").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidUnit);
/// assert!(err.to_string().starts_with("unit name \"../etc\": "));
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
/// ```
pub struct Error {
    kind: ErrorKind,
    what: String,
    why: Why,
    /// What was done about it, after the reason (`; removed error ...`).
    then: Option<String>,
    pid: Option<u32>,
}

enum Why {
    Text(String),
    Io(io::Error),
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, what: impl Into<String>, why: impl Into<String>) -> Error {
        Error {
            kind,
            what: what.into(),
            why: Why::Text(why.into()),
            then: None,
            pid: None,
        }
    }

    /// An operating-system error about `path`.
    pub(crate) fn io(path: &Path, err: io::Error) -> Error {
        Error {
            kind: ErrorKind::Io,
            what: path.display().to_string(),
            why: Why::Io(err),
            then: None,
            pid: None,
        }
    }

    pub(crate) fn busy(unit: &str, pid: Option<u32>, why: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Busy,
            what: format!("unit {unit}"),
            why: Why::Text(why.into()),
            then: None,
            pid,
        }
    }

    pub(crate) fn with_pid(mut self, pid: u32) -> Error {
        self.pid = Some(pid);
        self
    }

    /// Adds what was done about the failure, shown after the reason.
    pub(crate) fn then(mut self, done: impl Into<String>) -> Error {
        let done = done.into();
        self.then = Some(match self.then.take() {
            Some(first) => format!("{first}; {done}"),
            None => done,
        });
        self
    }

    /// The class of this error.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = liveness::Unit::new("", "/run").unwrap_err();
    /// assert_eq!(err.kind(), liveness::ErrorKind::InvalidUnit);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The pid this error is about: the live owner for
    /// [`ErrorKind::Busy`], the target of a refused operation otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = liveness::Unit::new("", "/run").unwrap_err();
    /// assert_eq!(err.pid(), None);
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The underlying operating-system error, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = liveness::Unit::new("a/b", "/run").unwrap_err();
    /// assert!(err.os_error().is_none());
    /// ```
    pub fn os_error(&self) -> Option<&io::Error> {
        match &self.why {
            Why::Io(e) => Some(e),
            Why::Text(_) => None,
        }
    }

    /// What the error is about: a unit, a path or a check, without the reason.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = liveness::Unit::new("a/b", "/run").unwrap_err();
    /// assert_eq!(err.what(), "unit name \"a/b\"");
    /// ```
    pub fn what(&self) -> &str {
        &self.what
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.why {
            Why::Text(t) => write!(f, "{}: {}", self.what, t)?,
            Why::Io(e) => write!(f, "{}: {}", self.what, e)?,
        }
        match &self.then {
            Some(done) => write!(f, "; {done}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.to_string())
            .field("pid", &self.pid)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.why {
            Why::Io(e) => Some(e),
            Why::Text(_) => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match (&err.why, err.kind) {
            (Why::Io(e), _) => e.kind(),
            (_, ErrorKind::InvalidUnit | ErrorKind::InvalidInput) => io::ErrorKind::InvalidInput,
            (_, ErrorKind::Busy) => io::ErrorKind::ResourceBusy,
            (_, ErrorKind::NotLoaded) => io::ErrorKind::NotFound,
            (_, ErrorKind::Corrupt) => io::ErrorKind::InvalidData,
            (_, ErrorKind::CheckFailed | ErrorKind::Io) => io::ErrorKind::Other,
            (_, ErrorKind::Timeout) => io::ErrorKind::TimedOut,
            (_, ErrorKind::OwnerGone) => io::ErrorKind::NotFound,
        };
        io::Error::new(kind, err)
    }
}

/// `Result` with this crate's [`Error`].
///
/// # Examples
///
/// ```
/// fn unit() -> liveness::Result<liveness::Unit> {
///     liveness::Unit::new("api", "/run")
/// }
/// assert!(unit().is_ok());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Display is exactly `<what>: <why>`, one line.
    #[test]
    fn display_is_what_colon_why() {
        let e = Error::new(ErrorKind::CheckFailed, "check \"db\"", "connection refused");
        assert_eq!(e.to_string(), "check \"db\": connection refused");
        let e = Error::io(Path::new("/run/x/error"), io::Error::from_raw_os_error(30));
        assert_eq!(
            e.to_string(),
            "/run/x/error: Read-only file system (os error 30)"
        );
    }

    /// Converting to io::Error keeps the OS error kind and the full message.
    #[test]
    fn into_io_error_keeps_kind_and_message() {
        let e = Error::io(
            Path::new("/p"),
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        let msg = e.to_string();
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(io.to_string(), msg);
        let io: io::Error = Error::busy("w", Some(7), "owned by pid 7").into();
        assert_eq!(io.kind(), io::ErrorKind::ResourceBusy);
    }

    /// What was done about a failure follows the reason on the same line.
    #[test]
    fn then_follows_the_reason() {
        let e = Error::io(Path::new("/run/x/error"), io::Error::from_raw_os_error(28))
            .then("removed error")
            .then("twice");
        assert_eq!(
            e.to_string(),
            "/run/x/error: No space left on device (os error 28); removed error; twice"
        );
        assert_eq!(e.os_error().and_then(io::Error::raw_os_error), Some(28));
    }

    /// A busy error names the owner's pid.
    #[test]
    fn busy_carries_the_owner_pid() {
        let e = Error::busy("w", Some(42), "owned by pid 42");
        assert_eq!(e.kind(), ErrorKind::Busy);
        assert_eq!(e.pid(), Some(42));
        assert_eq!(e.to_string(), "unit w: owned by pid 42");
    }
}
