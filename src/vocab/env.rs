//! The environment variables the library reads, in one place. An empty
//! variable counts as unset.
//!
//! # Examples
//!
//! ```
//! assert_eq!(liveness::env::UNIT, "LIVENESS_UNIT_NAME");
//! assert_eq!(liveness::env::RUNDIR, "LIVENESS_RUNDIR");
//! ```

/// The unit's name (as in the original module), for [`Unit::from_env`]
/// and every handle built without one.
///
/// [`Unit::from_env`]: crate::Unit::from_env
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::env::UNIT, "LIVENESS_UNIT_NAME");
/// ```
pub const UNIT: &str = "LIVENESS_UNIT_NAME";

/// The directory that holds the units (default
/// [`Unit::DEFAULT_RUNDIR`](crate::Unit::DEFAULT_RUNDIR)).
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::env::RUNDIR, "LIVENESS_RUNDIR");
/// ```
pub const RUNDIR: &str = "LIVENESS_RUNDIR";

/// The shutdown plan's budget, to match the pod's
/// `terminationGracePeriodSeconds` (default 30 s): seconds (`30`), or a
/// duration in Go's form (`30s`, `1m30s`, `1.5s`).
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::env::GRACE_PERIOD, "LIVENESS_GRACE_PERIOD");
/// ```
pub const GRACE_PERIOD: &str = "LIVENESS_GRACE_PERIOD";

/// Set by Kubernetes in every container: its presence means "under
/// Kubernetes", where the shutdown plan's default drain delay is 5 s.
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::env::KUBERNETES, "KUBERNETES_SERVICE_HOST");
/// ```
pub const KUBERNETES: &str = "KUBERNETES_SERVICE_HOST";

/// The port of the HTTP server's default listen address
/// (`127.0.0.1:PORT`).
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::env::HTTP_PORT, "LIVENESS_HTTP_PORT");
/// ```
#[cfg(feature = "http")]
pub const HTTP_PORT: &str = "LIVENESS_HTTP_PORT";

/// kubexit's variable naming the container: the unit, when
/// [`UNIT`] is unset.
pub(crate) const KUBEXIT_NAME: &str = "KUBEXIT_NAME";

/// kubexit's variable naming the graveyard.
pub(crate) const KUBEXIT_GRAVEYARD: &str = "KUBEXIT_GRAVEYARD";

/// The service manager's socket (systemd, Podman), for `sd_notify(3)`.
pub(crate) const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
