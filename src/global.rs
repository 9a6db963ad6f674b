//! The original module's style: free functions on one process-wide handle.
//!
//! Checks are registered by name once (at start-up, by whichever part of the
//! program knows how to check something) and selected by name when loading,
//! as the original selected checks by module name.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::check::{self, Check, CheckResult, FnCheck};
use crate::error::{Error, ErrorKind, Result};
use crate::health::Health;

static REGISTRY: Mutex<Vec<Box<dyn Check>>> = Mutex::new(Vec::new());
static DEFAULT: Mutex<Option<Health>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a named check for [`load`]. A check registered again under the
/// same name replaces the earlier one.
///
/// # Examples
///
/// ```
/// liveness::register("config-present", || {
///     std::fs::metadata("/")?;
///     Ok(())
/// });
/// ```
pub fn register<F>(name: &str, check: F)
where
    F: FnMut() -> CheckResult + Send + 'static,
{
    register_check(FnCheck::new(name, check));
}

/// Registers a check implemented as a type (see [`Check`]).
///
/// # Examples
///
/// ```
/// use liveness::{Check, CheckResult};
/// struct Always;
/// impl Check for Always {
///     fn name(&self) -> &str { "always" }
///     fn check(&mut self) -> CheckResult { Ok(()) }
/// }
/// liveness::register_check(Always);
/// ```
pub fn register_check(check: impl Check + 'static) {
    let mut reg = lock(&REGISTRY);
    reg.retain(|c| c.name() != check.name());
    reg.push(Box::new(check));
}

/// Runs the named checks in the order given, then loads the process-wide
/// unit (`LIVENESS_UNIT_NAME` or the host name, under `LIVENESS_RUNDIR` or
/// `/run`). See [`Health::load`].
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] when a name was never registered (nothing
/// runs), then the errors of [`Health::load`]; [`ErrorKind::Busy`] when the
/// process-wide unit is already loaded.
///
/// # Examples
///
/// ```no_run
/// liveness::register("always", || Ok(()));
/// liveness::load(&["always"])?;
/// liveness::set(0)?;
/// // ... main loop ...
/// liveness::reset()?;
/// # Ok::<(), liveness::Error>(())
/// ```
pub fn load(checks: &[&str]) -> Result<()> {
    load_with(Health::builder(), checks)
}

/// Like [`load`], with the handle's settings (unit, run directory,
/// heartbeat) taken from `builder` instead of the environment. Checks added
/// to the builder run after the named ones.
///
/// # Errors
///
/// As [`load`].
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// liveness::load_with(liveness::Health::builder().unit("svc").rundir(dir.path()), &[])?;
/// liveness::set(0)?;
/// liveness::reset()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_with(builder: crate::Builder, checks: &[&str]) -> Result<()> {
    let mut default = lock(&DEFAULT);
    if default.as_ref().is_some_and(Health::is_loaded) {
        return Err(Error::new(
            ErrorKind::Busy,
            "the process-wide unit",
            "already loaded",
        ));
    }
    let health = builder.build()?;
    {
        let mut reg = lock(&REGISTRY);
        if let Some(missing) = checks.iter().find(|n| !reg.iter().any(|c| c.name() == **n)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("check {missing:?}"),
                "was never registered",
            ));
        }
        for name in checks {
            if let Some(c) = reg.iter_mut().find(|c| c.name() == *name) {
                check::run(c.as_mut())?;
            }
        }
    }
    health.load()?;
    *default = Some(health);
    Ok(())
}

fn with_default<T>(f: impl FnOnce(&Health) -> Result<T>) -> Result<T> {
    let default = lock(&DEFAULT);
    match default.as_ref() {
        Some(h) => f(h),
        None => Err(Error::new(
            ErrorKind::NotLoaded,
            "the process-wide unit",
            "not loaded (call liveness::load first)",
        )),
    }
}

/// [`Health::set`] on the process-wide unit.
///
/// # Errors
///
/// [`ErrorKind::NotLoaded`] before [`load`]; as [`Health::set`].
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::set(0).unwrap_err().kind(), liveness::ErrorKind::NotLoaded);
/// ```
pub fn set(code: u32) -> Result<()> {
    with_default(|h| h.set(code))
}

/// [`Health::set_with_message`] on the process-wide unit.
///
/// # Errors
///
/// As [`set`].
///
/// # Examples
///
/// ```
/// assert!(liveness::set_with_message(3, "no database").is_err());
/// ```
pub fn set_with_message(code: u32, message: &str) -> Result<()> {
    with_default(|h| h.set_with_message(code, message))
}

/// [`Health::ready`] on the process-wide unit.
///
/// # Errors
///
/// As [`set`].
///
/// # Examples
///
/// ```
/// assert!(liveness::ready().is_err());
/// ```
pub fn ready() -> Result<()> {
    with_default(Health::ready)
}

/// [`Health::not_ready`] on the process-wide unit.
///
/// # Errors
///
/// As [`set`].
///
/// # Examples
///
/// ```
/// assert!(liveness::not_ready().is_err());
/// ```
pub fn not_ready() -> Result<()> {
    with_default(Health::not_ready)
}

/// [`Health::beat`] on the process-wide unit.
///
/// # Errors
///
/// As [`set`].
///
/// # Examples
///
/// ```
/// assert!(liveness::beat().is_err());
/// ```
pub fn beat() -> Result<()> {
    with_default(Health::beat)
}

/// [`Health::set_heartbeat`] on the process-wide unit.
///
/// # Errors
///
/// As [`set`].
///
/// # Examples
///
/// ```
/// assert!(liveness::set_heartbeat(std::time::Duration::from_secs(30)).is_err());
/// ```
pub fn set_heartbeat(deadline: Duration) -> Result<()> {
    with_default(|h| h.set_heartbeat(deadline))
}

/// [`Health::reset`] on the process-wide unit, which is then forgotten: the
/// next [`load`] starts afresh. A no-op when nothing is loaded.
///
/// # Errors
///
/// As [`Health::reset`].
///
/// # Examples
///
/// ```
/// liveness::reset()?;
/// # Ok::<(), liveness::Error>(())
/// ```
pub fn reset() -> Result<()> {
    let mut default = lock(&DEFAULT);
    match default.take() {
        Some(h) => h.reset(),
        None => Ok(()),
    }
}
