//! Graceful shutdown: a plan that turns SIGTERM into "not ready, drain,
//! hooks, reset, exit", with timings a Kubernetes operator can predict.
//!
//! Signals are received by signal-hook on a dedicated thread (its handler
//! only writes to a self-pipe); the sequence runs on a thread of its own, so
//! the signal thread stays free to notice a second signal. Each hook runs on
//! its own thread with its own timeout; a hook that overruns is abandoned,
//! not killed (threads cannot be), and the process exits anyway.

use std::convert::Infallible;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::time::Duration;

use crate::check::CheckResult;
use crate::error::{Error, ErrorKind, Result};
use crate::health::Health;
use crate::os::process;
use crate::vocab::{env, text};

const DEFAULT_DRAIN_K8S: Duration = Duration::from_secs(5);
const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_BUDGET: Duration = Duration::from_secs(30);
/// Exit code when the budget runs out before the plan finished.
const BUDGET_EXIT: i32 = 1;

/// The shutdown plan's entry points on the handle: defined here, beside
/// the plan, so that `health.rs` (the layer below) never names it.
impl Health {
    /// Starts a graceful shutdown plan for this handle: which signals start
    /// it, how long to drain, when readiness drops, which hooks run. See
    /// [`ShutdownPlan`]; nothing happens until
    /// [`install`](ShutdownPlan::install).
    ///
    /// The plan keeps a weak reference: keep the `Arc` alive for as long as
    /// the process runs (the plan resets the unit through it).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let health = Arc::new(liveness::Health::builder().unit("api").rundir(dir.path()).build()?);
    /// health.load()?;
    /// let plan = health
    ///     .on_shutdown()
    ///     .signals(&[]) // this example installs no signal handler
    ///     .drain(Duration::from_secs(2))
    ///     .hook("flush", || Ok(()));
    /// let shutdown = plan.install()?;
    /// assert!(!shutdown.is_started());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_shutdown(self: &Arc<Self>) -> ShutdownPlan {
        ShutdownPlan::new(Arc::downgrade(self))
    }

    /// Starts the installed shutdown plan from code and waits for it: the
    /// process exits when the plan has run. Call it from any thread; a
    /// second caller, or a caller after a signal started the plan, waits for
    /// the first. For a call that does not block, use
    /// [`Shutdown::start`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when no plan was installed with
    /// [`ShutdownPlan::install`]. It never returns otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let health = liveness::Health::builder().unit("u").rundir(dir.path()).build()?;
    /// let err = health.shutdown().unwrap_err();
    /// assert_eq!(err.kind(), liveness::ErrorKind::InvalidInput);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) -> Result<Infallible> {
        match self.shutdown_trigger() {
            Some(trigger) => trigger(),
            None => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("unit {}", self.unit().name()),
                "no shutdown plan installed (Health::on_shutdown)",
            )),
        }
    }
}

/// When a shutdown plan makes the unit not ready (removes `ready`).
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::Unready::default(), liveness::Unready::OnSignal);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unready {
    /// At once, when shutdown starts: the endpoints controller stops
    /// routing while the drain delay passes. The default.
    #[default]
    OnSignal,
    /// When the drain delay has passed, before the hooks.
    AfterDrain,
    /// Never: readiness goes with the rest of the state at the reset.
    Never,
}

/// One shutdown hook.
struct Hook {
    name: String,
    timeout: Option<Duration>,
    run: Box<dyn FnOnce() -> CheckResult + Send>,
}

/// A graceful shutdown plan, made by [`Health::on_shutdown`] and started by
/// [`install`](ShutdownPlan::install).
///
/// On the first signal (or [`Shutdown::start`]) the plan:
///
/// 1. tells systemd `STOPPING=1` (when `NOTIFY_SOCKET` is set);
/// 2. drops readiness ([`Unready::OnSignal`], the default); liveness stays
///    green;
/// 3. waits the drain delay, so that the endpoints controller and the load
///    balancers stop sending traffic;
/// 4. runs the hooks in order, each on its own thread with its timeout; a
///    hook that fails, panics or overruns is logged with its name and the
///    next one runs;
/// 5. resets the unit and exits with the configured code.
///
/// A second signal during the sequence exits at once with 128 + its number
/// (130 for SIGINT, 143 for SIGTERM). If the budget runs out first, the
/// plan logs what was still running, resets the unit and exits with 1.
///
/// Progress is logged through the `log` crate (info, warnings for hooks
/// that fail, errors for a spent budget).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use liveness::{Health, Unready};
///
/// let dir = tempfile::tempdir()?;
/// let health = Arc::new(Health::builder().unit("api").rundir(dir.path()).build()?);
/// health.load()?;
/// let shutdown = health
///     .on_shutdown()
///     .signals(&[]) // a doctest must not take over SIGTERM
///     .drain(Duration::from_secs(5))
///     .unready(Unready::OnSignal)
///     .hook("close listener", || Ok(()))
///     .hook_with_timeout("flush queue", Duration::from_secs(10), || Ok(()))
///     .budget(Duration::from_secs(30))
///     .install()?;
/// // Later, from any thread: shutdown.trigger() (never returns).
/// # let _ = shutdown;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct ShutdownPlan {
    health: Weak<Health>,
    signals: Vec<i32>,
    drain: Duration,
    unready: Unready,
    hooks: Vec<Hook>,
    hook_timeout: Duration,
    budget: std::result::Result<Duration, String>,
    exit_code: i32,
    strict: bool,
}

