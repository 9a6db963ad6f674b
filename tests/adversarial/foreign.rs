//! Foreign-owned directories and files (issue #9 §3, doc/state-format.md
//! *Trust*): a run directory that another user can write (an `emptyDir` is
//! 0777) is a trust boundary. Writers refuse a unit directory that is not
//! theirs or that others can write; inside their own, they replace files
//! that are not theirs; actors (`terminate`, `wait`, dependencies) act only
//! on trusted state; readers judge what is there. Needs root and a second
//! user (uid 65534, through `setpriv`).

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use crate::common::{self, Proc, Tree};
use crate::other_user::{self, OTHER, Shared, chmod, chown, owner_of};

/// A live root process for units to name: a `sleep` in its own group.
fn sleeper() -> Tree {
    Tree::spawn(Command::new("sleep").arg("600").stdin(Stdio::null()))
}

/// How a writer's unit directory starts out.
#[derive(Clone, Copy, Debug)]
enum Dir {
    /// Created by the second user (`mkdir -m MODE` as uid 65534).
    TheirsEmpty(u32),
    /// The second user's `load --pid` of a process that then died, `set 0`,
    /// `ready`: a unit with forged healthy state and no live owner.
    TheirsPlanted,
    /// Ours (root), with this mode.
    Ours(u32),
    /// No directory (negative control).
    Missing,
}

impl Dir {
    fn make(self, s: &Shared, unit: &str) {
        let dir = s.unit_dir(unit);
        match self {
            Dir::TheirsEmpty(mode) => {
                let r: common::Ran = s
                    .command(unit, true, "mkdir", &[format!("-m{mode:o}")])
                    .arg(&dir)
                    .output()
                    .unwrap()
                    .into();
                assert_eq!(r.code, 0, "{}", r.stderr);
            }
            Dir::TheirsPlanted => {
                let mut owner = sleeper();
                let pid = owner.pid().to_string();
                for args in [&["load", "--pid", &pid][..], &["set", "0"], &["ready"]] {
                    let r = s.other(unit, args);
                    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
                }
                owner.signal(nix::sys::signal::Signal::SIGKILL);
                assert!(owner.wait_timeout(common::PATIENCE).is_some());
            }
            Dir::Ours(mode) => {
                std::fs::create_dir(&dir).unwrap();
                chmod(&dir, mode);
            }
            Dir::Missing => {}
        }
    }
}

