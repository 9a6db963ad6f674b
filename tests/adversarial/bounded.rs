//! Running a probe under a time limit: a probe that hangs is a failure of
//! its own, reported as such, and its whole process tree is killed. The
//! limits are generous bounds on "it ended at all", never timed assertions.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, Ran, Shell};

/// How a bounded run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It exited (or a signal killed it: `code` is 128 + N), with its peak
    /// resident set size in KiB.
    Done(Ran, u64),
    /// Still running at the limit: killed, with what it had printed.
    Hung { limit: Duration, stderr: String },
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
            Outcome::Hung { limit, stderr } => {
                format!("HUNG (killed after {limit:?}): {:?}", stderr.trim_end())
            }
        }
    }
}

/// Runs `cmd` (stdin closed, stdout and stderr captured) in a process group
/// of its own; at `limit`, SIGKILLs the group and reports a hang.
#[allow(clippy::zombie_processes)] // reaped by wait4 in `reap`, or waited for
pub fn run(cmd: &mut Command, limit: Duration) -> Outcome {
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
    // The group: anything the probe started dies with it (and a finished
    // probe has nothing left, so ESRCH is fine).
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
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
        None => Outcome::Hung { limit, stderr },
    }
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

/// The limit for a probe that should end at once: far above any latency on
/// a loaded machine, and above health.sh's CPU-time limit (1 s of CPU).
pub const LIMIT: Duration = Duration::from_secs(60);

/// `liveness probe ARGS` for `unit` under `rundir`, bounded.
pub fn probe(rundir: &Path, unit: &str, args: &[&str]) -> Outcome {
    let mut cmd = env(Command::new(common::bin()), rundir, unit);
    cmd.arg("probe").args(args);
    run(&mut cmd, LIMIT)
}

/// `SHELL health.sh ARGS` for `unit` under `rundir`, bounded.
pub fn health_sh(shell: &Shell, rundir: &Path, unit: &str, args: &[&str]) -> Outcome {
    health_sh_limit(shell, rundir, unit, args, LIMIT)
}

/// As [`health_sh`], with another limit.
pub fn health_sh_limit(
    shell: &Shell,
    rundir: &Path,
    unit: &str,
    args: &[&str],
    limit: Duration,
) -> Outcome {
    let mut cmd = env(Command::new(shell.argv[0]), rundir, unit);
    cmd.args(&shell.argv[1..])
        .arg(common::repo("scripts/health.sh"))
        .args(args);
    run(&mut cmd, limit)
}

fn env(mut cmd: Command, rundir: &Path, unit: &str) -> Command {
    cmd.env("LIVENESS_RUNDIR", rundir)
        .env("LIVENESS_UNIT_NAME", unit)
        .env_remove("LIVENESS_LOG");
    cmd
}

/// A directory every user can read, holding copies of the binary and the
/// script (the checkout may sit under a 0700 home), for probes run as
/// `nobody` (uid 65534) through `setpriv`.
pub struct AsNobody {
    pub tmp: tempfile::TempDir,
    bin: PathBuf,
    script: PathBuf,
}

/// uid and gid of `nobody`.
pub const NOBODY: u32 = 65534;

impl AsNobody {
    /// `None` (after a loud skip) without root or setpriv.
    pub fn new(test: &str) -> Option<AsNobody> {
        if !common::require(
            common::is_root() && common::have("setpriv"),
            test,
            "root and setpriv",
        ) {
            return None;
        }
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::Builder::new()
            .prefix("liveness-nobody-")
            .tempdir()
            .unwrap();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        };
        mode(tmp.path(), 0o755);
        let bin = tmp.path().join("liveness");
        let script = tmp.path().join("health.sh");
        std::fs::copy(common::bin(), &bin).unwrap();
        std::fs::copy(common::repo("scripts/health.sh"), &script).unwrap();
        mode(&bin, 0o755);
        mode(&script, 0o644);
        Some(AsNobody { tmp, bin, script })
    }

    /// A scratch directory (0755) inside, for run directories.
    pub fn dir(&self, name: &str) -> PathBuf {
        let d = self.tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn command<S: AsRef<OsStr>>(&self, program: &Path, args: &[S]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".to_owned(),
            "--".to_owned(),
        ])
        .arg(program)
        .args(args)
        .current_dir("/");
        cmd
    }

    /// `liveness probe ARGS` as nobody, bounded.
    pub fn probe(&self, rundir: &Path, unit: &str, args: &[&str]) -> Outcome {
        let mut probe = vec!["probe"];
        probe.extend_from_slice(args);
        let cmd = self.command(&self.bin, &probe);
        run(&mut env(cmd, rundir, unit), LIMIT)
    }

    /// `SHELL health.sh ARGS` as nobody, bounded.
    pub fn health_sh(&self, shell: &Shell, rundir: &Path, unit: &str, args: &[&str]) -> Outcome {
        let mut argv: Vec<&OsStr> = shell.argv[1..].iter().map(OsStr::new).collect();
        argv.push(self.script.as_os_str());
        argv.extend(args.iter().map(OsStr::new));
        let cmd = self.command(Path::new(shell.argv[0]), &argv);
        run(&mut env(cmd, rundir, unit), LIMIT)
    }
}
