//! The one process-tree harness: a command started as the leader of a
//! process group of its own, its output collected line by line on threads
//! of its own, waited for by deadline polling, and its whole group
//! SIGKILLed and reaped on drop, whatever the test did. Two ways to run one:
//!
//! - [`Proc`], for a process the test talks to while it runs: wait for a
//!   line, signal it, write to its stdin, collect its exit;
//! - [`run_bounded`] (and [`run_to_end`]), for a command that should just
//!   end: its output and exit code, or a hang reported as such.
//!
//! Every assertion helper says, when it fails, what the process printed on
//! stdout and stderr.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{PATIENCE, Ran, Tree, wait_until};

/// What a process printed on one stream so far, collected line by line on
/// a thread of its own.
pub struct Lines {
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Lines {
    /// Collects `reader` until its end; `each` also sees every line.
    pub fn collect(
        reader: impl Read + Send + 'static,
        mut each: impl FnMut(&str) + Send + 'static,
    ) -> Lines {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                each(&line);
                sink.lock().unwrap().push(line);
            }
        });
        Lines {
            lines,
            reader: Some(reader),
        }
    }

    /// The lines so far.
    pub fn get(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The lines so far, each followed by a newline.
    pub fn text(&self) -> String {
        self.get().iter().map(|l| format!("{l}\n")).collect()
    }

    /// Waits (up to [`PATIENCE`]) for the end of the stream; `false` when
    /// something (a grandchild) still holds it open.
    fn finish(&mut self) -> bool {
        let Some(r) = self.reader.take() else {
            return true;
        };
        if wait_until(PATIENCE, || r.is_finished()) {
            r.join().unwrap();
            true
        } else {
            false
        }
    }
}

/// A process tree under test (see the module's documentation): stdout and
/// stderr collected, stdin kept when the command had it piped.
pub struct Proc {
    pub tree: Tree,
    out: Lines,
    err: Lines,
    stdin: Option<ChildStdin>,
    /// How many stdout lines [`Proc::next_line`] has returned.
    read: usize,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr piped.
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc::spawn_observed(cmd, |_| {})
    }

    /// As [`Proc::spawn`]; `each` also sees every line of stdout as it
    /// comes (`tests/common/kubelet.rs` logs them as events).
    pub fn spawn_observed(cmd: &mut Command, each: impl FnMut(&str) + Send + 'static) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut tree = Tree::spawn(cmd);
        let out = Lines::collect(tree.child.stdout.take().unwrap(), each);
        let err = Lines::collect(tree.child.stderr.take().unwrap(), |_| {});
        let stdin = tree.child.stdin.take();
        Proc {
            tree,
            out,
            err,
            stdin,
            read: 0,
        }
    }

    pub fn pid(&self) -> i32 {
        self.tree.pid()
    }

    /// Sends `sig` to the leader only.
    pub fn signal(&self, sig: Signal) {
        self.tree.signal(sig);
    }

    /// Writes `line` and a newline to its stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin was not piped");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes its stdin: a child reading it sees the end.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Its stdout so far, line by line.
    pub fn lines(&self) -> Vec<String> {
        self.out.get()
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        self.err.text()
    }

    /// Both streams so far, for a failure message.
    pub fn describe(&self) -> String {
        format!(
            "--- stdout:\n{}--- stderr:\n{}",
            self.out.text(),
            self.err.text()
        )
    }

    /// How many stdout lines are exactly `line`.
    pub fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| *l == line).count()
    }

    /// Whether a stdout line contains `needle`.
    pub fn has(&self, needle: &str) -> bool {
        self.lines().iter().any(|l| l.contains(needle))
    }

    /// The index of the first stdout line containing `needle`.
    pub fn pos(&self, needle: &str) -> usize {
        self.lines()
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}\n{}", self.describe()))
    }

    /// Waits until a stdout line contains `needle`.
    pub fn wait_for(&self, needle: &str) {
        assert!(
            wait_until(PATIENCE, || self.has(needle)),
            "no line with {needle:?}\n{}",
            self.describe()
        );
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str) {
        assert!(
            wait_until(PATIENCE, || self.stderr().contains(needle)),
            "stderr never had {needle:?}\n{}",
            self.describe()
        );
    }

    /// Waits until the stdout line `line` has been printed `n` times.
    pub fn expect_n(&self, line: &str, n: usize) {
        assert!(
            wait_until(PATIENCE, || self.count(line) >= n),
            "never printed {line:?} x{n}\n{}",
            self.describe()
        );
    }

    /// Waits until the stdout line `line` has been printed.
    pub fn expect(&self, line: &str) {
        self.expect_n(line, 1);
    }

    /// The next stdout line this test has not read yet, waiting for it.
    pub fn next_line(&mut self) -> String {
        let i = self.read;
        assert!(
            wait_until(PATIENCE, || self.out.get().len() > i),
            "no line {} on stdout\n{}",
            i + 1,
            self.describe()
        );
        self.read += 1;
        self.out.get()[i].clone()
    }

    /// Asserts that the stdout lines containing `markers` come in this
    /// order.
    pub fn assert_order(&self, markers: &[&str]) {
        let pos: Vec<usize> = markers.iter().map(|m| self.pos(m)).collect();
        assert!(
            pos.windows(2).all(|w| w[0] < w[1]),
            "markers {markers:?} at {pos:?}\n{}",
            self.describe()
        );
    }

    /// Waits for it to exit, then for its output to end.
    pub fn exit(&mut self) -> ExitStatus {
        let Some(st) = self.tree.wait_timeout(PATIENCE) else {
            panic!("it did not exit\n{}", self.describe());
        };
        // The pipes close with the process (and what it left running).
        self.out.finish();
        self.err.finish();
        st
    }

    /// Waits for it to exit: its exit code, or 128 + N for signal N.
    pub fn code(&mut self) -> i32 {
        let st = self.exit();
        st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
    }

    /// Waits for it to exit and asserts its exit code.
    pub fn assert_code(&mut self, expected: i32) {
        let code = self.code();
        assert_eq!(code, expected, "exit code\n{}", self.describe());
    }
}

