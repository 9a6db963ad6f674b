//! The library's contracts: ownership, attaching, resets, permissions,
//! refusals that leave good state intact.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test reports failure by panicking

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Rundir, Tree};
use liveness::{ErrorKind, Health, Mode, Probe, Unit, Verdict};

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            let bytes = if meta.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                vec![]
            };
            (
                e.file_name().to_string_lossy().into_owned(),
                bytes,
                meta.ino(),
            )
        })
        .collect();
    v.sort();
    v
}

fn spawn_writer(
    rd: &Rundir,
    unit: &str,
    action: &str,
) -> (Tree, BufReader<std::process::ChildStdout>) {
    let mut cmd = Command::new(common::example("state_writer"));
    cmd.args([rd.path().to_str().unwrap(), unit, action])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut tree = Tree::spawn(&mut cmd);
    let out = BufReader::new(tree.child.stdout.take().unwrap());
    (tree, out)
}

fn line(out: &mut BufReader<std::process::ChildStdout>) -> String {
    let mut l = String::new();
    out.read_line(&mut l).unwrap();
    l.trim_end().to_owned()
}

/// A second load of a live unit — from another process, from another handle
/// in the same process, or through the CLI — is refused naming the owner's
/// pid, and the owner's files are untouched (same bytes, same inodes).
#[test]
fn a_second_owner_is_refused_and_the_first_untouched() {
    let rd = Rundir::new();
    let (tree, mut out) = spawn_writer(&rd, "svc", "hold");
    assert_eq!(line(&mut out), "ready");
    let owner = tree.child.id();
    let before = snapshot(&rd.unit_dir("svc"));

    let (_t2, mut out2) = spawn_writer(&rd, "svc", "try-load");
    assert_eq!(
        line(&mut out2),
        format!("error Busy {owner}: unit svc: owned by pid {owner}")
    );

    let h = Health::builder()
        .unit("svc")
        .rundir(rd.path())
        .build()
        .unwrap();
    let e = h.load().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert_eq!(e.pid(), Some(owner));

    let sleeper = Tree::spawn(Command::new("sleep").arg("60"));
    let r = rd.liveness("svc", &["load", "--pid", &sleeper.pid().to_string()]);
    assert_eq!(r.code, 10, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!("liveness: unit svc: owned by pid {owner}\n")
    );
    sleeper.signal(nix::sys::signal::Signal::SIGKILL);

    assert_eq!(snapshot(&rd.unit_dir("svc")), before);
    assert_eq!(rd.liveness("svc", &["probe", "--ready"]).code, 0);
}

/// Two handles in one process cannot both own a unit.
#[test]
fn a_second_handle_in_the_same_process_is_refused() {
    let rd = Rundir::new();
    let a = Health::builder()
        .unit("one")
        .rundir(rd.path())
        .build()
        .unwrap();
    a.load().unwrap();
    let b = Health::builder()
        .unit("one")
        .rundir(rd.path())
        .build()
        .unwrap();
    assert_eq!(b.load().unwrap_err().kind(), ErrorKind::Busy);
    drop(b);
    a.set(0).unwrap();
    assert_eq!(Probe::new(Mode::Live).check(a.unit()).verdict, Verdict::Ok);
}

