//! The library's contracts: ownership, attaching, resets, permissions,
//! refusals that leave good state intact.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test reports failure by panicking

mod common;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Proc, Rundir, Tree};
use liveness::{ErrorKind, Health, Mode, Probe, Unit, Verdict};

/// A handle on `unit` under `rd`, loaded by this process.
fn loaded(rd: &Rundir, unit: &str) -> Health {
    let h = Health::builder()
        .unit(unit)
        .rundir(rd.path())
        .build()
        .unwrap();
    h.load().unwrap();
    h
}

/// As [`loaded`], with a heartbeat deadline of `secs` seconds.
fn loaded_beating(rd: &Rundir, unit: &str, secs: u64) -> Health {
    let h = Health::builder()
        .unit(unit)
        .rundir(rd.path())
        .heartbeat(Duration::from_secs(secs))
        .build()
        .unwrap();
    h.load().unwrap();
    h
}

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

/// `examples/state_writer RUNDIR UNIT ACTION`, stdin piped.
fn spawn_writer(rd: &Rundir, unit: &str, action: &str) -> Proc {
    let mut cmd = Command::new(common::example("state_writer"));
    cmd.args([rd.path().to_str().unwrap(), unit, action])
        .stdin(Stdio::piped());
    Proc::spawn(&mut cmd)
}

