//! Truthful, file-based process health state for Kubernetes exec probes,
//! batch jobs and shell scripts.
//!
//! A process records its health in small files under `/run/<unit>/`; a probe
//! (`liveness probe`, or the POSIX `scripts/health.sh`) reads them back and
//! answers with a documented exit code and one line that says why. The
//! files are the whole interface: any process that can read a directory can
//! ask, and any process that can write one can answer.
//!
//! # Design
//!
//! The layout follows the small Python module `liveness`, and stays
//! readable by its probe: `pid` holds the owner's pid and `error` its error
//! code, 0 meaning healthy. Everything else is added so that the answer is
//! *true*:
//!
//! - **Who.** `starttime` (field 22 of `/proc/<pid>/stat`) and `pidns` pin the
//!   pid to one process, so a recycled pid never passes for the owner; the
//!   owner holds an exclusive `flock` on `lock` for its lifetime, so its
//!   death is visible even from another container.
//! - **When.** `heartbeat` carries a deadline the writer declares and the
//!   `CLOCK_BOOTTIME` of its last beat: a process that hangs with error 0
//!   goes stale instead of staying green forever.
//! - **What.** `error`, `message` (one line, the reason) and `ready` answer
//!   the liveness, readiness and startup questions separately (see
//!   [`Mode`]).
//!
//! The exact bytes of each file are specified in `doc/state-format.md`.
//!
//! Around the files, three bridges for the rest of a process's life:
//!
//! - **Shutdown.** [`Health::on_shutdown`] builds a [`ShutdownPlan`]: on
//!   SIGTERM readiness drops (the file goes, liveness stays green), a drain
//!   delay lets the endpoints controller catch up, hooks run in order with
//!   their own timeouts, the unit is reset and the process exits, all
//!   inside a budget checked at start-up against the grace period. Signals
//!   are read on a thread of their own; [`Shutdown::start`] is the entry
//!   point for programs that handle signals themselves.
//! - **HTTP.** For `httpGet` probes, `Health::serve` and `liveness serve`
//!   answer `/health/live|ready|startup` with the same verdicts and lines
//!   as the probe, from a bounded pool of threads (feature `http`).
//! - **systemd.** With `NOTIFY_SOCKET` set, the handle also sends
//!   `READY=1`, `STATUS=`, `ERRNO=`, `WATCHDOG=1` and `STOPPING=1`.
//!
//! A unit has one owner, which claims it with [`Health::load`] (or
//! [`load`] for the process-wide handle) after running its sanity checks.
//! A process started by `liveness run` (or [`Supervisor`]) finds the unit
//! already claimed for it and *attaches*: it reports, its supervisor owns.
//! The supervisor forwards signals, reaps zombies, writes a [`Tombstone`]
//! when the child ends, and starts or stops it after other units (birth and
//! death dependencies); [`terminate`] stops a unit's owner without ever
//! signalling a reused pid, and [`wait_for`] blocks until units are ready,
//! gone or dead.
//!
//! The sources follow the same shape, in layers — the words and the system
//! calls at the bottom, then the file contract, the owner's API, the
//! judges, the actors, and the supervisor, shutdown and HTTP on top — each
//! using only those below it (`doc/architecture.md`).
//!
//! # Guarantees
//!
//! - Every write is a temporary file in the same directory renamed over the
//!   old one: a reader sees the old content or the new, never an empty,
//!   partial or mixed file, even if the writer is killed mid-write. Leftover
//!   temporary files are removed by the next [`Health::load`].
//! - Readers are strict and fail closed: anything but a canonical decimal
//!   number is corrupt (exit 7), never healthy; symlinks and non-regular
//!   files are refused, never followed or opened blocking.
//! - A change of owner (a new incarnation, or a supervisor handing the
//!   unit to its child) is never read as a reused pid: `pid`, `starttime`
//!   and `pidns` are replaced in a fixed order and read with a re-check.
//! - An owner is alive only when something proves it: `/proc` in its own
//!   PID namespace, or its held lock. A reader that can prove neither (a
//!   `load --pid` unit seen from another container) answers "owner
//!   unverifiable" (exit 4), never "ok"; `wait --gone` ends at once on it
//!   and a death dependency counts it as dead.
//! - A second live owner (or one that cannot be verified) is refused and
//!   named; the first owner's state is not touched. Bad input is refused
//!   before anything is written.
//! - A call writes nothing only when a stat proves the file on disk is
//!   still the inode this handle wrote (held open, unchanged since): what
//!   another process wrote is overwritten by the next call, never hidden.
//!   [`Health::beat`] is rate-limited internally, so it can be called in a
//!   hot loop; an unchanged [`Health::set`] costs a stat or two, and in a
//!   hot loop one `read(2)` of an inotify queue that proves nothing in the
//!   unit directory changed since.
//! - A failed write of a worse state (a non-zero error, not ready, a shorter
//!   heartbeat deadline) never leaves the better one visible: `error` is
//!   removed instead, so the unit reads "starting"; when even that fails (a
//!   read-only file system), the error says the previous state stays
//!   visible.
//!
//! # Limitations
//!
//! - Cross-file consistency is ordered, not transactional: for an instant a
//!   reader can pair a new error code with the previous message (the
//!   owner's identity is the exception, see above).
//! - Nothing is flushed to disk unless [`Builder::sync`] is set: `/run` is a
//!   tmpfs and does not survive a reboot anyway.
//! - The write cache sees another process's rewrite *in place* (not by
//!   rename) through the file's times: on a kernel with one timestamp per
//!   clock tick (before multigrain timestamps, Linux 6.13), a same-size
//!   rewrite within one tick of the owner's write can go unseen. Our
//!   writers always rename.
//! - Units written by the original Python module have no `starttime` and no
//!   `lock`: for them a recycled pid cannot be told from the owner.
//! - A unit registered with `liveness load --pid` holds no lock: it is
//!   judged by `/proc` only, so only from its owner's PID namespace (an
//!   exec probe is); from another one it is "owner unverifiable". A sidecar
//!   that must watch a shell job runs the job under `liveness run`, whose
//!   supervisor holds the lock.
//! - `health.sh` cannot take a `flock` or read a file's mtime without
//!   forking: it judges ownership by pid and start time only, which is why
//!   it must run in the writer's PID namespace (an exec probe does).
//! - Linux only: `/proc`, `flock`, `CLOCK_BOOTTIME`.
//!
//! # Security
//!
//! Unit names are `[A-Za-z0-9._-]{1,253}`, never `.` or `..`, so state never
//! leaves the run directory. State files are reached through an open
//! directory descriptor with `O_NOFOLLOW`: a symlink planted in a unit
//! directory is replaced, never written through. Directories (the run
//! directory's missing parents included) are created 0755 and files 0644
//! whatever the umask, because probes often run as another user; do not
//! put secrets in messages.
//!
//! The run directory may be shared (an `emptyDir` is 0777, `/tmp` 1777), so
//! the unit directory is a trust boundary (`doc/state-format.md`, *Trust*):
//! writers refuse a unit directory that is not owned by their uid or that
//! others can write, and replace — never chmod or write through — a file in
//! it that is not theirs (another owner, a second hard link), the `lock`
//! included; [`terminate`], [`wait_for`] and the dependencies of
//! [`Supervisor`] act only on state owned by their uid or root (or, for
//! `terminate`, by the target's own uid), not writable by others, with one
//! link. Readers (probes, `status`, HTTP) judge what is there: they cannot
//! know whom to expect, so another user who creates a unit directory first
//! can still make a probe of it pass. In a run directory that others may
//! write *without* the sticky bit (an `emptyDir` is 0777), another user can
//! also rename a unit directory that is in use — to put their own in its
//! place, or to swap two of yours, which an actor then trusts: where users
//! who do not trust each other share a run directory, give it the sticky
//! bit (`chmod 1777`, as `/tmp` has).
//!
//! # Examples
//!
//! A long-running service:
//!
//! ```
//! use std::time::Duration;
//! use liveness::{Health, Mode, Probe, Verdict};
//!
//! let rundir = tempfile::tempdir()?;
//! let health = Health::builder()
//!     .unit("api")
//!     .rundir(rundir.path())
//!     .check("config", || Ok(()))
//!     .heartbeat(Duration::from_secs(30))
//!     .build()?;
//! health.load()?;          // checks pass; the unit is "starting"
//! health.set(0)?;          // healthy
//! health.ready()?;         // routable
//! for _ in 0..3 {
//!     health.beat()?;      // cheap; reaches the disk at most once a second
//! }
//! let report = Probe::new(Mode::Ready).check(health.unit());
//! assert_eq!(report.verdict, Verdict::Ok);
//! health.reset()?;         // also done on drop
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The original module's style, with checks registered and selected by name:
//!
//! ```no_run
//! liveness::register("database", || {
//!     std::net::TcpStream::connect("127.0.0.1:5432")?;
//!     Ok(())
//! });
//! liveness::load(&["database"])?;
//! liveness::set(0)?;
//! // ... work ...
//! liveness::reset()?;
//! # Ok::<(), liveness::Error>(())
//! ```