impl std::fmt::Debug for ShutdownPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hooks: Vec<&str> = self.hooks.iter().map(|h| h.name.as_str()).collect();
        f.debug_struct("ShutdownPlan")
            .field("signals", &self.signals)
            .field("drain", &self.drain)
            .field("unready", &self.unready)
            .field("hooks", &hooks)
            .field("hook_timeout", &self.hook_timeout)
            .field("budget", &self.budget)
            .field("exit_code", &self.exit_code)
            .field("strict", &self.strict)
            .finish()
    }
}

/// The budget from `LIVENESS_GRACE_PERIOD`, else 30 s; a bad value is kept
/// as an error for `install` to report.
fn budget_from_env() -> std::result::Result<Duration, String> {
    let Some(v) = std::env::var_os(env::GRACE_PERIOD) else {
        return Ok(DEFAULT_BUDGET);
    };
    let v = v.to_string_lossy().into_owned();
    let second = Duration::from_secs(1);
    match text::duration(&v, second) {
        Some(d) if d >= second => Ok(d),
        _ => Err(format!(
            "${}={v:?}: must be a duration from 1 s to {}: seconds, or \
             Go's form (30s, 1m30s, 1.5s)",
            env::GRACE_PERIOD,
            text::duration_text(text::YEAR)
        )),
    }
}

impl ShutdownPlan {
    pub(crate) fn new(health: Weak<Health>) -> ShutdownPlan {
        let drain = if std::env::var_os(env::KUBERNETES).is_some() {
            DEFAULT_DRAIN_K8S
        } else {
            Duration::ZERO
        };
        ShutdownPlan {
            health,
            signals: vec![nix::libc::SIGTERM, nix::libc::SIGINT],
            drain,
            unready: Unready::default(),
            hooks: Vec::new(),
            hook_timeout: DEFAULT_HOOK_TIMEOUT,
            budget: budget_from_env(),
            exit_code: 0,
            strict: false,
        }
    }

