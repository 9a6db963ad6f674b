//! Unit names and where their state lives.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::os;
use crate::vocab::env;

/// kubexit's default graveyard, when only `KUBEXIT_NAME` is set.
const KUBEXIT_DEFAULT_GRAVEYARD: &str = "/graveyard";
/// Where the unit directories live inside a kubexit graveyard: a name no
/// Kubernetes container can have (it starts with a dot), so it never
/// collides with kubexit's tombstone files `<graveyard>/<container>`.
pub(crate) const GRAVEYARD_RUNDIR: &str = ".liveness";

/// A validated unit: a name and the run directory that holds it.
///
/// State lives in `<rundir>/<name>/`. A name is 1 to 253 characters of
/// `[A-Za-z0-9._-]` and is neither `.` nor `..`, so it can never leave the
/// run directory.
///
/// # Examples
///
/// ```
/// use liveness::Unit;
///
/// let unit = Unit::new("worker", "/run")?;
/// assert_eq!(unit.dir(), std::path::Path::new("/run/worker"));
/// assert!(Unit::new("../etc", "/run").is_err());
/// # Ok::<(), liveness::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unit {
    name: String,
    rundir: PathBuf,
    /// The kubexit graveyard whose tombstone file `<graveyard>/<name>` this
    /// unit also has, if any.
    graveyard: Option<PathBuf>,
}

impl Unit {
    /// The default run directory.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Unit::DEFAULT_RUNDIR, "/run");
    /// ```
    pub const DEFAULT_RUNDIR: &str = "/run";

    /// The longest unit name: the longest host name.
    ///
    /// # Examples
    ///
    /// ```
    /// use liveness::Unit;
    /// let longest = "x".repeat(Unit::MAX_NAME_LEN);
    /// assert!(Unit::validate_name(&longest).is_ok());
    /// assert!(Unit::validate_name(&format!("{longest}x")).is_err());
    /// ```
    pub const MAX_NAME_LEN: usize = 253;

    /// A unit called `name` under `rundir`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUnit`] when `name` is not a valid unit name, or
    /// when `rundir` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let unit = liveness::Unit::new("api-1.prod", "/tmp/run")?;
    /// assert_eq!(unit.name(), "api-1.prod");
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn new(name: impl Into<String>, rundir: impl Into<PathBuf>) -> Result<Unit> {
        let name = name.into();
        Unit::validate_name(&name)?;
        let rundir = rundir.into();
        if rundir.as_os_str().is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidUnit,
                "run directory",
                "must not be empty",
            ));
        }
        Ok(Unit {
            name,
            rundir,
            graveyard: None,
        })
    }

    /// The unit the environment names: `LIVENESS_UNIT_NAME`, else
    /// `KUBEXIT_NAME`, else the host name, under `LIVENESS_RUNDIR`, else
    /// `<graveyard>/.liveness` when kubexit's variables name a graveyard
    /// (`KUBEXIT_GRAVEYARD`, or `/graveyard` when only `KUBEXIT_NAME` is
    /// set: kubexit's default), else `/run`. An empty variable counts as
    /// unset, as `${VAR:-default}` does in the shell probe. With a
    /// graveyard, the unit also has kubexit's tombstone file
    /// `<graveyard>/<name>` (see [`Unit::graveyard`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUnit`] when the name is invalid, and
    /// [`ErrorKind::Io`] when the host name cannot be read.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let unit = liveness::Unit::from_env()?;
    /// println!("state in {}", unit.dir().display());
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn from_env() -> Result<Unit> {
        Unit::resolve(None, None)
    }

    /// Like [`Unit::from_env`], with explicit values taking precedence over
    /// the environment (what command-line flags do).
    ///
    /// # Errors
    ///
    /// As [`Unit::from_env`].
    ///
    /// # Examples
    ///
    /// ```
    /// let unit = liveness::Unit::resolve(Some("web"), Some("/tmp/run".as_ref()))?;
    /// assert_eq!(unit.dir(), std::path::Path::new("/tmp/run/web"));
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn resolve(name: Option<&str>, rundir: Option<&Path>) -> Result<Unit> {
        let name = match name {
            Some(n) => n.to_owned(),
            None => default_name()?,
        };
        let (rundir, graveyard) = match rundir {
            Some(d) => (d.to_path_buf(), None),
            None => default_rundir(),
        };
        let mut unit = Unit::new(name, rundir)?;
        unit.graveyard = graveyard;
        Ok(unit)
    }

    /// Another unit in the same run directory, with the same kubexit
    /// graveyard: a dependency.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUnit`] when `name` is not a valid unit name.
    ///
    /// # Examples
    ///
    /// ```
    /// let app = liveness::Unit::new("app", "/run")?.with_graveyard("/graveyard");
    /// let db = app.sibling("db")?;
    /// assert_eq!(db.dir(), std::path::Path::new("/run/db"));
    /// assert_eq!(db.graveyard(), Some(std::path::Path::new("/graveyard")));
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn sibling(&self, name: impl Into<String>) -> Result<Unit> {
        let mut unit = Unit::new(name, &self.rundir)?;
        unit.graveyard.clone_from(&self.graveyard);
        Ok(unit)
    }

    /// This unit, with kubexit's tombstone file `<graveyard>/<name>`:
    /// `liveness run` writes it next to its own tombstone, and death
    /// dependencies and `wait --tombstone` read it when the unit has no
    /// tombstone of its own (a kubexit container).
    ///
    /// # Examples
    ///
    /// ```
    /// let u = liveness::Unit::new("app", "/g/.liveness")?.with_graveyard("/g");
    /// assert_eq!(u.graveyard(), Some(std::path::Path::new("/g")));
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn with_graveyard(mut self, graveyard: impl Into<PathBuf>) -> Unit {
        self.graveyard = Some(graveyard.into());
        self
    }

    /// The kubexit graveyard this unit's tombstone is mirrored in, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Unit::new("w", "/run")?.graveyard(), None);
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn graveyard(&self) -> Option<&Path> {
        self.graveyard.as_deref()
    }

    /// The unit's name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Unit::new("w", "/run")?.name(), "w");
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory that holds every unit.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Unit::new("w", "/run")?.rundir(), std::path::Path::new("/run"));
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn rundir(&self) -> &Path {
        &self.rundir
    }

    /// The unit's own directory, `<rundir>/<name>`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(liveness::Unit::new("w", "/run")?.dir(), std::path::Path::new("/run/w"));
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn dir(&self) -> PathBuf {
        self.rundir.join(&self.name)
    }

    /// Checks a unit name: 1 to 253 characters of `[A-Za-z0-9._-]`, not `.` or
    /// `..`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUnit`], saying what is wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(liveness::Unit::validate_name("worker-2").is_ok());
    /// assert!(liveness::Unit::validate_name("a/b").is_err());
    /// assert!(liveness::Unit::validate_name("..").is_err());
    /// ```
    pub fn validate_name(name: &str) -> Result<()> {
        let refuse = |why: &str| {
            Err(Error::new(
                ErrorKind::InvalidUnit,
                format!("unit name {name:?}"),
                why,
            ))
        };
        if name.is_empty() {
            return refuse("must not be empty");
        }
        if name.len() > Unit::MAX_NAME_LEN {
            return refuse("longer than 253 characters");
        }
        if name == "." || name == ".." {
            return refuse("must not be '.' or '..'");
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return refuse(&format!(
                "character {c:?} is not allowed (use A-Z a-z 0-9 . _ -)"
            ));
        }
        Ok(())
    }

    /// The path of one state file of this unit.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }
}