#![deny(unsafe_code, unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

/// The README's examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The Rust examples of `doc/shutdown.md`, as doctests (`tests/docs.rs`
/// checks that every page with Rust blocks is included here).
#[cfg(doctest)]
#[doc = include_str!("../doc/shutdown.md")]
struct ShutdownDoctests;

// The layers, bottom up, as `ls src` shows them: a module uses modules of
// its own layer or of earlier ones, never of a later one, and no module
// uses itself through others (`tests/layers.rs` checks both).

// The words every layer shares (numbers, durations, signal names, the
// environment) and the one error type.
mod error;
mod vocab;

// Every system call, and the only module allowed `unsafe`.
#[allow(unsafe_code)]
mod os;

// The file contract of `doc/state-format.md`: format, unit, read, write,
// claim, owner, trust, tombstones.
mod state;

// The owner's API: checks, the handle, systemd, the original module's
// process-wide handle.
mod check;
mod global;
mod health;
mod notify;

// Judging: one unit (`liveness probe`), every unit (`liveness status`).
mod probe;

// Acting on units: waiting for them, stopping their owners.
mod terminate;
mod watch;

// Above the API: the supervisor (`liveness run`), graceful shutdown, HTTP.
#[cfg(feature = "http")]
mod http;
mod shutdown;
mod supervise;

