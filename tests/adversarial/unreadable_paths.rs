//! Permission denied anywhere on the path (issue #9 §3, last rule): a probe
//! that may not search a parent of the run directory, list or search the
//! unit directory, or open a state file must call the unit corrupt (exit 7)
//! — never "no state" (3) — and both probes must say the same line. Run as
//! `nobody` against state written by root: the umask-077 case of the issue
//! (a 0700 parent made `liveness probe` say 7 and `health.sh` say 3) is the
//! first row.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::bounded::{AsNobody, Outcome};
use crate::common;
use liveness::Health;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A healthy, ready unit `u` under `rundir`, owned by this process.
fn healthy(rundir: &Path) -> Health {
    let h = Health::builder().unit("u").rundir(rundir).build().unwrap();
    h.load().unwrap();
    h.set(0).unwrap();
    h.ready().unwrap();
    h
}

struct Row {
    what: &'static str,
    args: &'static [&'static str],
    /// Exit code both probes give; 0 and 3 rows are the negative control.
    code: i32,
    /// The words the line must hold.
    says: &'static str,
    /// Makes the case from a healthy unit; gets the run directory and the
    /// unit directory.
    setup: fn(&Path, &Path),
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            what: "readable everywhere (control)",
            args: &["--ready"],
            code: 0,
            says: "",
            setup: |_, _| {},
        },
        Row {
            what: "no unit directory under a readable parent (control)",
            args: &[],
            code: 3,
            says: "no state: no unit directory",
            setup: |_, u| std::fs::remove_dir_all(u).unwrap(),
        },
        Row {
            what: "a 0700 parent of the run directory (umask 077)",
            args: &[],
            code: 7,
            says: "unit directory: unreadable: Permission denied",
            setup: |r, _| chmod(r.parent().unwrap(), 0o700),
        },
        Row {
            what: "a 0700 parent, and no unit directory behind it",
            args: &[],
            code: 7,
            says: "unit directory: unreadable: Permission denied",
            setup: |r, u| {
                std::fs::remove_dir_all(u).unwrap();
                chmod(r.parent().unwrap(), 0o700);
            },
        },
        Row {
            what: "a 0700 run directory",
            args: &[],
            code: 7,
            says: "unit directory: unreadable: Permission denied",
            setup: |r, _| chmod(r, 0o700),
        },
        Row {
            what: "a 0700 unit directory",
            args: &[],
            code: 7,
            says: "unit directory: unreadable: Permission denied",
            setup: |_, u| chmod(u, 0o700),
        },
        Row {
            what: "a 0711 unit directory (search, no read)",
            args: &[],
            code: 7,
            says: "unit directory: unreadable: Permission denied",
            setup: |_, u| chmod(u, 0o711),
        },
        Row {
            what: "a 0744 unit directory (read, no search)",
            args: &[],
            code: 7,
            says: "pid: unreadable: Permission denied",
            setup: |_, u| chmod(u, 0o744),
        },
        Row {
            what: "pid 000",
            args: &[],
            code: 7,
            says: "pid: unreadable: Permission denied",
            setup: |_, u| chmod(&u.join("pid"), 0),
        },
        Row {
            what: "starttime 000",
            args: &[],
            code: 7,
            says: "starttime: unreadable: Permission denied",
            setup: |_, u| chmod(&u.join("starttime"), 0),
        },
        Row {
            what: "pidns 000",
            args: &[],
            code: 7,
            says: "pidns: unreadable: Permission denied",
            setup: |_, u| chmod(&u.join("pidns"), 0),
        },
        Row {
            what: "lock 000",
            args: &[],
            code: 7,
            says: "lock: unreadable: Permission denied",
            setup: |_, u| chmod(&u.join("lock"), 0),
        },
        Row {
            what: "heartbeat 000",
            args: &[],
            code: 7,
            says: "heartbeat: unreadable: Permission denied",
            setup: |_, u| {
                std::fs::write(
                    u.join("heartbeat"),
                    format!("30 {}\n", crate::boottime_ms()),
                )
                .unwrap();
                chmod(&u.join("heartbeat"), 0);
            },
        },
        Row {
            what: "error 000",
            args: &[],
            code: 7,
            says: "error: unreadable: Permission denied",
            setup: |_, u| chmod(&u.join("error"), 0),
        },
        Row {
            what: "message 000 (error 3)",
            args: &[],
            code: 7,
            says: "message: unreadable: Permission denied",
            setup: |_, u| {
                std::fs::write(u.join("message"), b"database unreachable\n").unwrap();
                std::fs::write(u.join("error"), b"3\n").unwrap();
                chmod(&u.join("message"), 0);
            },
        },
        Row {
            what: "ready 000 (its presence is what counts: control)",
            args: &["--ready"],
            code: 0,
            says: "",
            setup: |_, u| chmod(&u.join("ready"), 0),
        },
        Row {
            what: "a 000 FIFO in place of error",
            args: &[],
            code: 7,
            says: "error: unreadable: Permission denied",
            setup: |_, u| {
                std::fs::remove_file(u.join("error")).unwrap();
                nix::unistd::mkfifo(&u.join("error"), nix::sys::stat::Mode::empty()).unwrap();
            },
        },
        Row {
            what: "a 000 directory in place of error",
            args: &[],
            code: 7,
            says: "error: unreadable: Permission denied",
            setup: |_, u| {
                std::fs::remove_file(u.join("error")).unwrap();
                std::fs::create_dir(u.join("error")).unwrap();
                chmod(&u.join("error"), 0);
            },
        },
    ]
}

/// Each row, as `nobody`: `liveness probe` and `health.sh` under every
/// shell give the row's code and one identical line holding its words.
#[test]
fn permission_denied_anywhere_is_corrupt_for_both_probes() {
    let test = "permission_denied_anywhere_is_corrupt_for_both_probes";
    let Some(nobody) = AsNobody::new(test) else {
        return;
    };
    let shells = common::shells(test);
    let mut failures = Vec::new();
    for (i, row) in rows().into_iter().enumerate() {
        let rundir = nobody.dir(&format!("{i}/parent/run"));
        let _owner = healthy(&rundir);
        (row.setup)(&rundir, &rundir.join("u"));
        let rust = nobody.probe(&rundir, "u", row.args);
        let check = |who: &str, out: &Outcome, failures: &mut Vec<String>| {
            if out.code() != Some(row.code) || !out.stderr().contains(row.says) {
                failures.push(format!("{}: {who}: {}", row.what, out.describe()));
            }
        };
        check("liveness probe", &rust, &mut failures);
        for s in &shells {
            let out = nobody.health_sh(s, &rundir, "u", row.args);
            check(s.name, &out, &mut failures);
            if out.stderr() != rust.stderr() {
                failures.push(format!(
                    "{}: {} says {:?}, liveness probe {:?}",
                    row.what,
                    s.name,
                    out.stderr(),
                    rust.stderr()
                ));
            }
        }
        // Let the cleanup in.
        chmod(rundir.parent().unwrap(), 0o755);
        chmod(&rundir, 0o755);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