fn non_empty_env(key: &str) -> Option<OsString> {
    std::env::var_os(key).filter(|v| !v.is_empty())
}

/// `LIVENESS_UNIT_NAME`, else `KUBEXIT_NAME`, else the host name.
fn default_name() -> Result<String> {
    let (var, value) = match (non_empty_env(env::UNIT), non_empty_env(env::KUBEXIT_NAME)) {
        (Some(v), _) => (env::UNIT, v),
        (None, Some(v)) => (env::KUBEXIT_NAME, v),
        (None, None) => {
            return os::hostname()
                .map_err(|e| Error::io(Path::new("/proc/sys/kernel/hostname"), e));
        }
    };
    value.into_string().map_err(|v| {
        Error::new(
            ErrorKind::InvalidUnit,
            format!("unit name {v:?} (from {var})"),
            "not UTF-8",
        )
    })
}

/// kubexit's graveyard, when its variables name one: `KUBEXIT_GRAVEYARD`
/// without trailing slashes (as kubexit trims them), else `/graveyard`
/// when `KUBEXIT_NAME` is set.
fn kubexit_graveyard() -> Option<PathBuf> {
    match non_empty_env(env::KUBEXIT_GRAVEYARD) {
        Some(g) => {
            let path = PathBuf::from(g);
            // `components` drops trailing slashes; "/" stays "/".
            Some(path.components().collect())
        }
        None => non_empty_env(env::KUBEXIT_NAME).map(|_| PathBuf::from(KUBEXIT_DEFAULT_GRAVEYARD)),
    }
}

/// `LIVENESS_RUNDIR`, else `<graveyard>/.liveness` under kubexit's
/// variables, else `/run`; and the graveyard, in the second case.
fn default_rundir() -> (PathBuf, Option<PathBuf>) {
    if let Some(d) = non_empty_env(env::RUNDIR) {
        return (PathBuf::from(d), None);
    }
    match kubexit_graveyard() {
        Some(g) => (g.join(GRAVEYARD_RUNDIR), Some(g)),
        None => (PathBuf::from(Unit::DEFAULT_RUNDIR), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names that could leave the run directory, or are not portable, are
    /// refused with a reason; good names pass.
    #[test]
    fn unit_names() {
        for good in [
            "a",
            "worker",
            "api-1.prod_2",
            "..a",
            ".hidden",
            &"x".repeat(253),
        ] {
            assert!(Unit::validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "/etc",
            "../x",
            "a b",
            "a\nb",
            "é",
            "a\0b",
            &"x".repeat(254),
        ] {
            let err = Unit::validate_name(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidUnit, "{bad:?}");
        }
    }

    /// An empty run directory is refused.
    #[test]
    fn empty_rundir_is_refused() {
        assert_eq!(
            Unit::new("a", "").unwrap_err().kind(),
            ErrorKind::InvalidUnit
        );
    }
}