// The API, in the order a program meets it.

// The original module's free functions, on one process-wide handle.
pub use crate::global::{
    beat, load, load_with, not_ready, ready, register, register_check, reset, set, set_heartbeat,
    set_with_message,
};
// A unit, and the environment variables that name it (and the rest).
pub use crate::state::unit::Unit;
pub use crate::vocab::env;
// The owner's handle, and the checks it runs before it claims the unit.
pub use crate::check::{Check, CheckResult};
pub use crate::health::{Builder, Health};
// Judging one unit, as `liveness probe` does; every unit, as `liveness
// status` does.
pub use crate::probe::{Mode, Probe, Report, Verdict, status};
// Waiting for units, and stopping their owners.
pub use crate::terminate::{Terminated, terminate};
pub use crate::watch::{Awaited, Progress, wait_for, wait_progress};
// Supervising a child (`liveness run`), and what it leaves: the tombstone.
pub use crate::state::tombstone::Tombstone;
pub use crate::supervise::{Outcome, Supervisor};
// Graceful shutdown.
pub use crate::shutdown::{Shutdown, ShutdownPlan, Unready};
// HTTP endpoints (feature `http`, on by default).
#[cfg(feature = "http")]
pub use crate::http::{Server, ServerBuilder};
// Errors.
pub use crate::error::{Error, ErrorKind, Result};
// Not API: the words the `liveness` binary shares with the library (one
// number parser, one duration parser and formatter, one signal name), which
// it can only reach as public items. Hidden from the documentation.
#[doc(hidden)]
pub use crate::vocab::text;