    /// The signals that start the shutdown (numbers, as `libc::SIGTERM`).
    /// Default: SIGTERM and SIGINT. An empty list installs no handler at
    /// all: for programs that handle signals themselves (tokio's
    /// `signal::ctrl_c`, their own signal-hook) and call
    /// [`Shutdown::start`] from there.
    ///
    /// The handler is signal-hook's: it adds itself next to handlers already
    /// installed, and only writes to a pipe that a dedicated thread reads.
    /// SIGKILL, SIGSTOP and the fault signals (SIGSEGV, SIGILL, SIGFPE,
    /// SIGBUS) are refused by `install`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// let plan = health.on_shutdown().signals(&[15, 2, 1]); // TERM, INT, HUP
    /// # let _ = plan;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn signals(mut self, signals: &[i32]) -> ShutdownPlan {
        self.signals = signals.to_vec();
        self
    }

    /// How long to wait, after readiness drops, before the hooks run: the
    /// time the endpoints controller and load balancers need to stop
    /// routing. Default: 5 s when `KUBERNETES_SERVICE_HOST` is set, else 0.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// let plan = health.on_shutdown().drain(std::time::Duration::from_secs(10));
    /// # let _ = plan;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain(mut self, delay: Duration) -> ShutdownPlan {
        self.drain = delay;
        self
    }

    /// When readiness drops. Default: [`Unready::OnSignal`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// let plan = health.on_shutdown().unready(liveness::Unready::AfterDrain);
    /// # let _ = plan;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unready(mut self, when: Unready) -> ShutdownPlan {
        self.unready = when;
        self
    }

    /// Adds a hook, run after the hooks added before it, with the default
    /// timeout ([`hook_timeout`](ShutdownPlan::hook_timeout), 5 s). Any
    /// error type converts with `?`, as in a check.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// let plan = health.on_shutdown().hook("flush", || {
    ///     std::fs::metadata("/")?;
    ///     Ok(())
    /// });
    /// # let _ = plan;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hook<F>(mut self, name: &str, hook: F) -> ShutdownPlan
    where
        F: FnOnce() -> CheckResult + Send + 'static,
    {
        self.hooks.push(Hook {
            name: name.to_owned(),
            timeout: None,
            run: Box::new(hook),
        });
        self
    }

    /// Adds a hook with its own timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// use std::time::Duration;
    /// let plan = health.on_shutdown().hook_with_timeout("close db", Duration::from_secs(2), || Ok(()));
    /// # let _ = plan;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hook_with_timeout<F>(mut self, name: &str, timeout: Duration, hook: F) -> ShutdownPlan
    where
        F: FnOnce() -> CheckResult + Send + 'static,
    {
        self.hooks.push(Hook {
            name: name.to_owned(),
            timeout: Some(timeout),
            run: Box::new(hook),
        });
        self
    }

    /// The timeout of hooks added without one. Default: 5 s.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// let plan = health.on_shutdown().hook_timeout(std::time::Duration::from_secs(3));
    /// # let _ = plan;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hook_timeout(mut self, timeout: Duration) -> ShutdownPlan {
        self.hook_timeout = timeout;
        self
    }

    /// The whole plan's time limit, from the first signal to the exit: set
    /// it to the pod's `terminationGracePeriodSeconds`. Default:
    /// `LIVENESS_GRACE_PERIOD` (seconds, or `30s`, `1m30s`), else 30 s (the
    /// Kubernetes default).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// let plan = health.on_shutdown().budget(std::time::Duration::from_secs(60));
    /// # let _ = plan;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn budget(mut self, budget: Duration) -> ShutdownPlan {
        self.budget = Ok(budget);
        self
    }

    /// The exit code after an orderly shutdown, 0 to 255. Default: 0.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// let plan = health.on_shutdown().exit_code(1); // as K8sDeputy
    /// # let _ = plan;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exit_code(mut self, code: i32) -> ShutdownPlan {
        self.exit_code = code;
        self
    }

    /// Refuse to install a plan that does not fit its budget, instead of
    /// logging a warning. Default: off.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// let err = health
    ///     .on_shutdown()
    ///     .signals(&[])
    ///     .drain(Duration::from_secs(25))
    ///     .hook("slow", || Ok(()))
    ///     .budget(Duration::from_secs(30))
    ///     .strict(true)
    ///     .install()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), liveness::ErrorKind::InvalidInput);
    /// assert!(err.to_string().contains("drain 25 s + 1 hook timeout 5 s = 30 s"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn strict(mut self, strict: bool) -> ShutdownPlan {
        self.strict = strict;
        self
    }

    /// Checks the plan against its budget, installs the signal handler
    /// (unless [`signals`](ShutdownPlan::signals) is empty) and returns the
    /// handle that starts the shutdown from code.
    ///
    /// The plan fits when the drain delay plus every hook's timeout is at
    /// most the budget less a margin (a tenth of the budget, at least 1 s).
    /// When it does not, a warning names the numbers, or, with
    /// [`strict`](ShutdownPlan::strict), `install` refuses.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`]: the plan does not fit its budget (strict
    /// only), `LIVENESS_GRACE_PERIOD` is not a duration from 1 s, the exit
    /// code is not 0 to 255, a signal cannot be handled (SIGKILL, SIGSEGV,
    /// an unknown number), the handle was dropped, or a plan is already
    /// installed on it. [`ErrorKind::Io`] when the signal thread cannot be
    /// started.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// let shutdown = health.on_shutdown().signals(&[]).install()?;
    /// let again = health.on_shutdown().signals(&[]).install();
    /// assert_eq!(again.unwrap_err().kind(), liveness::ErrorKind::InvalidInput);
    /// # let _ = shutdown;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn install(self) -> Result<Shutdown> {
        let invalid = |why: String| Error::new(ErrorKind::InvalidInput, "shutdown plan", why);
        let budget = self.budget.clone().map_err(invalid)?;
        if !(0..=255).contains(&self.exit_code) {
            return Err(invalid(format!(
                "exit code {} is not from 0 to 255",
                self.exit_code
            )));
        }
        for &sig in &self.signals {
            if signal_hook::consts::FORBIDDEN.contains(&sig)
                || nix::sys::signal::Signal::try_from(sig).is_err()
            {
                return Err(invalid(format!("signal {sig} cannot be handled")));
            }
        }
        if let Some(problem) = self.over_budget(budget) {
            if self.strict {
                return Err(invalid(problem));
            }
            log::warn!("shutdown plan: {problem}");
        }
        let health = self
            .health
            .upgrade()
            .ok_or_else(|| invalid("the Health handle was dropped".into()))?;
        let shutdown = Shutdown {
            inner: Arc::new(Inner {
                health: self.health,
                drain: self.drain,
                unready: self.unready,
                hooks: Mutex::new(self.hooks),
                hook_timeout: self.hook_timeout,
                budget,
                exit_code: self.exit_code,
                started: AtomicBool::new(false),
            }),
        };
        let installed = || {
            Error::new(
                ErrorKind::InvalidInput,
                format!("unit {}", health.unit().name()),
                "a shutdown plan is already installed",
            )
        };
        if health.shutdown_trigger().is_some() {
            // Checked first, so that a refused plan installs no handler.
            return Err(installed());
        }
        let signals = if self.signals.is_empty() {
            None
        } else {
            Some(
                signal_hook::iterator::Signals::new(&self.signals).map_err(|e| {
                    Error::new(ErrorKind::Io, "shutdown signal handler", e.to_string())
                })?,
            )
        };
        let trigger = shutdown.clone();
        if !health.set_shutdown_trigger(Box::new(move || trigger.trigger())) {
            return Err(installed());
        }
        if let Some(mut signals) = signals {
            let s = shutdown.clone();
            std::thread::Builder::new()
                .name("liveness-signals".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    for sig in signals.forever() {
                        s.on_signal(sig);
                    }
                })
                .map_err(|e| Error::new(ErrorKind::Io, "shutdown signal thread", e.to_string()))?;
        }
        Ok(shutdown)
    }

    /// Why the plan does not fit its budget, if it does not.
    fn over_budget(&self, budget: Duration) -> Option<String> {
        let hooks: Duration = self
            .hooks
            .iter()
            .map(|h| h.timeout.unwrap_or(self.hook_timeout))
            .sum();
        let total = self.drain + hooks;
        let margin = (budget / 10).max(Duration::from_secs(1));
        let room = budget.saturating_sub(margin);
        if total <= room {
            return None;
        }
        let n = self.hooks.len();
        Some(format!(
            "drain {} + {n} hook timeout{} {} = {} does not fit the grace period {} less a {} margin ({}); \
             raise terminationGracePeriodSeconds and {}, or shorten the plan",
            text::duration_text(self.drain),
            if n == 1 { "" } else { "s" },
            text::duration_text(hooks),
            text::duration_text(total),
            text::duration_text(budget),
            text::duration_text(margin),
            text::duration_text(room),
            env::GRACE_PERIOD,
        ))
    }
}

