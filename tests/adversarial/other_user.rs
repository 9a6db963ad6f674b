//! A second user for the trust families: uid/gid 65534 (`nobody`), entered
//! with `setpriv`, and a scratch tree it can use without being able to read
//! the checkout: a copy of the binary and a run directory that is 0777, as
//! a Kubernetes `emptyDir` is.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{self, Ran};

/// The second user's uid (and gid).
pub const OTHER: u32 = 65534;

/// Whether the tests that need a second user can run here (root, setpriv);
/// skips loudly otherwise.
pub fn available(test: &str) -> bool {
    common::require(
        common::is_root() && common::have("setpriv"),
        test,
        "root and setpriv (a second user)",
    )
}

/// A scratch tree: `<tmp>/bin/liveness` (a copy, 0755), `<tmp>/run` (0777).
pub struct Shared {
    pub tmp: tempfile::TempDir,
    pub bin: PathBuf,
    pub rundir: PathBuf,
}

impl Shared {
    pub fn new() -> Shared {
        let tmp = tempfile::Builder::new()
            .prefix("liveness-trust-")
            .tempdir()
            .unwrap();
        chmod(tmp.path(), 0o755);
        let bin_dir = tmp.path().join("bin");
        std::fs::create_dir(&bin_dir).unwrap();
        chmod(&bin_dir, 0o755);
        let bin = bin_dir.join("liveness");
        std::fs::copy(common::bin(), &bin).unwrap();
        chmod(&bin, 0o755);
        // A child another test thread forked while the copy was open for
        // writing holds that descriptor until it execs: until then, running
        // the copy fails with ETXTBSY. Once one run succeeds, no such
        // descriptor is left (the copy's own was closed before).
        let runs = common::wait_until(common::PATIENCE, || {
            match Command::new(&bin).arg("--version").output() {
                Ok(o) => o.status.success(),
                Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => false,
                Err(e) => panic!("{}: {e}", bin.display()),
            }
        });
        assert!(runs, "{} stays busy", bin.display());
        let rundir = tmp.path().join("run");
        std::fs::create_dir(&rundir).unwrap();
        chmod(&rundir, 0o777);
        Shared { tmp, bin, rundir }
    }

    pub fn unit_dir(&self, unit: &str) -> PathBuf {
        self.rundir.join(unit)
    }

    /// `liveness ARGS` as root, on `unit` under the shared run directory.
    pub fn root<S: AsRef<OsStr>>(&self, unit: &str, args: &[S]) -> Ran {
        self.liveness_in(&self.rundir, unit, false, args)
    }

    /// `liveness ARGS` as the second user.
    pub fn other<S: AsRef<OsStr>>(&self, unit: &str, args: &[S]) -> Ran {
        self.liveness_in(&self.rundir, unit, true, args)
    }

    /// `liveness ARGS` on `unit` under `rundir`, as the second user when
    /// `as_other`.
    pub fn liveness_in<S: AsRef<OsStr>>(
        &self,
        rundir: &Path,
        unit: &str,
        as_other: bool,
        args: &[S],
    ) -> Ran {
        self.command(unit, as_other, &self.bin, args)
            .env("LIVENESS_RUNDIR", rundir)
            .output()
            .unwrap()
            .into()
    }

    /// `program ARGS`, as the second user when `as_other`, with
    /// `LIVENESS_RUNDIR` and `LIVENESS_UNIT_NAME` set and stdin closed.
    pub fn command<P: AsRef<OsStr>, S: AsRef<OsStr>>(
        &self,
        unit: &str,
        as_other: bool,
        program: P,
        args: &[S],
    ) -> Command {
        let mut cmd = if as_other {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={OTHER}"),
                format!("--regid={OTHER}"),
                "--clear-groups".to_owned(),
                "--".to_owned(),
            ])
            .arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .env("LIVENESS_RUNDIR", &self.rundir)
            .env("LIVENESS_UNIT_NAME", unit)
            .env_remove("LIVENESS_LOG")
            .current_dir(self.tmp.path())
            .stdin(Stdio::null());
        cmd
    }
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

pub fn owner_of(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().uid()
}

/// Field 22 of `/proc/<pid>/stat`: the start time `load` records.
pub fn starttime(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// A library owner of `unit` under `rundir`, in this process: loaded with a
/// 60 s heartbeat, `set(0)`, `ready()`.
pub fn library_owner(rundir: &Path, unit: &str) -> liveness::Health {
    let h = liveness::Health::builder()
        .unit(unit)
        .rundir(rundir)
        .heartbeat(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    h.load().unwrap();
    h.set(0).unwrap();
    h.ready().unwrap();
    h
}