/// How a bounded run ([`run_bounded`]) ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It exited (or a signal killed it: `code` is 128 + N), with its peak
    /// resident set size in KiB.
    Done(Ran, u64),
    /// Still running at the limit: killed, with what it had printed.
    Hung {
        limit: Duration,
        stdout: String,
        stderr: String,
    },
}

impl Outcome {
    /// The exit code, or `None` for a hang.
    pub fn code(&self) -> Option<i32> {
        match self {
            Outcome::Done(r, _) => Some(r.code),
            Outcome::Hung { .. } => None,
        }
    }

    /// What it printed on stderr.
    pub fn stderr(&self) -> &str {
        match self {
            Outcome::Done(r, _) => &r.stderr,
            Outcome::Hung { stderr, .. } => stderr,
        }
    }

    /// One line for a failure message.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Done(r, _) => format!("exit {}: {:?}", r.code, r.stderr.trim_end()),
            Outcome::Hung { limit, stderr, .. } => {
                format!("HUNG (killed after {limit:?}): {:?}", stderr.trim_end())
            }
        }
    }

    /// As a [`Ran`]: a hang is exit code -1, its stderr ending with
    /// "(timed out)".
    pub fn ran(self) -> Ran {
        match self {
            Outcome::Done(r, _) => r,
            Outcome::Hung { stdout, stderr, .. } => Ran {
                code: -1,
                stdout,
                stderr: format!("{stderr}\n(timed out)"),
            },
        }
    }
}

/// Runs `cmd` (stdin closed, stdout and stderr read as they come, so a
/// chatty child never blocks on a full pipe) as the leader of a process
/// group of its own, which is SIGKILLed when the leader exits or `limit`
/// passes: whatever it left in the background dies with it, so the pipes
/// close. A hang is an outcome of its own, never a long test.
#[allow(clippy::zombie_processes)] // reaped by wait4 in `reap`, or waited for
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let ended = loop {
        if let Some(ended) = reap(child.id() as i32) {
            break Some(ended);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // The group: anything the command started dies with it (and a finished
    // command has nothing left, so ESRCH is fine).
    let _ = nix::sys::signal::killpg(pgid, Signal::SIGKILL);
    if ended.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    match ended {
        Some((code, maxrss_kib)) => Outcome::Done(
            Ran {
                code,
                stdout,
                stderr,
            },
            maxrss_kib,
        ),
        None => Outcome::Hung {
            limit,
            stdout,
            stderr,
        },
    }
}

/// [`run_bounded`] as a [`Ran`]: exit code -1 on timeout (stderr then
/// ends with "(timed out)"). Used by `tests/docs.rs` and
/// `tests/dockerfile.rs`, whose children run cargo builds.
pub fn run_to_end(cmd: &mut Command, timeout: Duration) -> Ran {
    run_bounded(cmd, timeout).ran()
}

/// Reaps `pid` if it has ended: its exit code (128 + N for signal N) and
/// peak RSS in KiB.
fn reap(pid: i32) -> Option<(i32, u64)> {
    use nix::libc;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes only through the two valid pointers given; the
    // child is ours, and its `Child` is never waited for once this reaped it.
    let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
    if r != pid {
        return None;
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Some((code, ru.ru_maxrss as u64))
}
