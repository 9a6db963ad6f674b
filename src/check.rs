//! Sanity checks run by `load` before a unit is claimed.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, ErrorKind, Result};

/// What a check returns: `Ok(())`, or an error whose `Display` is the
/// reason. Any error type converts with `?`, and a `&str` or `String` with
/// `.into()`.
///
/// # Examples
///
/// ```
/// fn config_present() -> liveness::CheckResult {
///     std::fs::metadata("/")?;
///     if std::env::var_os("PATH").is_none() {
///         return Err("PATH is not set".into());
///     }
///     Ok(())
/// }
/// assert!(config_present().is_ok());
/// ```
pub type CheckResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A named sanity check, run by [`Health::load`](crate::Health::load) before
/// the unit is claimed. Like the original module's `health()` functions, a
/// check validates the environment: configuration present, a socket
/// reachable, a directory writable.
///
/// Closures are checks too, through [`Builder::check`](crate::Builder::check);
/// implement the trait for checks that carry state or configuration.
///
/// # Examples
///
/// ```
/// use liveness::{Check, CheckResult};
///
/// struct DiskSpace { path: &'static str }
///
/// impl Check for DiskSpace {
///     fn name(&self) -> &str { "disk-space" }
///     fn check(&mut self) -> CheckResult {
///         std::fs::metadata(self.path)?;
///         Ok(())
///     }
/// }
///
/// let mut c = DiskSpace { path: "/" };
/// assert!(c.check().is_ok());
/// ```
pub trait Check: Send {
    /// The name used in logs and in the error when the check fails.
    fn name(&self) -> &str;

    /// Runs the check.
    ///
    /// # Errors
    ///
    /// The reason the environment is not sane; `load` stops at the first
    /// failing check and writes nothing.
    fn check(&mut self) -> CheckResult;
}

/// A closure with a name: the [`Check`] that [`Builder::check`] and
/// [`register`](crate::register) build.
///
/// [`Builder::check`]: crate::Builder::check
pub(crate) struct FnCheck<F> {
    name: String,
    f: F,
}

impl<F> FnCheck<F> {
    pub(crate) fn new(name: &str, f: F) -> FnCheck<F> {
        FnCheck {
            name: name.to_owned(),
            f,
        }
    }
}

impl<F: FnMut() -> CheckResult + Send> Check for FnCheck<F> {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&mut self) -> CheckResult {
        (self.f)()
    }
}

/// Runs one check; a panic inside it is a failure with the panic's message,
/// not a crash of the caller.
pub(crate) fn run(check: &mut dyn Check) -> Result<()> {
    let name = check.name().to_owned();
    let outcome = catch_unwind(AssertUnwindSafe(|| check.check()));
    let reason = match outcome {
        Ok(Ok(())) => {
            log::info!("liveness check passed: {name}");
            return Ok(());
        }
        Ok(Err(e)) => e.to_string(),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            format!("panicked: {what}")
        }
    };
    let reason = if reason.is_empty() {
        "failed".to_owned()
    } else {
        reason
    };
    log::warn!("liveness check failed: {name}: {reason}");
    Err(Error::new(
        ErrorKind::CheckFailed,
        format!("check {name:?}"),
        reason,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failing check's error names the check and gives its reason.
    #[test]
    fn failure_names_the_check() {
        let mut c = FnCheck::new("db", || Err("connection refused".into()));
        let e = run(&mut c).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CheckFailed);
        assert_eq!(e.to_string(), "check \"db\": connection refused");
    }

    /// A panicking check is a failure, not a crash.
    #[test]
    fn panic_is_a_failure() {
        let mut c = FnCheck::new("boom", || -> CheckResult { panic!("kaput") });
        let e = run(&mut c).unwrap_err();
        assert_eq!(e.to_string(), "check \"boom\": panicked: kaput");
    }

    /// A passing check passes.
    #[test]
    fn success() {
        let mut c = FnCheck::new("ok", || Ok(()));
        assert!(run(&mut c).is_ok());
    }
}