/// Every writer command refuses a unit directory it does not own, or that
/// group or others can write, with exit 7 (125 for `run`) and one line that
/// names the path, the owner and the mode; nothing is written. Negative
/// controls: our own 0755 directory, and a missing one, are written.
#[test]
fn writers_refuse_a_unit_directory_that_is_not_theirs() {
    let test = "writers_refuse_a_unit_directory_that_is_not_theirs";
    if !other_user::available(test) {
        return;
    }
    let owner = sleeper();
    let pid = owner.pid().to_string();
    // (directory, refused?, the owner uid and mode the line must name)
    let table = [
        (Dir::TheirsEmpty(0o777), true, "owner uid 65534, mode 0777"),
        (Dir::TheirsEmpty(0o755), true, "owner uid 65534, mode 0755"),
        (Dir::TheirsPlanted, true, "owner uid 65534, mode 0755"),
        (Dir::Ours(0o777), true, "owner uid 0, mode 0777"),
        (Dir::Ours(0o775), true, "owner uid 0, mode 0775"),
        (Dir::Ours(0o757), true, "owner uid 0, mode 0757"),
        (Dir::Ours(0o1777), true, "owner uid 0, mode 1777"),
        (Dir::Ours(0o755), false, ""),
        (Dir::Missing, false, ""),
    ];
    let commands: [(&[&str], i32); 7] = [
        (&["load", "--pid", &pid], 7),
        (&["run", "--", "true"], 125),
        (&["set", "3", "-m", "db down"], 7),
        (&["ready"], 7),
        (&["not-ready"], 7),
        (&["beat", "--deadline", "30"], 7),
        (&["reset"], 7),
    ];
    let mut failures = Vec::new();
    for (i, (dir, refused, names)) in table.iter().enumerate() {
        for (j, (args, code)) in commands.iter().enumerate() {
            let s = Shared::new();
            let unit = format!("u{i}-{j}");
            dir.make(&s, &unit);
            // The commands after `load` need a loaded unit to act on.
            if j >= 2 && !refused {
                let r = s.root(&unit, &["load", "--pid", &pid]);
                assert_eq!(r.code, 0, "{}", r.stderr);
            }
            let before = snapshot(&s, &unit);
            let r = s.root(&unit, args);
            let what = format!("{dir:?} / {args:?}");
            if *refused {
                let line = r.stderr.trim_end();
                if r.code != *code
                    || line.lines().count() != 1
                    || !line.contains(&s.unit_dir(&unit).display().to_string())
                    || !line.contains(names)
                {
                    failures.push(format!("{what}: exit {}: {line}", r.code));
                }
                if snapshot(&s, &unit) != before {
                    failures.push(format!("{what}: the directory changed"));
                }
            } else if r.code != 0 {
                failures.push(format!("{what}: control failed: {}", r.stderr.trim_end()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The names, owners and contents of a unit directory's files.
fn snapshot(s: &Shared, unit: &str) -> Vec<(String, u32, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(s.unit_dir(unit)) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().uid(),
                bytes,
            )
        })
        .collect();
    v.sort();
    v
}

/// The reproduction: another user creates the unit directory first
/// (0777), root's service loads and reports error 3, the other user rewrites
/// `error` and `ready`. Before the fix the probe said healthy and ready;
/// now the load is refused, and the unit never carries root's name.
#[test]
fn another_users_directory_cannot_forge_a_services_health() {
    let test = "another_users_directory_cannot_forge_a_services_health";
    if !other_user::available(test) {
        return;
    }
    let s = Shared::new();
    let owner = sleeper();
    let pid = owner.pid().to_string();
    Dir::TheirsEmpty(0o777).make(&s, "svc");
    let r = s.root("svc", &["load", "--pid", &pid]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.contains("remove it, or chown it to uid 0"),
        "{}",
        r.stderr
    );
    assert_eq!(s.root("svc", &["set", "3", "-m", "db down"]).code, 7);
    // The library refuses the same way.
    let h = liveness::Health::builder()
        .unit("svc")
        .rundir(&s.rundir)
        .build()
        .unwrap();
    assert_eq!(h.load().unwrap_err().kind(), liveness::ErrorKind::Corrupt);
    assert!(!s.unit_dir("svc").join("pid").exists());
    // Negative control: in a directory of its own, the service's error 3
    // stands whatever the other user tries.
    let r = s.root("own", &["load", "--pid", &pid]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.root("own", &["set", "3", "-m", "db down"]).code, 0);
    assert_ne!(s.other("own", &["set", "0"]).code, 0);
    assert_ne!(s.other("own", &["ready"]).code, 0);
    assert_eq!(s.root("own", &["probe"]).code, 1);
}

/// Inside our own unit directory, a file another user owns is never adopted:
/// `load` replaces the `lock` (a fresh inode of ours, 0644, never a chmod of
/// theirs), and every other file is removed or replaced by a write. Our own
/// lock, made 0600 under a strict umask, is kept and widened to 0644
/// (negative control).
#[test]
fn files_of_another_user_in_our_directory_are_replaced() {
    let test = "files_of_another_user_in_our_directory_are_replaced";
    if !other_user::available(test) {
        return;
    }
    // (file, its owner, its mode, whether `load` keeps the inode)
    let table = [
        ("lock", OTHER, 0o644, false),
        ("lock", OTHER, 0o600, false),
        ("lock", 0, 0o600, true),
        ("error", OTHER, 0o644, false),
        ("ready", OTHER, 0o644, false),
        ("message", OTHER, 0o666, false),
        ("heartbeat", OTHER, 0o644, false),
        ("pid", OTHER, 0o644, false),
    ];
    for (file, uid, mode, kept) in table {
        let what = format!("{file} owned by {uid}, mode {mode:o}");
        let s = Shared::new();
        let dir = s.unit_dir("u");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o755);
        let path = dir.join(file);
        std::fs::write(&path, if file == "pid" { "2147483647\n" } else { "" }).unwrap();
        chown(&path, uid);
        chmod(&path, mode);
        // Held open, so a replacement cannot get the same inode number.
        let original = std::fs::File::open(&path).unwrap();
        let ino = original.metadata().unwrap().ino();
        let _h = other_user::library_owner(&s.rundir, "u");
        let meta = std::fs::metadata(&path);
        if file == "message" {
            assert!(meta.is_err(), "{what}: set(0) clears the message");
            continue;
        }
        let meta = meta.unwrap();
        assert_eq!(meta.ino() == ino, kept, "{what}");
        assert_eq!(meta.uid(), 0, "{what}");
        assert_eq!(meta.mode() & 0o7777, 0o644, "{what}");
        if !kept {
            let theirs = original.metadata().unwrap();
            assert_eq!(
                (theirs.uid(), theirs.mode() & 0o7777),
                (uid, mode),
                "{what}: chmod-ed"
            );
        }
        assert_eq!(s.root("u", &["probe", "--ready"]).code, 0, "{what}");
    }
}

/// `terminate` (root's preStop hook) signals only on trusted state: a unit
/// directory, or a `pid` file, another user wrote naming an unrelated root
/// process is refused with exit 7 and the process lives; state written by
/// the target's own uid is accepted (its writer could signal it anyway);
/// root's own state is acted on (negative control).
#[test]
fn terminate_acts_only_on_trusted_state() {
    let test = "terminate_acts_only_on_trusted_state";
    if !other_user::available(test) {
        return;
    }
    #[derive(Debug, Clone, Copy)]
    enum Case {
        TheirDirRootTarget,
        OurDirTheirPidFile,
        OurDirLinkedPidFile,
        OurDirWritableByOthers,
        TheirDirTheirTarget,
        OurDirRootTarget,
    }
    let table = [
        (Case::TheirDirRootTarget, 7),
        (Case::OurDirTheirPidFile, 7),
        (Case::OurDirLinkedPidFile, 7),
        (Case::OurDirWritableByOthers, 7),
        (Case::TheirDirTheirTarget, 0),
        (Case::OurDirRootTarget, 0),
    ];
    for (case, code) in table {
        let s = Shared::new();
        let mut target = if matches!(case, Case::TheirDirTheirTarget) {
            Tree::spawn(
                s.command("t", true, "sleep", &["600"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
        } else {
            sleeper()
        };
        // setpriv execs sleep: the pid is the sleep's.
        let pid = target.pid() as u32;
        assert!(common::wait_until(common::PATIENCE, || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
        }));
        let dir = s.unit_dir("t");
        let theirs = matches!(case, Case::TheirDirRootTarget | Case::TheirDirTheirTarget);
        if theirs {
            Dir::TheirsEmpty(0o755).make(&s, "t");
        } else {
            Dir::Ours(0o755).make(&s, "t");
        }
        for (file, value) in [
            ("pid", pid.to_string()),
            ("starttime", other_user::starttime(pid).to_string()),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, format!("{value}\n")).unwrap();
            if theirs || (file == "pid" && matches!(case, Case::OurDirTheirPidFile)) {
                chown(&path, OTHER);
            }
        }
        match case {
            Case::OurDirLinkedPidFile => {
                std::fs::hard_link(dir.join("pid"), s.tmp.path().join("pid-link")).unwrap();
            }
            Case::OurDirWritableByOthers => chmod(&dir, 0o777),
            _ => {}
        }
        let r = s.root("t", &["terminate", "--timeout", "60s"]);
        assert_eq!(r.code, code, "{case:?}: {}", r.stderr);
        if code == 7 {
            assert!(
                r.stderr.contains("untrusted state") && r.stderr.contains("not signalled"),
                "{case:?}: {}",
                r.stderr
            );
            assert!(
                target.child.try_wait().unwrap().is_none(),
                "{case:?}: signalled"
            );
        } else {
            let st = target.wait_timeout(common::PATIENCE).expect("terminated");
            assert!(!st.success(), "{case:?}");
        }
    }
}

/// `wait` and birth dependencies act only on trusted state: another user's
/// unit that reads ready (or gone) is not reached, and the line says why;
/// the same state owned by root is reached (negative control).
#[test]
fn waiters_and_birth_dependencies_ignore_untrusted_state() {
    let test = "waiters_and_birth_dependencies_ignore_untrusted_state";
    if !other_user::available(test) {
        return;
    }
    let live = sleeper();
    let pid = live.pid().to_string();
    for theirs in [true, false] {
        let s = Shared::new();
        let writer = |unit: &str, args: &[&str]| {
            let r = if theirs {
                s.other(unit, args)
            } else {
                s.root(unit, args)
            };
            assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        };
        // "ready": a healthy, ready unit naming a live process.
        for args in [&["load", "--pid", &pid][..], &["set", "0"], &["ready"]] {
            writer("ready", args);
        }
        // "gone": a unit whose owner has died.
        let mut dead = sleeper();
        let dead_pid = dead.pid().to_string();
        writer("gone", &["load", "--pid", &dead_pid]);
        dead.signal(nix::sys::signal::Signal::SIGKILL);
        assert!(dead.wait_timeout(common::PATIENCE).is_some());

        let (timeout, code) = if theirs { ("1s", 8) } else { ("1h", 0) };
        for (what, unit) in [("--ready", "ready"), ("--gone", "gone")] {
            let r = s.root("x", &["wait", what, unit, "--timeout", timeout]);
            assert_eq!(r.code, code, "theirs {theirs}, wait {what}: {}", r.stderr);
            if theirs {
                assert!(r.stderr.contains("untrusted state"), "{}", r.stderr);
            }
        }
        let r = s.root(
            "side",
            &[
                "run",
                "--birth-deps",
                "ready",
                "--birth-timeout",
                timeout,
                "--",
                "true",
            ],
        );
        let code = if theirs { 124 } else { 0 };
        assert_eq!(r.code, code, "theirs {theirs}, birth dep: {}", r.stderr);
        if theirs {
            assert!(r.stderr.contains("untrusted state"), "{}", r.stderr);
        }
    }
}

/// A death dependency whose tombstone another user wrote (or could have
/// rewritten) is not counted as dead: the sidecar runs on, and the
/// supervisor logs why once; root's own tombstone stops it (negative
/// control: exit 143).
#[test]
fn death_dependencies_ignore_untrusted_tombstones() {
    let test = "death_dependencies_ignore_untrusted_tombstones";
    if !other_user::available(test) {
        return;
    }
    for theirs in [true, false] {
        let s = Shared::new();
        let r = if theirs {
            s.other("main", &["run", "--", "true"])
        } else {
            s.root("main", &["run", "--", "true"])
        };
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(s.unit_dir("main").join("tombstone").exists());
        let mut cmd = s.command(
            "side",
            false,
            &s.bin,
            &["run", "--death-deps", "main", "--grace", "1h", "--"],
        );
        cmd.args(["sh", "-c", "echo started; read x; exit 0"])
            .env("LIVENESS_LOG", "warn")
            .stdin(Stdio::piped());
        let mut side = Proc::spawn(&mut cmd);
        if theirs {
            assert_eq!(side.next_line(), "started");
            let w = s.root("x", &["wait", "--tombstone", "side", "--timeout", "2s"]);
            assert_eq!(w.code, 8, "the sidecar was stopped: {}", w.stderr);
            side.close_stdin();
        }
        let code = side.code();
        assert_eq!(
            code,
            if theirs { 0 } else { 143 },
            "theirs {theirs}\n{}",
            side.describe()
        );
        let err = side.stderr();
        if theirs {
            assert_eq!(
                err.matches("not acted on: untrusted state").count(),
                1,
                "logged once: {err}"
            );
            assert_eq!(owner_of(&s.unit_dir("main")), OTHER);
        }
    }
}

/// Readers judge what is there, whoever wrote it: another user's healthy
/// unit is healthy to `liveness probe` (it cannot know whom to expect), and
/// its error is its error.
#[test]
fn readers_judge_what_is_there() {
    let test = "readers_judge_what_is_there";
    if !other_user::available(test) {
        return;
    }
    let s = Shared::new();
    let live = sleeper();
    let pid = live.pid().to_string();
    for args in [&["load", "--pid", &pid][..], &["set", "0"], &["ready"]] {
        assert_eq!(s.other("u", args).code, 0);
    }
    assert_eq!(s.root("u", &["probe", "--ready"]).code, 0);
    assert_eq!(s.other("u", &["set", "3"]).code, 0);
    assert_eq!(s.root("u", &["probe"]).code, 1);
}
