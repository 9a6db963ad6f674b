//! The umask (issue #9 §3, doc/state-format.md *Where*): every directory we
//! create — the run directory's missing parents included — is 0755 and
//! every file 0644 whatever the umask, so a probe running as another user
//! can read the state. Needs root and a second user for the probes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{self, Ran};
use crate::other_user::{self, Shared, chmod};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Under each umask, `load` (with missing parents of the run directory),
/// `set`, `ready` and `run` create 0755 directories and 0644 files, and
/// the second user's `liveness probe --ready` and `health.sh --ready` both
/// pass. Negative control: a parent that existed 0700 (not ours) is left
/// alone, and the second user's `liveness probe` calls the unit corrupt
/// (unreadable), not healthy.
#[test]
fn every_umask_gives_state_another_user_can_read() {
    let test = "every_umask_gives_state_another_user_can_read";
    if !other_user::available(test) {
        return;
    }
    let shells = common::shells(test);
    let owner = common::Tree::spawn(
        std::process::Command::new("sleep")
            .arg("600")
            .stdin(std::process::Stdio::null()),
    );
    for umask in [0o000, 0o022, 0o027, 0o077, 0o277] {
        let s = Shared::new();
        let script = s.tmp.path().join("health.sh");
        std::fs::copy(common::repo("scripts/health.sh"), &script).unwrap();
        chmod(&script, 0o644);
        let rundir = s.tmp.path().join("deep/a/b");
        let sh = format!(
            "umask {umask:03o}; L=\"$1\"; \"$L\" load --pid \"$2\" --heartbeat 60 && \
             \"$L\" set 0 && \"$L\" ready && \"$L\" run -u sup -- true"
        );
        let r: Ran = s
            .command("u", false, "sh", &["-c", &sh, "sh"])
            .arg(&s.bin)
            .arg(owner.pid().to_string())
            .env("LIVENESS_RUNDIR", &rundir)
            .output()
            .unwrap()
            .into();
        assert_eq!(r.code, 0, "umask {umask:03o}: {}", r.stderr);
        for d in ["deep", "deep/a", "deep/a/b", "deep/a/b/u", "deep/a/b/sup"] {
            let p = s.tmp.path().join(d);
            assert_eq!(mode(&p), 0o755, "umask {umask:03o}: {d}");
        }
        for f in [
            "u/pid",
            "u/starttime",
            "u/pidns",
            "u/error",
            "u/ready",
            "u/heartbeat",
        ] {
            assert_eq!(mode(&rundir.join(f)), 0o644, "umask {umask:03o}: {f}");
        }
        for f in ["sup/lock", "sup/tombstone"] {
            assert_eq!(mode(&rundir.join(f)), 0o644, "umask {umask:03o}: {f}");
        }
        let probe = s.liveness_in(&rundir, "u", true, &["probe", "--ready"]);
        assert_eq!(probe.code, 0, "umask {umask:03o}: {}", probe.stderr);
        for shell in &shells {
            let mut args: Vec<&std::ffi::OsStr> =
                shell.argv[1..].iter().map(std::ffi::OsStr::new).collect();
            args.push(script.as_os_str());
            args.push(std::ffi::OsStr::new("--ready"));
            let r: Ran = s
                .command("u", true, shell.argv[0], &args)
                .env("LIVENESS_RUNDIR", &rundir)
                .output()
                .unwrap()
                .into();
            assert_eq!(r.code, 0, "umask {umask:03o}, {}: {}", shell.name, r.stderr);
        }
    }

    // Negative control: a parent that already existed 0700 is not ours to
    // change; the other user cannot read through it.
    let s = Shared::new();
    let parent = s.tmp.path().join("closed");
    std::fs::create_dir(&parent).unwrap();
    chmod(&parent, 0o700);
    let rundir = parent.join("run");
    let r = s.liveness_in(&rundir, "u", false, &["load"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(mode(&parent), 0o700);
    assert_eq!(mode(&rundir), 0o755);
    let probe = s.liveness_in(&rundir, "u", true, &["probe"]);
    assert_eq!(probe.code, 7, "{}", probe.stderr);
    assert!(probe.stderr.contains("unreadable"), "{}", probe.stderr);
}
