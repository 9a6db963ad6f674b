//! Shared harness for the integration tests: the binary, the shell probe,
//! helper programs, scratch run directories, deadline polling, loud skips,
//! and the one process-tree harness (`process.rs`: [`Proc`] for a process
//! the test talks to, [`run_bounded`] for one that should just end).
//!
//! Every file in `tests/` that needs it says `mod common;`. Functions here
//! only grow; each says which tests rely on it.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test reports failure by panicking

mod process;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

// Not every test uses every part of the harness.
#[allow(unused_imports)]
pub use process::{Lines, Outcome, Proc, run_bounded, run_to_end};

/// The `liveness` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_liveness"))
}

/// A file of the repository (e.g. `scripts/health.sh`).
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// An example program (`examples/<name>.rs`), which `cargo test` builds
/// next to the test binaries: `target/<profile>/examples/<name>`.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: a plain `cargo test` builds the examples; \
         with `--test NAME`, run `cargo build --examples` first",
        path.display()
    );
    path
}

/// Whether this run is CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips the calling test loudly when `ok` is false — and fails it instead
/// in CI, where every prerequisite is installed and the tests run as root.
/// Returns whether the test should go on.
#[must_use]
pub fn require(ok: bool, test: &str, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(!in_ci(), "{test}: {what} is required in CI");
    eprintln!("\n*** SKIPPED {test}: needs {what} ***\n");
    false
}

/// Whether the tests run as root (tmpfs mounts, PID namespaces, setpriv).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `program` is on `PATH`.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(program);
            std::fs::metadata(&p).is_ok_and(|m| m.is_file())
        })
    })
}

/// A shell that runs `scripts/health.sh`.
#[derive(Debug, Clone)]
pub struct Shell {
    pub name: &'static str,
    pub argv: &'static [&'static str],
}

/// dash, busybox sh and bash: each must be installed (in CI) or is skipped
/// loudly.
pub fn shells(test: &str) -> Vec<Shell> {
    let all = [
        Shell {
            name: "dash",
            argv: &["dash"],
        },
        Shell {
            name: "busybox sh",
            argv: &["busybox", "sh"],
        },
        Shell {
            name: "bash",
            argv: &["bash"],
        },
    ];
    all.into_iter()
        .filter(|s| require(have(s.argv[0]), test, s.argv[0]))
        .collect()
}

/// A finished command: exit code, stdout, stderr.
#[derive(Debug, Clone)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts the exit code; on failure, says what was printed.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Ran {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stdout:\n{}--- stderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Ran {
    fn from(o: Output) -> Ran {
        use std::os::unix::process::ExitStatusExt;
        Ran {
            code: o
                .status
                .code()
                .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0)),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A scratch run directory, removed on drop.
pub struct Rundir {
    pub tmp: tempfile::TempDir,
}

impl Rundir {
    pub fn new() -> Rundir {
        Rundir {
            tmp: tempfile::Builder::new()
                .prefix("liveness-test-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn unit_dir(&self, unit: &str) -> PathBuf {
        self.path().join(unit)
    }

    /// Writes a state file by hand (creating the unit directory).
    pub fn write(&self, unit: &str, file: &str, bytes: &[u8]) {
        let dir = self.unit_dir(unit);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(file), bytes).expect("write");
    }

    pub fn read(&self, unit: &str, file: &str) -> Option<Vec<u8>> {
        std::fs::read(self.unit_dir(unit).join(file)).ok()
    }

    /// `liveness ARGS` with this run directory and `unit` in the
    /// environment.
    pub fn liveness<S: AsRef<OsStr>>(&self, unit: &str, args: &[S]) -> Ran {
        self.command(unit, bin(), args)
            .output()
            .expect("run liveness")
            .into()
    }

    /// `SHELL scripts/health.sh ARGS` with this run directory and `unit` in
    /// the environment.
    pub fn health_sh<S: AsRef<OsStr>>(&self, shell: &Shell, unit: &str, args: &[S]) -> Ran {
        let mut cmd = self.command(unit, shell.argv[0], &shell.argv[1..]);
        cmd.arg(repo("scripts/health.sh")).args(args);
        cmd.output().expect("run health.sh").into()
    }

    /// A command with `LIVENESS_RUNDIR` and `LIVENESS_UNIT_NAME` set, stdin
    /// closed.
    pub fn command<P: AsRef<OsStr>, S: AsRef<OsStr>>(
        &self,
        unit: &str,
        program: P,
        args: &[S],
    ) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("LIVENESS_RUNDIR", self.path())
            .env("LIVENESS_UNIT_NAME", unit)
            .env_remove("LIVENESS_LOG")
            .stdin(Stdio::null());
        cmd
    }
}

