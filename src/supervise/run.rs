//! A run: the claim, the birth dependencies, the gate, the loop.
//!
//! The supervisor claims the unit (it holds the `lock`), then starts the
//! child through a gate: the forked child writes its pid to a pipe and blocks
//! before `exec` until the supervisor has recorded its `pid` and `starttime`
//! (exec does not change either). When the child — or anything it runs —
//! then calls `load`, the claim finds the lock held and the `pid` file
//! naming itself: it *attaches* (reports into the unit, does not own it).
//!
//! Signals are blocked and read from a `signalfd` in one `poll` loop with the
//! inotify descriptor of the dependencies and the grace timer: no
//! asynchronous handlers. Every SIGCHLD reaps with `waitpid(-1, WNOHANG)`
//! until nothing is left; the supervisor is a child subreaper (or PID 1), so
//! orphaned descendants are reaped too, and killed when the child ends.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

use super::stop::{Act, Stop};
use super::{Outcome, Supervisor};
use crate::error::{Error, ErrorKind, Result};
use crate::os::proc;
use crate::os::process::{Ended, SupervisorSignals};
use crate::os::{self, process};
use crate::state::claim::{Claim, Target};
use crate::state::format;
use crate::state::kubexit;
use crate::state::owner;
use crate::state::read;
use crate::state::tombstone::Tombstone;
use crate::state::unit::Unit;
use crate::state::write;
use crate::vocab::{env, text};
use crate::watch::{self, Awaited, Watcher};

/// Signals that stop a supervisor still waiting for its birth
/// dependencies (there is no child yet to forward them to).
const STOPS_BEFORE_START: [i32; 4] = [
    nix::libc::SIGTERM,
    nix::libc::SIGINT,
    nix::libc::SIGHUP,
    nix::libc::SIGQUIT,
];

pub(super) fn run(sup: &Supervisor, started: Instant) -> Result<(Outcome, Option<String>)> {
    let Some(program) = sup.argv.first() else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "liveness run",
            "no command",
        ));
    };
    let sys_err = |what: &str, e: io::Error| Error::io(std::path::Path::new(what), e);
    let signals = SupervisorSignals::take().map_err(|e| sys_err("sigprocmask", e))?;
    let sfd = process::signalfd(&signals.set()).map_err(|e| sys_err("signalfd", e))?;
    if std::process::id() != 1
        && let Err(e) = process::set_child_subreaper()
    {
        log::warn!("cannot become a child subreaper: {e}; orphans go to PID 1");
    }

    // Claim for ourselves: the unit is "starting" while the birth
    // dependencies are awaited, and a stale tombstone goes now.
    let me = Target {
        pid: std::process::id(),
        starttime: proc::own_starttime()
            .map_err(|e| Error::io(std::path::Path::new("/proc/self/stat"), e))?,
    };
    let (dir, claim, _key) = owner::claim_unit(&sup.unit, me)?;
    let Claim::Held(lock) = claim else {
        return Err(Error::busy(
            sup.unit.name(),
            Some(me.pid),
            "already claimed for this process",
        ));
    };
    let graveyard = match kubexit::open_graveyard(&sup.unit) {
        None => None,
        Some(Ok(fd)) => Some(fd),
        Some(Err(e)) => {
            let g = sup.unit.graveyard().unwrap_or(std::path::Path::new(""));
            log::warn!("{}: {e}; no kubexit tombstone", g.display());
            None
        }
    };
    let mut state = Run {
        sup,
        dir,
        graveyard,
        lock: Some(lock),
        orphans: 0,
    };
    // From here on the unit is ours: whatever keeps the child from
    // starting is written down as its death, so that death dependents
    // (a Job's sidecars) stop.
    match state.start_and_supervise(program, &sfd, signals, me, started) {
        Ok(done) => Ok(done),
        Err(e) => {
            let code = if e.kind() == ErrorKind::Timeout {
                124
            } else {
                125
            };
            state.bury_unborn(code, &e.to_string());
            Err(e)
        }
    }
}

/// A run in progress: the claimed unit.
struct Run<'s> {
    sup: &'s Supervisor,
    dir: OwnedFd,
    /// kubexit's graveyard, when the unit has one.
    graveyard: Option<OwnedFd>,
    lock: Option<File>,
    orphans: u64,
}

