//! A kubelet-shaped prober: it runs one container and its exec probes the way
//! the kubelet does, with periods in milliseconds so that a scenario takes
//! seconds. Used by `tests/kubelet.rs`.
//!
//! What it reproduces of the kubelet (`pkg/kubelet/prober`):
//!
//! - each probe runs on its own worker every `period`, first after
//!   `initial_delay`; a run is an exec of the probe command with a
//!   `timeout` deadline, after which the probe's process group is killed and
//!   the run is a failure ("command timed out");
//! - at most 10 KiB of a probe's output is kept (the kubelet's
//!   `maxProbeOutputLength`);
//! - a result flips only after `failure_threshold` consecutive failures or
//!   `success_threshold` consecutive successes;
//! - liveness and readiness probes do not run until the startup probe has
//!   succeeded; a container starts unready;
//! - a liveness (or startup) failure restarts the container: SIGTERM to its
//!   process group, SIGKILL after `grace`, then a new incarnation, whose
//!   probes start over; an exited container is restarted under
//!   `RestartPolicy::Always` and left dead under `Never` (a Job's pod).
//!
//! Everything observable is an [`Event`] with its time; tests wait for
//! events with deadline polling and assert their order, never durations.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::common::Proc;

/// The kubelet's `maxProbeOutputLength`.
pub const MAX_PROBE_OUTPUT: usize = 10 * 1024;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

/// One probe of a container spec.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub command: Vec<OsString>,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

impl ProbeSpec {
    /// An exec probe with short test periods: every 100 ms, 1 s deadline,
    /// failure threshold 3, success threshold 1 (the kubelet's defaults,
    /// scaled down from seconds).
    pub fn exec<S: Into<OsString>>(command: impl IntoIterator<Item = S>) -> ProbeSpec {
        ProbeSpec {
            command: command.into_iter().map(Into::into).collect(),
            initial_delay: Duration::ZERO,
            period: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            failure_threshold: 3,
            success_threshold: 1,
        }
    }

    pub fn failure_threshold(mut self, n: u32) -> ProbeSpec {
        self.failure_threshold = n;
        self
    }

    pub fn success_threshold(mut self, n: u32) -> ProbeSpec {
        self.success_threshold = n;
        self
    }

    pub fn timeout(mut self, t: Duration) -> ProbeSpec {
        self.timeout = t;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    Never,
}

/// A container: its command, environment and probes.
#[derive(Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub command: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub startup: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub readiness: Option<ProbeSpec>,
    pub restart: RestartPolicy,
    /// Time between SIGTERM and SIGKILL when the kubelet kills the container.
    pub grace: Duration,
    /// Prefixes every probe command, given the container's pid: e.g.
    /// `nsenter` into the container's namespaces, as the runtime's exec does.
    pub probe_prefix: Option<Arc<dyn Fn(u32) -> Vec<OsString> + Send + Sync>>,
}

impl ContainerSpec {
    pub fn new<S: Into<OsString>>(name: &str, command: impl IntoIterator<Item = S>) -> Self {
        ContainerSpec {
            name: name.to_owned(),
            command: command.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            startup: None,
            liveness: None,
            readiness: None,
            restart: RestartPolicy::Always,
            grace: Duration::from_secs(2),
            probe_prefix: None,
        }
    }

    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn probe(mut self, kind: Kind, spec: ProbeSpec) -> Self {
        match kind {
            Kind::Startup => self.startup = Some(spec),
            Kind::Liveness => self.liveness = Some(spec),
            Kind::Readiness => self.readiness = Some(spec),
        }
        self
    }

    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }
}

/// What happened, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Incarnation `n` (1, 2, ...) started with this pid.
    Started { n: u32, pid: u32 },
    /// A line the container printed on stdout.
    Output { n: u32, line: String },
    /// One probe run and its result, with the probe's (capped) output.
    Probed {
        n: u32,
        kind: Kind,
        ok: bool,
        exit: Option<i32>,
        output: String,
    },
    /// The startup probe succeeded: liveness and readiness probes begin.
    StartupSucceeded { n: u32 },
    /// The container became ready (routable) or unready.
    Ready { n: u32, ready: bool },
    /// The kubelet decided to restart the container.
    Killing { n: u32, why: String },
    /// Something the test did (e.g. "SIGTERM sent"), to order it among
    /// the kubelet's events.
    Note(String),
    /// Incarnation `n` exited: exit code, or the signal that killed it.
    Exited {
        n: u32,
        code: Option<i32>,
        signal: Option<i32>,
    },
}

type Log = Arc<Mutex<Vec<(Instant, Event)>>>;