/// The attach rule: when a supervisor holds the lock and the pid file
/// already names the process, its `load` attaches instead of claiming; its
/// reports land in the unit, and its reset leaves the supervisor's part.
#[test]
fn a_supervised_process_attaches() {
    let rd = Rundir::new();
    // This process plays the supervisor: it claims the unit...
    let sup = Health::builder()
        .unit("app")
        .rundir(rd.path())
        .build()
        .unwrap();
    sup.load().unwrap();
    // ...starts the child, and records it as the owner before it loads.
    let (mut tree, mut out) = spawn_writer(&rd, "app", "attach");
    let child = tree.child.id();
    let st = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap();
    let starttime = st[st.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(19)
        .unwrap()
        .to_owned();
    rd.write("app", "starttime", format!("{starttime}\n").as_bytes());
    rd.write("app", "pid", format!("{child}\n").as_bytes());
    tree.child.stdin.take().unwrap().write_all(b"go\n").unwrap();

    assert_eq!(line(&mut out), "attached");
    assert_eq!(line(&mut out), "done");
    assert!(tree.wait_timeout(common::PATIENCE).unwrap().success());
    // The child's drop removed what it reported, not who owns the unit.
    assert_eq!(rd.read("app", "ready"), None);
    assert_eq!(rd.read("app", "error"), None);
    assert_eq!(
        rd.read("app", "pid"),
        Some(format!("{child}\n").into_bytes())
    );
}

/// Without a supervisor's claim, the same process owns the unit.
#[test]
fn an_unsupervised_process_owns() {
    let rd = Rundir::new();
    let (mut tree, mut out) = spawn_writer(&rd, "app", "attach");
    tree.child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(line(&mut out), "owner");
    assert_eq!(line(&mut out), "done");
    assert!(tree.wait_timeout(common::PATIENCE).unwrap().success());
    // It exited: its drop reset everything.
    assert_eq!(rd.read("app", "pid"), None);
}

/// A forked child dropping its copy of the handle does not reset the
/// parent's unit.
#[test]
fn a_forked_child_does_not_reset_its_parents_unit() {
    let rd = Rundir::new();
    let (_tree, mut out) = spawn_writer(&rd, "forky", "fork-drop");
    assert_eq!(line(&mut out), "child exited");
    assert_eq!(rd.liveness("forky", &["probe"]).code, 0);
}

/// Dropping the owner's handle resets the unit: no state.
#[test]
fn drop_resets() {
    let rd = Rundir::new();
    let h = Health::builder()
        .unit("d")
        .rundir(rd.path())
        .build()
        .unwrap();
    h.load().unwrap();
    h.set(0).unwrap();
    h.ready().unwrap();
    let unit = h.unit().clone();
    drop(h);
    assert_eq!(
        Probe::new(Mode::Live).check(&unit).verdict,
        Verdict::NoState
    );
    let left: Vec<_> = std::fs::read_dir(unit.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["lock"]);
}

/// A value already set is not written again (same inode), and beats in a
/// hot loop reach the disk at most once per interval.
#[test]
fn unchanged_values_do_not_touch_the_disk() {
    let rd = Rundir::new();
    let h = Health::builder()
        .unit("quiet")
        .rundir(rd.path())
        .heartbeat(Duration::from_secs(30))
        .build()
        .unwrap();
    h.load().unwrap();
    h.set_with_message(3, "db").unwrap();
    h.ready().unwrap();
    let ino = |f: &str| {
        std::fs::metadata(rd.unit_dir("quiet").join(f))
            .unwrap()
            .ino()
    };
    let (error, message, ready, beat) =
        (ino("error"), ino("message"), ino("ready"), ino("heartbeat"));
    for _ in 0..10_000 {
        h.set_with_message(3, "db").unwrap();
        h.ready().unwrap();
        h.beat().unwrap();
    }
    assert_eq!(
        (ino("error"), ino("message"), ino("ready"), ino("heartbeat")),
        (error, message, ready, beat)
    );
    h.set(3).unwrap();
    assert!(
        rd.read("quiet", "message").is_none(),
        "set() clears the message"
    );
    assert_ne!(ino("error"), 0);
}

/// Files are 0644 and the directory 0755 whatever the umask, so a probe
/// running as another user can read them.
#[test]
fn state_is_world_readable_under_a_strict_umask() {
    let rd = Rundir::new();
    let bin = common::bin();
    let script = "umask 077; \"$1\" load --heartbeat 30";
    let r: common::Ran = rd
        .command("strict", "sh", &["-c", script, "sh", bin.to_str().unwrap()])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dir = rd.unit_dir("strict");
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o755
    );
    for f in ["pid", "starttime", "pidns", "heartbeat"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{f}");
    }
    let lib = Health::builder()
        .unit("lib")
        .rundir(rd.path())
        .build()
        .unwrap();
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let loaded = lib.load().and_then(|()| lib.set(0));
    nix::sys::stat::umask(old);
    loaded.unwrap();
    for f in ["lock", "pid", "error"] {
        let mode = std::fs::metadata(rd.unit_dir("lib").join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{f}");
    }
}

/// A unit directory that is a symlink is refused, not followed.
#[test]
fn a_symlinked_unit_directory_is_refused() {
    let rd = Rundir::new();
    let elsewhere = rd.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, rd.unit_dir("evil")).unwrap();
    let h = Health::builder()
        .unit("evil")
        .rundir(rd.path())
        .build()
        .unwrap();
    let e = h.load().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(e.to_string().ends_with("evil: is a symlink"), "{e}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        Tmpfs(at.to_path_buf())
    }

    fn remount(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// On a read-only run directory every write fails with one clear error
/// (library: `ErrorKind::Io`; CLI: exit 11), nothing panics, and the state
/// written before stays intact and healthy.
#[test]
fn a_read_only_rundir_gives_a_clear_error_and_keeps_state() {
    if !common::require(
        common::is_root(),
        "a_read_only_rundir_gives_a_clear_error_and_keeps_state",
        "root (mount)",
    ) {
        return;
    }
    let rd = Rundir::new();
    let fs = Tmpfs::mount(rd.path(), "1m");
    let h = Health::builder()
        .unit("ro")
        .rundir(rd.path())
        .build()
        .unwrap();
    h.load().unwrap();
    h.set(0).unwrap();
    h.ready().unwrap();
    fs.remount("ro");

    let e = h.set_with_message(3, "disk").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().contains("Read-only file system"), "{e}");
    assert!(h.not_ready().is_err());
    let r = rd.liveness("ro", &["set", "3"]);
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(
        r.stderr.starts_with("liveness: ") && r.stderr.contains("Read-only file system"),
        "{}",
        r.stderr
    );
    let r = rd.liveness("other", &["load"]);
    assert_eq!(r.code, 11, "{}", r.stderr);

    assert_eq!(rd.read("ro", "error"), Some(b"0\n".to_vec()));
    assert_eq!(rd.liveness("ro", &["probe", "--ready"]).code, 0);
    fs.remount("rw");
    drop(h);
}

/// On a full run directory a write fails with ENOSPC, leaves the previous
/// value and no temporary file behind, and succeeds again once there is room.
#[test]
fn a_full_rundir_gives_a_clear_error_and_keeps_state() {
    if !common::require(
        common::is_root(),
        "a_full_rundir_gives_a_clear_error_and_keeps_state",
        "root (mount)",
    ) {
        return;
    }
    let rd = Rundir::new();
    let _fs = Tmpfs::mount(rd.path(), "64k");
    let h = Health::builder()
        .unit("full")
        .rundir(rd.path())
        .build()
        .unwrap();
    h.load().unwrap();
    h.set(0).unwrap();
    // Fill every remaining block.
    let filler = rd.path().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    drop(f);

    let e = h.set_with_message(3, "disk full").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().contains("No space left on device"), "{e}");
    let r = rd.liveness("full", &["set", "4"]);
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert_eq!(rd.read("full", "error"), Some(b"0\n".to_vec()));
    let temps: Vec<_> = std::fs::read_dir(rd.unit_dir("full"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".tmp."))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    assert_eq!(rd.liveness("full", &["probe"]).code, 0);

    std::fs::remove_file(&filler).unwrap();
    h.set_with_message(3, "disk full").unwrap();
    assert_eq!(rd.liveness("full", &["probe"]).code, 1);
}

/// The original module's style: checks registered by name, selected by
/// name, an unknown name refused before anything runs.
#[test]
fn free_functions_on_the_process_wide_handle() {
    let rd = Rundir::new();
    liveness::register("passes", || Ok(()));
    liveness::register("fails", || Err("no database".into()));
    let b = || Health::builder().unit("global").rundir(rd.path());
    let e = liveness::load_with(b(), &["passes", "nope"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = liveness::load_with(b(), &["passes", "fails"]).unwrap_err();
    assert_eq!(e.to_string(), "check \"fails\": no database");
    assert!(
        rd.read("global", "pid").is_none(),
        "a failed check writes nothing"
    );
    liveness::load_with(b(), &["passes"]).unwrap();
    liveness::set(0).unwrap();
    let unit = Unit::new("global", rd.path()).unwrap();
    assert_eq!(Probe::new(Mode::Live).check(&unit).verdict, Verdict::Ok);
    liveness::reset().unwrap();
    assert_eq!(
        Probe::new(Mode::Live).check(&unit).verdict,
        Verdict::NoState
    );
    assert_eq!(liveness::set(0).unwrap_err().kind(), ErrorKind::NotLoaded);
}