/// How the child's part of a run ended, before the exit-code map: what
/// [`Run::outcome`] turns into the [`Outcome`].
enum Ending {
    /// A stop signal came while the birth dependencies were awaited.
    StoppedBeforeStart(i32),
    /// The command could not be executed: 127 not found, 126 otherwise.
    NotExecuted { code: u8, why: String },
    /// The child ran and ended; `stop` says whether the supervisor stopped
    /// it.
    Ended { ended: Ended, stop: Stop },
}

/// What the loop learned from one batch of signals.
#[derive(Default)]
struct Batch {
    child: Option<Ended>,
    /// Signal numbers, in the order read (real-time ones included).
    signals: Vec<i32>,
}

impl Run<'_> {
    fn unit(&self) -> &Unit {
        &self.sup.unit
    }

    /// Everything after the claim: clear the previous incarnation, wait
    /// for the birth dependencies, run the child.
    fn start_and_supervise(
        &mut self,
        program: &OsString,
        sfd: &SignalFd,
        signals: SupervisorSignals,
        me: Target,
        started: Instant,
    ) -> Result<(Outcome, Option<String>)> {
        // With birth dependencies to wait for, the supervisor records
        // itself, so the unit reads "starting" meanwhile. Without, the
        // unit goes straight to the child (recorded at its gate): writing
        // an identity only to replace it costs, on a disk-backed file
        // system, a rename over an existing file, which makes ext4 flush
        // the new file (auto_da_alloc) and the later unlink wait for it.
        let sup = self.sup;
        let owner = (!sup.birth_deps.is_empty()).then_some(me);
        owner::start_incarnation(self.unit(), self.dir.as_fd(), owner, false)?;
        if let Some(g) = &self.graveyard {
            // A previous incarnation's death must not stop a dependent of
            // this one.
            if let Err(e) = write::remove_at(g.as_fd(), sup.unit.name()) {
                log::warn!("{}: {e}", self.graveyard_file().display());
            }
        }

        if !sup.birth_deps.is_empty()
            && let Some(sig) = self.await_birth(sfd)?
        {
            let name = text::signal_name(sig);
            self.bury_unborn(
                128 + sig as u8,
                &format!("stopped by {name} before it started"),
            );
            let outcome = self.outcome(Ending::StoppedBeforeStart(sig), started.elapsed());
            return Ok((outcome, None));
        }
        self.supervise(program, sfd, signals)
    }

    /// `<graveyard>/<unit>`, for messages.
    fn graveyard_file(&self) -> PathBuf {
        self.unit()
            .graveyard()
            .map(|g| g.join(self.unit().name()))
            .unwrap_or_default()
    }

    /// Writes `t` as the unit's tombstone and, with a graveyard, as
    /// kubexit's `<graveyard>/<unit>`; `fresh` when the names are free
    /// (removed at the claim), else each old file is removed first (see
    /// [`write::replace_fresh`]).
    fn write_tombstone(&self, t: &Tombstone, fresh: bool) -> Result<()> {
        let bytes = t.to_bytes();
        let write = |dir: BorrowedFd<'_>, name: &str| {
            if fresh {
                write::write_at(dir, name, &bytes, false)
            } else {
                write::replace_fresh(dir, name, &bytes)
            }
        };
        if let Some(g) = &self.graveyard
            && let Err(e) = write(g.as_fd(), self.unit().name())
        {
            log::warn!("{}: {e}", self.graveyard_file().display());
        }
        write(self.dir.as_fd(), format::TOMBSTONE)
            .map_err(|e| Error::io(&self.unit().file(format::TOMBSTONE), e))
    }

    /// The child never started: a tombstone with `Died`, status `code` and
    /// the reason, then the state goes (the tombstone stays).
    fn bury_unborn(&mut self, code: u8, reason: &str) {
        let t = Tombstone::never_started(SystemTime::now(), code, reason);
        if let Err(e) = self.write_tombstone(&t, false) {
            log::warn!("{e}");
        }
        self.clear();
    }

    /// Reads every pending signal; reaps on SIGCHLD.
    fn read_signals(&mut self, sfd: &SignalFd, child: Option<u32>) -> Batch {
        let mut batch = Batch::default();
        while let Ok(Some(info)) = sfd.read_signal() {
            let signo = info.ssi_signo as i32;
            if signo != nix::libc::SIGCHLD {
                batch.signals.push(signo);
            }
        }
        // Reap on every wake-up: SIGCHLDs coalesce.
        loop {
            match process::reap_any(false) {
                Ok(Some((pid, ended))) if Some(pid) == child => batch.child = Some(ended),
                Ok(Some((pid, _))) => {
                    self.orphans += 1;
                    log::debug!("reaped orphan {pid}");
                }
                Ok(None) | Err(_) => break,
            }
        }
        batch
    }

    /// Waits for the birth dependencies. `Ok(Some(sig))` when a stop signal
    /// came first.
    fn await_birth(&mut self, sfd: &SignalFd) -> Result<Option<i32>> {
        let deps = &self.sup.birth_deps;
        let watcher = Watcher::new(deps);
        let deadline = Instant::now() + self.sup.birth_timeout;
        loop {
            watcher.drain();
            let left = watch::pending(deps, Awaited::Ready);
            if left.is_empty() {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= deadline {
                let list = left
                    .iter()
                    .map(|(u, why)| format!("{u} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("unit {}", self.unit().name()),
                    format!(
                        "birth dependencies not ready after {}: {list}",
                        text::duration_text(self.sup.birth_timeout)
                    ),
                ));
            }
            let mut fds = vec![sfd.as_fd()];
            fds.extend(watcher.fd());
            let wait = (deadline - now).min(watch::FALLBACK);
            let _ = os::poll_readable(&fds, watch::millis(wait));
            let batch = self.read_signals(sfd, None);
            if let Some(s) = batch
                .signals
                .iter()
                .find(|s| STOPS_BEFORE_START.contains(s))
            {
                log::info!(
                    "{} before the child started: not starting it",
                    text::signal_name(*s)
                );
                return Ok(Some(*s));
            }
        }
    }

    /// Starts the child through the gate, supervises it, cleans up.
    fn supervise(
        &mut self,
        program: &OsString,
        sfd: &SignalFd,
        signals: SupervisorSignals,
    ) -> Result<(Outcome, Option<String>)> {
        let sup = self.sup;
        let (pid_r, pid_w) = process::pipe().map_err(|e| Error::io(&self.unit().dir(), e))?;
        let (rel_r, rel_w) = process::pipe().map_err(|e| Error::io(&self.unit().dir(), e))?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(&sup.argv[1..])
            .env(env::UNIT, self.unit().name())
            .env(env::RUNDIR, self.unit().rundir());
        if sup.process_group {
            cmd.process_group(0);
        }
        process::gate_before_exec(&mut cmd, [&pid_w, &rel_r, &rel_w], signals);
        let this = &*self;
        let (spawned, gate) = std::thread::scope(|s| {
            // A small stack: the gate writes five small files, and a default
            // 2 MiB stack costs mapping and unmapping on every run.
            let gate = std::thread::Builder::new()
                .name("gate".into())
                .stack_size(128 * 1024)
                .spawn_scoped(s, move || this.gate(this.dir.as_fd(), pid_r, rel_w));
            let spawned = cmd.spawn();
            // The child has its own copy (or never ran): ours must go for
            // the gate to see end-of-file if the child wrote nothing.
            drop(pid_w);
            let gate = match gate {
                Ok(g) => g.join().unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Io,
                        "liveness run",
                        "gate thread panicked",
                    ))
                }),
                Err(e) => Err(Error::new(
                    ErrorKind::Io,
                    "liveness run",
                    format!("cannot start the gate thread: {e}"),
                )),
            };
            (spawned, gate)
        });
        drop(rel_r);
        let born = match gate {
            Ok(born) => born,
            Err(e) => {
                if let Ok(mut child) = spawned {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(e);
            }
        };
        let started = Instant::now();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let code = match e.raw_os_error() {
                    Some(nix::libc::ENOENT | nix::libc::ENOTDIR) => 127,
                    _ => 126,
                };
                let why = format!("{}: {}", program.to_string_lossy(), text::error_text(&e));
                let _ = born; // the program never ran: no birth
                self.bury_unborn(code, &why);
                let outcome = self.outcome(Ending::NotExecuted { code, why }, started.elapsed());
                return Ok((outcome, None));
            }
        };
        let pid = child.id();
        drop(child); // reaped with waitpid(-1), never through std
        log::info!("unit {}: started pid {pid}", self.unit().name());

        let (ended, stop) = self.supervise_child(pid, sfd);
        let duration = started.elapsed();
        self.kill_descendants(pid);
        let last = self.finish(&born, ended);
        let outcome = self.outcome(Ending::Ended { ended, stop }, duration);
        log::info!(
            "unit {}: pid {pid} ended with status {}",
            self.unit().name(),
            outcome.child_code
        );
        Ok((outcome, last))
    }

    /// The loop, as tini's: read the signals and reap; hand each signal,
    /// each death of a dependency and the clock to the stop policy
    /// ([`Stop`]) and do what it says; sleep until the next of them.
    /// Returns how the child ended, and the policy's final state.
    fn supervise_child(&mut self, pid: u32, sfd: &SignalFd) -> (Ended, Stop) {
        let deps = &self.sup.death_deps;
        let death = (!deps.is_empty()).then(|| Watcher::new(deps));
        let mut stop = Stop::new(self.sup.grace);
        let mut check_deaths = death.is_some();
        loop {
            let batch = self.read_signals(sfd, Some(pid));
            if let Some(ended) = batch.child {
                return (ended, stop);
            }
            for sig in batch.signals {
                let act = stop.on_signal(sig, Instant::now());
                self.act(pid, act);
            }
            if let Some(w) = &death
                && check_deaths
            {
                w.drain();
                if stop.watches_deaths()
                    && let Some((unit, why)) = dead_dep(deps)
                {
                    log::info!("death dependency {unit}: {why}: stopping pid {pid}");
                    let why = format!("death dependency {unit}: {why}");
                    let act = stop.on_dead_dep(why, Instant::now());
                    self.act(pid, act);
                }
            }
            let now = Instant::now();
            let act = stop.on_tick(now);
            self.act(pid, act);
            let mut fds = vec![sfd.as_fd()];
            if stop.watches_deaths()
                && let Some(fd) = death.as_ref().and_then(Watcher::fd)
            {
                fds.push(fd);
            }
            let timeout = stop.poll_timeout(now, death.is_some());
            let ready =
                os::poll_readable(&fds, timeout.map_or(-1, watch::millis)).unwrap_or_default();
            // Re-check the dependencies on an inotify event or a fallback
            // tick (a timeout), not on every signal.
            check_deaths = ready.get(1).copied().unwrap_or(false) || !ready.iter().any(|r| *r);
        }
    }

    /// Does what the stop policy says about the child `pid`.
    fn act(&self, pid: u32, act: Act) {
        match act {
            Act::Nothing => {}
            Act::Forward(sig) => self.signal(pid, sig),
            Act::Stop(sig) => self.begin_stop(pid, sig),
            Act::Kill(why) => {
                log::info!("{why}: killing pid {pid}");
                self.signal(pid, nix::libc::SIGKILL);
            }
        }
    }

    /// The one place an [`Outcome`] is made: from how the child's part of
    /// the run ended, after the exit-code map.
    fn outcome(&self, ending: Ending, duration: Duration) -> Outcome {
        let (code, signal, exec_error, stopped_by, killed) = match ending {
            Ending::StoppedBeforeStart(sig) => (
                128 + sig as u8,
                Some(sig),
                None,
                Some(text::signal_name(sig)),
                false,
            ),
            Ending::NotExecuted { code, why } => (code, None, Some(why), None, false),
            Ending::Ended { ended, stop } => {
                let (code, signal) = match ended {
                    Ended::Code(c) => (c, None),
                    Ended::Signal(n) => (u8::try_from(128 + n).unwrap_or(u8::MAX), Some(n)),
                };
                (code, signal, None, stop.stopped_by(), stop.killed())
            }
        };
        Outcome {
            exit_code: self.sup.map_code(code),
            child_code: code,
            signal,
            exec_error,
            stopped_by,
            killed,
            orphans_reaped: self.orphans,
            duration,
        }
    }

    /// The parent side of the gate (runs on a helper thread while `spawn`
    /// waits for the exec): reads the child's pid, records it, releases it.
    fn gate(&self, dir: BorrowedFd<'_>, pid_r: OwnedFd, rel_w: OwnedFd) -> Result<Tombstone> {
        let unit = self.unit();
        let mut buf = [0u8; 4];
        File::from(pid_r).read_exact(&mut buf).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("unit {}", unit.name()),
                format!("the child never reached its gate: {e}"),
            )
        })?;
        let pid = u32::try_from(i32::from_ne_bytes(buf)).unwrap_or(0);
        let starttime = proc::starttime_of(pid)
            .map_err(|e| Error::io(std::path::Path::new(&format!("/proc/{pid}/stat")), e))?
            .ok_or_else(|| {
                Error::new(ErrorKind::Io, format!("pid {pid}"), "vanished at its gate")
            })?;
        // The unit has been ours, untouched, since the claim: only its
        // owner changes.
        owner::write_identity(unit, dir, Target { pid, starttime }, false)?;
        let born = Tombstone::born(SystemTime::now());
        let write = |name: &str, bytes: &[u8]| {
            write::write_at(dir, name, bytes, false).map_err(|e| Error::io(&unit.file(name), e))
        };
        // Fresh names: the claim removed the previous tombstones.
        self.write_tombstone(&born, true)?;
        if self.sup.ready_on_start {
            write(format::ERROR, &format::format_number(0))?;
            write(format::READY, b"")?;
        }
        File::from(rel_w)
            .write_all(&[1])
            .map_err(|e| Error::new(ErrorKind::Io, format!("pid {pid}"), e.to_string()))?;
        Ok(born)
    }

    /// Sends signal number `sig` to the child (or its process group).
    fn signal(&self, pid: u32, sig: i32) {
        match process::kill_raw(pid, sig, self.sup.process_group) {
            Ok(()) => log::debug!("sent {} to {pid}", text::signal_name(sig)),
            Err(e) => log::debug!("cannot send {} to {pid}: {e}", text::signal_name(sig)),
        }
    }

    /// Marks the unit not ready and sends the stop signal: the grace
    /// starts (see [`Stop`]).
    fn begin_stop(&self, pid: u32, sig: i32) {
        if let Err(e) = write::remove_at(self.dir.as_fd(), format::READY) {
            log::warn!("{}: {e}", self.unit().file(format::READY).display());
        }
        self.signal(pid, sig);
    }

    /// Kills and reaps whatever is left: the child's process group, then
    /// every process re-parented to us, until we have no children.
    ///
    /// Children are found in `/proc`. When `/proc` belongs to another PID
    /// namespace, PID 1 kills everything in its namespace (`kill(-1)`); any
    /// other supervisor can only reap what has already exited.
    fn kill_descendants(&mut self, pid: u32) {
        if self.sup.process_group {
            let _ = process::kill(pid, Signal::SIGKILL, true);
        }
        let me = std::process::id();
        loop {
            // Orphans re-parented to us are our children: with none left
            // (the common case) there is nothing to find, and no need to
            // read every process's stat in `/proc`.
            match process::reap_any(false) {
                Err(_) => break, // ECHILD
                Ok(Some((p, _))) => {
                    self.orphans += 1;
                    log::debug!("reaped {p}");
                    continue;
                }
                Ok(None) => {}
            }
            match proc::children_of(me) {
                Some(children) => {
                    for child in children {
                        let _ = process::kill(child, Signal::SIGKILL, false);
                    }
                }
                None if me == 1 => process::kill_all_but_self(),
                None => {
                    log::warn!("/proc is not this PID namespace's: cannot find descendants");
                    while let Ok(Some(_)) = process::reap_any(false) {
                        self.orphans += 1;
                    }
                    return;
                }
            }
            match process::reap_any(true) {
                Ok(Some((p, _))) => {
                    self.orphans += 1;
                    log::debug!("killed and reaped {p}");
                }
                Ok(None) => {}
                Err(_) => break, // ECHILD: nothing left
            }
        }
    }

    /// Writes the tombstone's death and clears the state. Returns the last
    /// error and message, for the termination log.
    fn finish(&mut self, born: &Tombstone, ended: Ended) -> Option<String> {
        let (code, signal) = match ended {
            Ended::Code(c) => (c, None),
            Ended::Signal(n) => (0, Some(n)),
        };
        let dead = born.clone().died(SystemTime::now(), code, signal);
        if let Err(e) = self.write_tombstone(&dead, false) {
            log::warn!("{e}");
        }
        let last = self.last_report();
        self.clear();
        last
    }

    /// `error N: message` as last reported, if any.
    fn last_report(&self) -> Option<String> {
        let dir = self.dir.as_fd();
        let error = read::read_parsed(dir, format::ERROR, format::parse_error).ok()??;
        Some(match read::message(dir).ok().flatten() {
            Some(m) => format!("error {error}: {m}"),
            None => format!("error {error}"),
        })
    }

    /// Removes the state in the order `reset` uses (the tombstone stays),
    /// releases the lock.
    fn clear(&mut self) {
        for &name in format::REPORT_FILES.iter().chain(&format::IDENTITY_FILES) {
            if let Err(e) = write::remove_at(self.dir.as_fd(), name) {
                log::warn!("{}: {e}", self.unit().file(name).display());
            }
        }
        self.lock = None;
    }
}

/// The first death dependency that has died, and how (see
/// [`watch::death`]).
fn dead_dep(deps: &[Unit]) -> Option<(String, String)> {
    deps.iter()
        .find_map(|u| watch::death(u).map(|how| (u.name().to_owned(), how)))
}