struct Inner {
    health: Weak<Health>,
    drain: Duration,
    unready: Unready,
    hooks: Mutex<Vec<Hook>>,
    hook_timeout: Duration,
    budget: Duration,
    exit_code: i32,
    started: AtomicBool,
}

/// An installed shutdown plan: starts it from code, from any thread.
///
/// Cheap to clone; every clone is the same plan. The plan runs once: the
/// first [`start`](Shutdown::start) (or signal) runs it, later calls return
/// `false` (or, for [`trigger`](Shutdown::trigger), wait for the exit).
///
/// For programs with their own signal handling (tokio and the like),
/// install the plan with `.signals(&[])` and call `start` from the handler:
///
/// ```no_run
/// # let health = std::sync::Arc::new(liveness::Health::builder().build()?);
/// let shutdown = health.on_shutdown().signals(&[]).install()?;
/// // in the program's own SIGTERM handling, e.g. after
/// // `tokio::signal::unix::signal(SignalKind::terminate())?.recv().await`:
/// shutdown.start();
/// # Ok::<(), liveness::Error>(())
/// ```
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("started", &self.is_started())
            .finish_non_exhaustive()
    }
}

impl Shutdown {
    /// Starts the plan on a thread of its own and returns at once: `true`
    /// when this call started it, `false` when it had already started. The
    /// process exits when the plan has run.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let health = std::sync::Arc::new(liveness::Health::builder().build()?);
    /// let shutdown = health.on_shutdown().signals(&[]).install()?;
    /// assert!(shutdown.start());
    /// assert!(!shutdown.start());
    /// shutdown.wait();
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn start(&self) -> bool {
        self.start_because("requested by the program".into())
    }