struct Running {
    n: u32,
    /// The container's process tree (common's harness), its stdout logged
    /// as events.
    proc: Proc,
    started_ok: bool,
    ready: bool,
    /// Set by a probe worker: kill and restart this incarnation.
    kill: Option<String>,
}

struct Shared {
    spec: ContainerSpec,
    log: Log,
    stop: AtomicBool,
    current: Mutex<Option<Running>>,
}

/// One container under a kubelet-shaped prober. Dropping it kills the
/// container's process group and stops the probes.
pub struct Kubelet {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

fn record(log: &Log, e: Event) {
    log.lock().unwrap().push((Instant::now(), e));
}

impl Kubelet {
    /// Starts the container and its probe workers.
    pub fn start(spec: ContainerSpec) -> Kubelet {
        let shared = Arc::new(Shared {
            spec,
            log: Arc::new(Mutex::new(Vec::new())),
            stop: AtomicBool::new(false),
            current: Mutex::new(None),
        });
        start_incarnation(&shared, 1);
        let mut threads = Vec::new();
        {
            let shared = Arc::clone(&shared);
            threads.push(std::thread::spawn(move || manage(&shared)));
        }
        for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
            let spec = match kind {
                Kind::Startup => shared.spec.startup.clone(),
                Kind::Liveness => shared.spec.liveness.clone(),
                Kind::Readiness => shared.spec.readiness.clone(),
            };
            if let Some(spec) = spec {
                let shared = Arc::clone(&shared);
                threads.push(std::thread::spawn(move || worker(&shared, kind, &spec)));
            }
        }
        Kubelet { shared, threads }
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Every event so far with the time it was recorded, to order events
    /// of several containers of one pod.
    pub fn timed_events(&self) -> Vec<(Instant, Event)> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Waits (deadline polling, up to `timeout`) until `pred` holds for the
    /// events so far; panics with the event log otherwise.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&[Event]) -> bool) {
        if !crate::common::wait_until(timeout, || pred(&self.events())) {
            panic!(
                "{}: timed out waiting for {what}; events:\n{}",
                self.shared.spec.name,
                self.dump()
            );
        }
    }