/// Polls `cond` until it holds or `timeout` passes. Returns whether it held.
/// Tests assert on this, never on a bare sleep.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A generous bound for things that take milliseconds: far above any
/// expected latency on a loaded 2-core machine, so it fails only when the
/// thing never happens.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A child process started in its own process group, whose whole group is
/// SIGKILLed and reaped on drop, whatever the test did.
pub struct Tree {
    pub child: Child,
}

impl Tree {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> Tree {
        use std::os::unix::process::CommandExt;
        let child = cmd.process_group(0).spawn().expect("spawn");
        Tree { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to the leader only.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }

    /// Waits for the leader to exit, up to `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // ESRCH (already gone) is fine.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line with a heartbeat's age blanked: two probes of one unit run
/// milliseconds apart, and the age they print moves in between. Used by
/// `tests/adversarial.rs` and `tests/http.rs`.
pub fn without_age(line: &str) -> String {
    match (line.find("last beat "), line.find(" s ago")) {
        (Some(a), Some(b)) if a < b => format!("{}_{}", &line[..a + 10], &line[b..]),
        _ => line.to_owned(),
    }
}

/// Copies of files that a test runs as another user (`setpriv`, uid 65534),
/// in a fresh directory that every user can reach: the checkout and its
/// `target/` may sit under a 0700 home directory (`/root`, or any home made
/// by Debian's `adduser`) that the other user cannot enter. Removed on drop.
/// Used by `tests/adversarial/` for `liveness probe` and `health.sh` run as
/// `nobody`.
pub struct Staged {
    tmp: tempfile::TempDir,
}

impl Staged {
    /// Copies each file (keeping its mode and file name) into a new
    /// directory of mode 0755 under the temporary directory; panics, naming
    /// the directory, when another user could not reach it.
    pub fn new(files: &[&Path]) -> Staged {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::Builder::new()
            .prefix("liveness-staged-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod 0755");
        for dir in tmp.path().ancestors() {
            let mode = std::fs::metadata(dir).expect("stat").permissions().mode();
            assert!(
                mode & 0o001 != 0,
                "{} (mode {mode:o}) cannot be entered by other users: set TMPDIR to a \
                 directory they can reach",
                dir.display()
            );
        }
        for f in files {
            let name = f.file_name().expect("a file name");
            // Copied by `cp`, not from this process: a child that another
            // test thread forks while this process holds the copy open for
            // writing inherits that descriptor until it execs, and
            // executing the copy meanwhile fails with ETXTBSY.
            let out = Command::new("cp")
                .arg("-p")
                .arg(f)
                .arg(tmp.path().join(name))
                .stdin(Stdio::null())
                .output()
                .expect("run cp");
            assert!(
                out.status.success(),
                "cp {}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Staged { tmp }
    }

    /// The copy of the file called `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// Makes `cmd`'s child start with the default action for SIGINT and
/// SIGQUIT and with no signal blocked, whatever this test process
/// inherited: a shell starts background jobs (`scripts/test.sh &`) with
/// both signals ignored, a disposition every child would inherit, and a
/// test that sends them would then see them ignored. Used by the tests
/// that signal what they start (`tests/supervise.rs`, `tests/shutdown.rs`).
pub fn default_signals(cmd: &mut Command) -> &mut Command {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, sigprocmask};
    use std::os::unix::process::CommandExt;
    fn reset() -> std::io::Result<()> {
        for sig in [Signal::SIGINT, Signal::SIGQUIT] {
            // SAFETY: SIG_DFL installs no handler, so no Rust code can run
            // in signal context.
            unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) }?;
        }
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
        Ok(())
    }
    // SAFETY: `reset` runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: it calls sigaction(2) and
    // sigprocmask(2), which are, allocates nothing and takes no lock.
    unsafe { cmd.pre_exec(reset) }
}

/// Whether this machine lets the test run `unshare ARGS...` (root, the
/// tool, and the kernel and container allowing the namespaces), for the
/// tests that start a process as PID 1 of a new PID namespace. Tries
/// `unshare ARGS... true` first; when it fails, the test is skipped loudly
/// (failed in CI) with unshare's exit status and its own words, instead of
/// failing later on a bare timeout. Used by `tests/supervise.rs` and
/// `tests/kubelet.rs`.
#[must_use]
pub fn require_unshare(test: &str, args: &[&str]) -> bool {
    if !require(is_root() && have("unshare"), test, "root and unshare") {
        return false;
    }
    let tried = Command::new("unshare")
        .args(args)
        .arg("true")
        .stdin(Stdio::null())
        .output();
    let why = match tried {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "exited {}: {}",
            Ran::from(out.clone()).code,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("could not start: {e}"),
    };
    require(
        false,
        test,
        &format!("a working `unshare {} true` (it {why})", args.join(" ")),
    )
}

/// An `Output` as text for a failure message: exit status, stdout and
/// stderr, each labelled.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Makes `dir` hold exactly `files` (pairs of a source file and its path
/// under `dir`), besides the entries named in `keep` (e.g. a build's
/// `target`): copies a file only when its bytes differ, so unchanged files
/// keep their modification time and a cargo build there stays incremental
/// from one run to the next; removes every other file and directory.
/// Used by `tests/dockerfile.rs` and `tests/docs.rs`.
pub fn mirror(dir: &Path, files: &[(PathBuf, PathBuf)], keep: &[&str]) {
    use std::collections::BTreeSet;
    std::fs::create_dir_all(dir).expect("mkdir");
    let wanted: BTreeSet<PathBuf> = files.iter().map(|(_, rel)| rel.clone()).collect();
    fn prune(root: &Path, rel: &Path, wanted: &BTreeSet<PathBuf>, keep: &[&str]) {
        let here = root.join(rel);
        for entry in std::fs::read_dir(&here).expect("read_dir").flatten() {
            let r = rel.join(entry.file_name());
            if rel.as_os_str().is_empty() && keep.iter().any(|k| entry.file_name() == *k) {
                continue;
            }
            let ty = entry.file_type().expect("file type");
            if ty.is_dir() && wanted.iter().any(|w| w.starts_with(&r)) {
                prune(root, &r, wanted, keep);
            } else if ty.is_dir() {
                std::fs::remove_dir_all(entry.path()).expect("rm -r");
            } else if !wanted.contains(&r) {
                std::fs::remove_file(entry.path()).expect("rm");
            }
        }
    }
    prune(dir, Path::new(""), &wanted, keep);
    for (src, rel) in files {
        let dst = dir.join(rel);
        let bytes = std::fs::read(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
        if std::fs::read(&dst).is_ok_and(|old| old == bytes) {
            continue;
        }
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir -p");
        let _ = std::fs::remove_file(&dst);
        std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    }
}

/// Every file under `dir` (recursively, symlinks not followed), as pairs of
/// the file and its path relative to `dir`, sorted; directories named in
/// `skip` are left out at any depth.
pub fn files_under(dir: &Path, skip: &[&str]) -> Vec<(PathBuf, PathBuf)> {
    fn walk(root: &Path, rel: &Path, skip: &[&str], out: &mut Vec<(PathBuf, PathBuf)>) {
        for entry in std::fs::read_dir(root.join(rel))
            .expect("read_dir")
            .flatten()
        {
            let r = rel.join(entry.file_name());
            let ty = entry.file_type().expect("file type");
            if ty.is_dir() {
                if !skip.iter().any(|s| entry.file_name() == *s) {
                    walk(root, &r, skip, out);
                }
            } else if ty.is_file() {
                out.push((entry.path(), r));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), skip, &mut out);
    out.sort();
    out
}

/// `README.md` and every `doc/*.md`, sorted, found anew on every call: the
/// pages whose examples the documentation tests check.
pub fn markdown_documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo("doc"))
        .expect("doc/")
        .map(|e| e.expect("doc/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, repo("README.md"));
    docs
}