    /// Starts the plan (if not started) and waits for the process to exit.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let health = std::sync::Arc::new(liveness::Health::builder().build()?);
    /// let shutdown = health.on_shutdown().signals(&[]).install()?;
    /// std::thread::spawn(move || shutdown.trigger());
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn trigger(&self) -> ! {
        self.start();
        self.wait()
    }

    /// Waits for the process to exit: what the main thread of a program
    /// whose work runs on other threads calls once it has nothing left to
    /// do.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let health = std::sync::Arc::new(liveness::Health::builder().build()?);
    /// let shutdown = health.on_shutdown().install()?; // SIGTERM, SIGINT
    /// // ... spawn the workers ...
    /// shutdown.wait();
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn wait(&self) -> ! {
        loop {
            std::thread::park();
        }
    }

    /// Whether the plan has started.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let health = std::sync::Arc::new(liveness::Health::builder().unit("u").rundir(dir.path()).build()?);
    /// let shutdown = health.on_shutdown().signals(&[]).install()?;
    /// assert!(!shutdown.is_started());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::SeqCst)
    }

    fn on_signal(&self, sig: i32) {
        let name = text::signal_name(sig);
        if !self.start_because(format!("signal {name}")) {
            let code = 128 + sig;
            log::warn!("shutdown: second signal {name} during shutdown: exit {code} at once");
            // At once: not even a flush of stdout into a pipe nobody reads.
            process::exit_now(code);
        }
    }

    fn start_because(&self, why: String) -> bool {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return false;
        }
        let inner = Arc::clone(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("liveness-shutdown".into())
            .spawn(move || inner.run(&why));
        if let Err(e) = spawned {
            log::error!("shutdown: cannot start the shutdown thread ({e}): exit at once");
            if let Some(h) = self.inner.health.upgrade() {
                let _ = h.reset();
            }
            process::exit_now(self.inner.exit_code);
        }
        true
    }
}

impl Inner {
    fn run(&self, why: &str) -> ! {
        log::info!(
            "shutdown: {why}: stopping (drain {}, budget {})",
            text::duration_text(self.drain),
            text::duration_text(self.budget)
        );
        let current = Arc::new(Mutex::new(String::from("the drain delay")));
        self.arm_budget(Arc::clone(&current));
        let health = self.health.upgrade();
        if let Some(h) = &health {
            h.notifier().stopping();
        }
        if self.unready == Unready::OnSignal {
            self.not_ready(health.as_deref());
        }
        if !self.drain.is_zero() {
            log::info!("shutdown: draining for {}", text::duration_text(self.drain));
            std::thread::sleep(self.drain);
        }
        if self.unready == Unready::AfterDrain {
            self.not_ready(health.as_deref());
        }
        let hooks = std::mem::take(&mut *self.hooks.lock().unwrap_or_else(|p| p.into_inner()));
        for hook in hooks {
            *current.lock().unwrap_or_else(|p| p.into_inner()) = format!("hook {}", hook.name);
            let timeout = hook.timeout.unwrap_or(self.hook_timeout);
            run_hook(hook, timeout);
        }
        if let Some(h) = &health {
            log::info!("shutdown: resetting unit {}", h.unit().name());
            if let Err(e) = h.reset() {
                log::warn!("shutdown: reset: {e}");
            }
        }
        log::info!("shutdown: exit {}", self.exit_code);
        std::process::exit(self.exit_code)
    }

    fn not_ready(&self, health: Option<&Health>) {
        let Some(h) = health else { return };
        match h.not_ready() {
            Ok(()) => log::info!("shutdown: unit {} not ready", h.unit().name()),
            Err(e) if e.kind() == ErrorKind::NotLoaded => {}
            Err(e) => log::warn!("shutdown: not ready: {e}"),
        }
    }

    /// Exits with [`BUDGET_EXIT`] when the budget runs out, naming the step
    /// still running.
    fn arm_budget(&self, current: Arc<Mutex<String>>) {
        let budget = self.budget;
        let health = self.health.clone();
        let spawned = std::thread::Builder::new()
            .name("liveness-budget".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                std::thread::sleep(budget);
                let step = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
                // The state first: a logger writing into a pipe nobody
                // reads may block, and must not leave a healthy unit behind.
                if let Some(h) = health.upgrade() {
                    let _ = h.reset();
                }
                log::error!(
                    "shutdown: budget of {} spent during {step}: exit {BUDGET_EXIT}",
                    text::duration_text(budget)
                );
                // A deadline: no flush of stdout, which could wait forever.
                process::exit_now(BUDGET_EXIT);
            });
        if let Err(e) = spawned {
            log::warn!("shutdown: cannot arm the budget ({e}); going on without it");
        }
    }
}

