//! Probes under a time limit (`common::run_bounded`): a probe that hangs
//! is a failure of its own, reported as such, and its whole process tree
//! is killed. The limits are generous bounds on "it ended at all", never
//! timed assertions. Also: probes run as another user.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use crate::common::Outcome;
use crate::common::{self, Shell, run_bounded};

/// The limit for a probe that should end at once: far above any latency on
/// a loaded machine, and above health.sh's CPU-time limit (1 s of CPU).
pub const LIMIT: Duration = Duration::from_secs(60);

/// `liveness probe ARGS` for `unit` under `rundir`, bounded.
pub fn probe(rundir: &Path, unit: &str, args: &[&str]) -> Outcome {
    let mut cmd = env(Command::new(common::bin()), rundir, unit);
    cmd.arg("probe").args(args);
    run_bounded(&mut cmd, LIMIT)
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
    run_bounded(&mut cmd, limit)
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
        run_bounded(&mut env(cmd, rundir, unit), LIMIT)
    }

    /// `SHELL health.sh ARGS` as nobody, bounded.
    pub fn health_sh(&self, shell: &Shell, rundir: &Path, unit: &str, args: &[&str]) -> Outcome {
        let mut argv: Vec<&OsStr> = shell.argv[1..].iter().map(OsStr::new).collect();
        argv.push(self.script.as_os_str());
        argv.extend(args.iter().map(OsStr::new));
        let cmd = self.command(Path::new(shell.argv[0]), &argv);
        run_bounded(&mut env(cmd, rundir, unit), LIMIT)
    }
}