    /// The event log, one event per line, for failure messages.
    pub fn dump(&self) -> String {
        let log = self.shared.log.lock().unwrap();
        let t0 = log.first().map(|(t, _)| *t);
        log.iter()
            .map(|(t, e)| {
                let ms = t0.map_or(0, |t0| t.duration_since(t0).as_millis());
                format!("{ms:>6} ms  {e:?}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Writes one line to the current incarnation's standard input.
    pub fn send(&self, line: &str) {
        let mut cur = self.shared.current.lock().unwrap();
        cur.as_mut().expect("a running container").proc.send(line);
    }

    /// The current incarnation's pid.
    pub fn pid(&self) -> Option<u32> {
        self.shared
            .current
            .lock()
            .unwrap()
            .as_ref()
            .map(|r| r.proc.tree.child.id())
    }

    /// Sends `sig` to the current incarnation's process (not its group), as
    /// the container runtime does to a container's PID 1, and records it.
    pub fn signal(&self, sig: Signal) {
        record(&self.shared.log, Event::Note(format!("{sig} sent")));
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), sig);
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Dropping the incarnation kills its process group and reaps it.
        drop(self.shared.current.lock().unwrap().take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn start_incarnation(shared: &Arc<Shared>, n: u32) {
    let spec = &shared.spec;
    let mut cmd = Command::new(&spec.command[0]);
    cmd.args(&spec.command[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped());
    // A container starts with default signal dispositions, whatever the
    // test runner inherited.
    crate::common::default_signals(&mut cmd);
    // `Started` comes before the first `Output`: the log stays locked,
    // and the lines wait, until it is recorded.
    let log = Arc::clone(&shared.log);
    let mut held = shared.log.lock().unwrap();
    let proc = Proc::spawn_observed(&mut cmd, move |line| {
        let line = line.to_owned();
        record(&log, Event::Output { n, line });
    });
    let pid = proc.tree.child.id();
    held.push((Instant::now(), Event::Started { n, pid }));
    drop(held);
    *shared.current.lock().unwrap() = Some(Running {
        n,
        proc,
        started_ok: spec.startup.is_none(),
        ready: false,
        kill: None,
    });
}

/// The container manager: notices exits and kill requests, restarts.
fn manage(shared: &Arc<Shared>) {
    let mut next = 2;
    while !shared.stop.load(Ordering::SeqCst) {
        let mut cur = shared.current.lock().unwrap();
        let Some(run) = cur.as_mut() else {
            drop(cur);
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let n = run.n;
        if let Some(why) = run.kill.take() {
            record(&shared.log, Event::Killing { n, why });
            let pgid = Pid::from_raw(run.proc.tree.child.id() as i32);
            let _ = killpg(pgid, Signal::SIGTERM);
            let deadline = Instant::now() + shared.spec.grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = run.proc.tree.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        match run.proc.tree.child.try_wait() {
            Ok(Some(status)) => {
                // The rest of the container's process group dies with it.
                let _ = killpg(
                    Pid::from_raw(run.proc.tree.child.id() as i32),
                    Signal::SIGKILL,
                );
                record(
                    &shared.log,
                    Event::Exited {
                        n,
                        code: status.code(),
                        signal: status.signal(),
                    },
                );
                if run.ready {
                    record(&shared.log, Event::Ready { n, ready: false });
                }
                *cur = None;
                drop(cur);
                if shared.spec.restart == RestartPolicy::Always
                    && !shared.stop.load(Ordering::SeqCst)
                {
                    start_incarnation(shared, next);
                    next += 1;
                } else {
                    return;
                }
            }
            _ => {
                drop(cur);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// One probe worker: runs its probe every period against whichever
/// incarnation is current, and counts thresholds per incarnation.
fn worker(shared: &Arc<Shared>, kind: Kind, spec: &ProbeSpec) {
    let mut seen = 0;
    let (mut fails, mut oks) = (0u32, 0u32);
    let mut next = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(
            next.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20)),
        );
        if Instant::now() < next {
            continue;
        }
        let (n, pid, gated) = {
            let cur = shared.current.lock().unwrap();
            match cur.as_ref() {
                None => {
                    next = Instant::now() + Duration::from_millis(10);
                    continue;
                }
                Some(r) => {
                    let gated = match kind {
                        Kind::Startup => r.started_ok,
                        _ => !r.started_ok,
                    };
                    (r.n, r.proc.tree.child.id(), gated || r.kill.is_some())
                }
            }
        };
        if n != seen {
            // A new incarnation: the probe starts over after its delay.
            seen = n;
            fails = 0;
            oks = 0;
            next = Instant::now() + spec.initial_delay;
            continue;
        }
        next += spec.period;
        if gated {
            continue;
        }
        let (ok, exit, output) = exec_probe(shared, spec, pid);
        record(
            &shared.log,
            Event::Probed {
                n,
                kind,
                ok,
                exit,
                output: output.clone(),
            },
        );
        if ok {
            oks += 1;
            fails = 0;
        } else {
            fails += 1;
            oks = 0;
        }
        let mut cur = shared.current.lock().unwrap();
        let Some(run) = cur.as_mut().filter(|r| r.n == n) else {
            continue;
        };
        match kind {
            Kind::Startup if ok => {
                run.started_ok = true;
                record(&shared.log, Event::StartupSucceeded { n });
            }
            Kind::Startup | Kind::Liveness if fails >= spec.failure_threshold => {
                let why = format!("{kind:?} probe failed: {}", output.trim_end());
                run.kill.get_or_insert(why);
            }
            Kind::Readiness if ok && !run.ready && oks >= spec.success_threshold => {
                run.ready = true;
                record(&shared.log, Event::Ready { n, ready: true });
            }
            Kind::Readiness if !ok && run.ready && fails >= spec.failure_threshold => {
                run.ready = false;
                record(&shared.log, Event::Ready { n, ready: false });
            }
            _ => {}
        }
    }
}

/// Execs `spec.command` with its deadline; `(success, exit code, output)`.
fn exec_probe(
    shared: &Shared,
    spec: &ProbeSpec,
    container_pid: u32,
) -> (bool, Option<i32>, String) {
    let mut argv: Vec<OsString> = match &shared.spec.probe_prefix {
        Some(prefix) => prefix(container_pid),
        None => Vec::new(),
    };
    argv.extend(spec.command.iter().cloned());
    let out_path: PathBuf = std::env::temp_dir().join(format!(
        "kubelet-probe-{}-{:?}-{}",
        std::process::id(),
        std::thread::current().id(),
        container_pid
    ));
    let out = std::fs::File::create(&out_path).expect("probe output file");
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(shared.spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (false, None, format!("exec failed: {e}")),
    };
    let deadline = Instant::now() + spec.timeout;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(&out_path) {
        let _ = f.take(MAX_PROBE_OUTPUT as u64).read_to_end(&mut buf);
    }
    let _ = std::fs::remove_file(&out_path);
    let output = String::from_utf8_lossy(&buf).into_owned();
    match status {
        None => (
            false,
            None,
            format!("command timed out after {:?}", spec.timeout),
        ),
        Some(st) => (st.success(), st.code(), output),
    }
}

/// Index of the first event matching `pred`.
pub fn position(events: &[Event], pred: impl Fn(&Event) -> bool) -> Option<usize> {
    events.iter().position(pred)
}