/// Runs one hook on its own thread and waits up to `timeout`.
fn run_hook(hook: Hook, timeout: Duration) {
    let Hook { name, run, .. } = hook;
    log::info!(
        "shutdown: hook {name}: start (timeout {})",
        text::duration_text(timeout)
    );
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name(format!("liveness-hook-{}", name.replace('\0', " ")))
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(run)));
        });
    let outcome = match spawned {
        Ok(_) => rx.recv_timeout(timeout),
        Err(e) => {
            log::warn!("shutdown: hook {name}: cannot start its thread ({e}); skipped");
            return;
        }
    };
    match outcome {
        Ok(Ok(Ok(()))) => log::info!("shutdown: hook {name}: done"),
        Ok(Ok(Err(e))) => log::warn!("shutdown: hook {name}: failed: {e}"),
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            log::warn!("shutdown: hook {name}: panicked: {what}");
        }
        Err(mpsc::RecvTimeoutError::Timeout) => log::warn!(
            "shutdown: hook {name}: still running after its {} timeout; abandoned",
            text::duration_text(timeout)
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            log::warn!("shutdown: hook {name}: ended without a result");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> (tempfile::TempDir, Arc<Health>, ShutdownPlan) {
        let dir = tempfile::tempdir().unwrap();
        let h = Arc::new(
            Health::builder()
                .unit("u")
                .rundir(dir.path())
                .build()
                .unwrap(),
        );
        let p = h.on_shutdown().signals(&[]);
        (dir, h, p)
    }

    /// A plan inside its budget has nothing to report.
    #[test]
    fn a_plan_that_fits_is_quiet() {
        let (_d, _h, p) = plan();
        let p = p
            .drain(Duration::from_secs(5))
            .hook("a", || Ok(()))
            .hook("b", || Ok(()));
        assert_eq!(p.over_budget(Duration::from_secs(30)), None);
    }

    /// The margin is a tenth of the budget, at least one second, and the
    /// message names every number.
    #[test]
    fn an_over_budget_plan_names_the_numbers() {
        let (_d, _h, p) = plan();
        let p = p
            .drain(Duration::from_secs(5))
            .hook_with_timeout("a", Duration::from_secs(20), || Ok(()))
            .hook("b", || Ok(()));
        let why = p.over_budget(Duration::from_secs(30)).unwrap();
        assert!(
            why.starts_with(
                "drain 5 s + 2 hook timeouts 25 s = 30 s does not fit the grace period 30 s \
                 less a 3 s margin (27 s)"
            ),
            "{why}"
        );
        // Exactly at budget - margin fits; 1 s budget leaves no room.
        assert_eq!(p.over_budget(Duration::from_secs(34)), None);
        let (_d, _h, p) = plan();
        assert!(
            p.drain(Duration::from_millis(500))
                .over_budget(Duration::from_secs(1))
                .is_some()
        );
    }

    /// Bad settings are refused at install, naming what is wrong.
    #[test]
    fn bad_settings_are_refused() {
        for (p, needle) in [
            (plan().2.exit_code(256), "exit code 256"),
            (plan().2.exit_code(-1), "exit code -1"),
            (plan().2.signals(&[nix::libc::SIGKILL]), "signal 9"),
            (plan().2.signals(&[nix::libc::SIGSEGV]), "signal 11"),
            (plan().2.signals(&[999]), "signal 999"),
        ] {
            let e = p.install().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    /// A hook whose name holds a NUL byte (not allowed in a thread name)
    /// still runs.
    #[test]
    fn a_nul_in_a_hook_name_does_not_stop_the_hook() {
        let (tx, rx) = mpsc::channel();
        let hook = Hook {
            name: "a\0b".into(),
            timeout: None,
            run: Box::new(move || {
                tx.send(()).unwrap();
                Ok(())
            }),
        };
        run_hook(hook, Duration::from_secs(20));
        assert!(rx.try_recv().is_ok());
    }

    /// A plan outlives nothing: installing after the handle is gone fails.
    #[test]
    fn a_dropped_handle_is_refused() {
        let (_d, h, p) = plan();
        drop(h);
        assert_eq!(p.install().unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