/// A second load of a live unit — from another process, from another handle
/// in the same process, or through the CLI — is refused naming the owner's
/// pid, and the owner's files are untouched (same bytes, same inodes).
#[test]
fn a_second_owner_is_refused_and_the_first_untouched() {
    let rd = Rundir::new();
    let mut holder = spawn_writer(&rd, "svc", "hold");
    assert_eq!(holder.next_line(), "ready");
    let owner = holder.tree.child.id();
    let before = snapshot(&rd.unit_dir("svc"));

    let mut second = spawn_writer(&rd, "svc", "try-load");
    assert_eq!(
        second.next_line(),
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
    let a = loaded(&rd, "one");
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
    let _sup = loaded(&rd, "app");
    // ...starts the child, and records it as the owner before it loads.
    let mut w = spawn_writer(&rd, "app", "attach");
    let child = w.tree.child.id();
    let st = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap();
    let starttime = st[st.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(19)
        .unwrap()
        .to_owned();
    rd.write("app", "starttime", format!("{starttime}\n").as_bytes());
    rd.write("app", "pid", format!("{child}\n").as_bytes());
    w.send("go");

    assert_eq!(w.next_line(), "attached");
    assert_eq!(w.next_line(), "done");
    w.assert_code(0);
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
    let mut w = spawn_writer(&rd, "app", "attach");
    w.send("go");
    assert_eq!(w.next_line(), "owner");
    assert_eq!(w.next_line(), "done");
    w.assert_code(0);
    // It exited: its drop reset everything.
    assert_eq!(rd.read("app", "pid"), None);
}

/// A forked child dropping its copy of the handle does not reset the
/// parent's unit.
#[test]
fn a_forked_child_does_not_reset_its_parents_unit() {
    let rd = Rundir::new();
    let mut w = spawn_writer(&rd, "forky", "fork-drop");
    assert_eq!(w.next_line(), "child exited");
    assert_eq!(rd.liveness("forky", &["probe"]).code, 0);
}

/// Dropping the owner's handle resets the unit: no state.
#[test]
fn drop_resets() {
    let rd = Rundir::new();
    let h = loaded(&rd, "d");
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
    let h = loaded_beating(&rd, "quiet", 30);
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
/// (library: `ErrorKind::Io`; CLI: exit 11), nothing panics, and a write
/// that would have made the state worse says that the previous state stays
/// visible (nothing can be removed either).
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
    let h = loaded(&rd, "ro");
    h.set(0).unwrap();
    h.ready().unwrap();
    fs.remount("ro");

    let visible = "the previous state stays visible";
    let e = h.set_with_message(3, "disk").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().contains("Read-only file system"), "{e}");
    assert!(e.to_string().contains(visible), "{e}");
    let e = h.not_ready().unwrap_err();
    assert!(e.to_string().contains(visible), "{e}");
    let r = rd.liveness("ro", &["set", "3"]);
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(
        r.stderr.starts_with("liveness: ")
            && r.stderr.contains("Read-only file system")
            && r.stderr.contains(visible),
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

/// On a full run directory a write fails with ENOSPC and leaves no
/// temporary file behind; a write that would have made the state worse
/// removes `error` instead, so no probe passes on the better state it
/// replaced (each row: the call, the probe's exit code after it); a failed
/// `set(0)` leaves the worse code. Once there is room, writes succeed.
#[test]
fn a_full_rundir_never_leaves_a_better_state_visible() {
    if !common::require(
        common::is_root(),
        "a_full_rundir_never_leaves_a_better_state_visible",
        "root (mount)",
    ) {
        return;
    }
    // Each row: the call, the error code before it, the probe's flags, the
    // probe's exit code after it, whether `error` is removed.
    let table = [
        Worse::new("set(3)", 0, |h| h.set(3), &[], 6, true),
        Worse::new(
            "set_with_message(3)",
            0,
            |h| h.set_with_message(3, "disk full"),
            &[],
            6,
            true,
        ),
        Worse::new(
            "set_heartbeat(shorter)",
            0,
            |h| h.set_heartbeat(Duration::from_secs(5)),
            &[],
            6,
            true,
        ),
        Worse::new("set(0) after 3 (not worse)", 3, |h| h.set(0), &[], 1, false),
        // Negative control: removing `ready` needs no space.
        Worse::new("not_ready()", 0, Health::not_ready, &["--ready"], 6, false),
    ];
    for row in table {
        let (name, falls_back) = (row.name, row.falls_back);
        let rd = Rundir::new();
        let _fs = Tmpfs::mount(rd.path(), "64k");
        let h = loaded_beating(&rd, "full", 60);
        h.set(row.start).unwrap();
        h.ready().unwrap();
        let filler = rd.path().join("filler");
        fill(&filler);

        let result = (row.call)(&h);
        let mut args = vec!["probe"];
        args.extend_from_slice(row.probe_args);
        let probe = rd.liveness("full", &args);
        assert_eq!(probe.code, row.code, "{name}: {}", probe.stderr);
        if name.starts_with("not_ready") {
            result.unwrap();
            continue;
        }
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{name}");
        assert!(
            e.to_string().contains("No space left on device"),
            "{name}: {e}"
        );
        assert_eq!(
            e.to_string().contains("removed error instead"),
            falls_back,
            "{name}: {e}"
        );
        let temps: Vec<_> = std::fs::read_dir(rd.unit_dir("full"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".tmp."))
            .collect();
        assert!(temps.is_empty(), "{name}: {temps:?}");
        if falls_back {
            // The CLI says the same in its one line, exit 11 (the removed
            // `error` freed a block: fill it first).
            fill(&filler);
            let r = rd.liveness("full", &["set", "4"]);
            assert_eq!(r.code, 11, "{}", r.stderr);
            assert!(r.stderr.contains("removed error instead"), "{}", r.stderr);
            assert_eq!(rd.liveness("full", &["probe"]).code, 6);
        }
        std::fs::remove_file(&filler).unwrap();
        h.set_with_message(3, "disk full").unwrap();
        assert_eq!(rd.liveness("full", &["probe"]).code, 1, "{name}");
    }
}

/// A process attached under `liveness run --ready-on-start` starts knowing
/// nothing of what its supervisor wrote: its `not_ready()` removes `ready`,
/// and `probe --ready` fails. Negative control: before the call, it passes.
#[test]
fn an_attached_handles_not_ready_is_written() {
    let rd = Rundir::new();
    let mut cmd = Command::new(common::bin());
    cmd.args(["run", "--ready-on-start", "-u", "att", "-r"])
        .arg(rd.path())
        .arg("--")
        .arg(common::example("state_writer"))
        .args([rd.path().to_str().unwrap(), "att", "unready"])
        .stdin(Stdio::piped());
    let mut run = Proc::spawn(&mut cmd);
    assert_eq!(run.next_line(), "attached");
    let p = rd.liveness("att", &["probe", "--ready"]);
    assert_eq!(p.code, 6, "{}", p.stderr);
    assert!(p.stderr.contains("not ready"), "{}", p.stderr);
    assert_eq!(rd.liveness("att", &["probe"]).code, 0);
    run.close_stdin();
    run.exit();

    // Negative control: the same supervisor without the child's call.
    let mut cmd = Command::new(common::bin());
    cmd.args(["run", "--ready-on-start", "-u", "ctl", "-r"])
        .arg(rd.path())
        .args(["--", "sh", "-c", "echo started; read x"])
        .stdin(Stdio::piped());
    let mut run = Proc::spawn(&mut cmd);
    assert_eq!(run.next_line(), "started");
    assert_eq!(rd.liveness("ctl", &["probe", "--ready"]).code, 0);
}

/// A row of `a_full_rundir_never_leaves_a_better_state_visible`.
struct Worse {
    name: &'static str,
    start: u32,
    call: fn(&Health) -> liveness::Result<()>,
    probe_args: &'static [&'static str],
    code: i32,
    falls_back: bool,
}

impl Worse {
    fn new(
        name: &'static str,
        start: u32,
        call: fn(&Health) -> liveness::Result<()>,
        probe_args: &'static [&'static str],
        code: i32,
        falls_back: bool,
    ) -> Worse {
        Worse {
            name,
            start,
            call,
            probe_args,
            code,
            falls_back,
        }
    }
}

/// Appends to `filler` until its file system has no block left.
fn fill(filler: &Path) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(filler)
        .unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
}

/// When the message cannot be written, the error code still is (a
/// directory planted where `message` belongs makes the message write fail
/// on any file system).
#[test]
fn a_failed_message_write_still_writes_the_error() {
    let rd = Rundir::new();
    let h = loaded(&rd, "m");
    h.set(0).unwrap();
    std::fs::create_dir(rd.unit_dir("m").join("message")).unwrap();
    let e = h.set_with_message(3, "why").unwrap_err();
    assert!(e.to_string().contains("message"), "{e}");
    assert_eq!(rd.read("m", "error"), Some(b"3\n".to_vec()));
    assert_ne!(rd.liveness("m", &["probe"]).code, 0);
    // Negative control: with the obstacle gone, both are written.
    std::fs::remove_dir(rd.unit_dir("m").join("message")).unwrap();
    h.set_with_message(3, "why").unwrap();
    assert_eq!(rd.read("m", "message"), Some(b"why\n".to_vec()));
}

/// What another process wrote is never hidden by the owner's cache: after a
/// helper's `liveness set|ready|not-ready`, the owner's next call with its
/// own value writes it (each row: the owner's value, the helper's command,
/// the probe that shows which one is on disk) — whether the owner called
/// once before (proven by stat) or in a hot loop (proven by the inotify
/// gate, see `src/state/quiet.rs`).
#[test]
fn the_write_cache_never_hides_a_helpers_write() {
    type Call = fn(&Health) -> liveness::Result<()>;
    type Row = (
        &'static str,
        Call,
        &'static [&'static str],
        &'static [&'static str],
        i32,
    );
    let table: [Row; 4] = [
        (
            "set(3) vs set 0",
            |h| h.set(3),
            &["set", "0"],
            &["probe"],
            1,
        ),
        (
            "set_with_message(3) vs set 3 other",
            |h| h.set_with_message(3, "mine"),
            &["set", "3", "-m", "theirs"],
            &["probe"],
            1,
        ),
        (
            "not_ready() vs ready",
            Health::not_ready,
            &["ready"],
            &["probe", "--ready"],
            6,
        ),
        (
            "ready() vs not-ready",
            Health::ready,
            &["not-ready"],
            &["probe", "--ready"],
            0,
        ),
    ];
    for ((name, call, helper, probe, code), calls) in
        table.into_iter().flat_map(|row| [(row, 1), (row, 8)])
    {
        let rd = Rundir::new();
        let h = loaded(&rd, "c");
        h.set(0).unwrap();
        for _ in 0..calls {
            call(&h).unwrap();
        }
        let r = rd.liveness("c", helper);
        assert_eq!(r.code, 0, "{name} after {calls}: {}", r.stderr);
        call(&h).unwrap();
        let p = rd.liveness("c", probe);
        assert_eq!(p.code, code, "{name} after {calls}: {}", p.stderr);
        if name.starts_with("set_with_message") {
            assert_eq!(rd.read("c", "message"), Some(b"mine\n".to_vec()));
        }
    }
    // A rewrite in place (same inode, new bytes) is seen too.
    let rd = Rundir::new();
    let h = loaded(&rd, "c");
    for _ in 0..8 {
        h.set(3).unwrap();
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(rd.unit_dir("c").join("error"))
        .unwrap();
    f.write_all(b"0\n").unwrap();
    drop(f);
    assert_eq!(rd.liveness("c", &["probe"]).code, 0);
    h.set(3).unwrap();
    assert_eq!(rd.liveness("c", &["probe"]).code, 1);
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

/// `set(0)` clears the message this handle wrote (no stale reason is left
/// for a later code to borrow); a message another process wrote beside
/// error 0 is left alone — no reader shows a message with error 0 — and is
/// removed by the next non-zero `set` without one, which every reader
/// would show.
#[test]
fn set_zero_clears_its_own_message_and_a_code_never_borrows_one() {
    let rd = Rundir::new();
    let h = loaded(&rd, "m");
    h.set_with_message(3, "database unreachable").unwrap();
    assert!(rd.read("m", "message").is_some());
    h.set(0).unwrap();
    assert_eq!(rd.read("m", "message"), None, "our own message goes");
    // A helper's message beside error 0: shown by no reader.
    std::fs::write(rd.unit_dir("m").join("message"), b"theirs\n").unwrap();
    h.set(0).unwrap();
    let p = rd.liveness("m", &["probe", "-v"]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert!(!p.stderr.contains("theirs"), "{}", p.stderr);
    // A non-zero code without a message never shows it.
    h.set(4).unwrap();
    assert_eq!(rd.read("m", "message"), None);
    let p = rd.liveness("m", &["probe"]);
    assert_eq!(p.code, 1);
    assert!(p.stderr.ends_with("unhealthy: error 4\n"), "{}", p.stderr);
}
