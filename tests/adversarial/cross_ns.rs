//! Readers in another PID namespace (issue #9 §1, doc/state-format.md
//! *Verdicts*, step 4): "alive" needs a positive proof — `/proc` in the
//! owner's namespace, or a held lock. Every combination of the reader's
//! namespace, the `lock` and the `pidns` file is judged by `liveness probe`
//! against its documented verdict; then `wait --gone` and a death
//! dependency run in another namespace. Needs root (`unshare`).

use std::fs::File;
use std::process::{Command, Stdio};

use crate::common::{self, Proc, Ran, Rundir, Tree};

const U: &str = "u";

/// Where the reader runs.
#[derive(Clone, Copy, Debug)]
enum Reader {
    /// The writer's own PID namespace.
    Same,
    /// A new PID namespace with its own `/proc` (a sidecar container).
    Other,
    /// A new PID namespace that still sees the host's `/proc`: `/proc`
    /// proves nothing.
    HostProc,
}

const READERS: [Reader; 3] = [Reader::Same, Reader::Other, Reader::HostProc];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Pidns {
    /// Written by `load` in the writer's namespace.
    Ours,
    /// A namespace nobody here lives in.
    Foreign,
    Absent,
    Corrupt,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lock {
    Held,
    Free,
    Absent,
    NotRegular,
}

/// The verdict's words and exit code.
const OK: (&str, i32) = ("ok", 0);
const GONE: (&str, i32) = ("owner gone", 4);
const UNVERIFIABLE: (&str, i32) = ("owner unverifiable", 4);
const CORRUPT: (&str, i32) = ("corrupt state", 7);

struct Row {
    alive: bool,
    pidns: Pidns,
    lock: Lock,
    /// The verdict for each of [`READERS`].
    expect: [(&'static str, i32); 3],
}

const fn row(alive: bool, pidns: Pidns, lock: Lock, expect: [(&'static str, i32); 3]) -> Row {
    Row {
        alive,
        pidns,
        lock,
        expect,
    }
}

fn table() -> Vec<Row> {
    use Lock as L;
    use Pidns as P;
    let mut v = vec![
        // Owner alive.                         same        other         host /proc
        row(true, P::Ours, L::Held, [OK, OK, OK]),
        row(true, P::Ours, L::Free, [GONE, GONE, GONE]),
        row(true, P::Ours, L::Absent, [OK, UNVERIFIABLE, UNVERIFIABLE]),
        row(true, P::Ours, L::NotRegular, [CORRUPT, CORRUPT, CORRUPT]),
        row(true, P::Foreign, L::Held, [OK, OK, OK]),
        row(true, P::Foreign, L::Free, [GONE, GONE, GONE]),
        row(
            true,
            P::Foreign,
            L::Absent,
            [UNVERIFIABLE, UNVERIFIABLE, UNVERIFIABLE],
        ),
        row(true, P::Foreign, L::NotRegular, [CORRUPT, CORRUPT, CORRUPT]),
        // No pidns (the original module's state): judged by /proc where
        // there is one of our own — in another namespace the pid names
        // nothing, and the owner reads as gone (fail closed).
        row(true, P::Absent, L::Held, [OK, GONE, OK]),
        row(true, P::Absent, L::Free, [GONE, GONE, GONE]),
        row(true, P::Absent, L::Absent, [OK, GONE, UNVERIFIABLE]),
        row(true, P::Absent, L::NotRegular, [CORRUPT, GONE, CORRUPT]),
        // The issue's reproduction: a `load --pid` owner killed.
        row(
            false,
            P::Ours,
            L::Absent,
            [GONE, UNVERIFIABLE, UNVERIFIABLE],
        ),
        row(false, P::Ours, L::Free, [GONE, GONE, GONE]),
        row(false, P::Foreign, L::Absent, [UNVERIFIABLE; 3]),
    ];
    for lock in [L::Held, L::Free, L::Absent, L::NotRegular] {
        v.push(row(true, P::Corrupt, lock, [CORRUPT; 3]));
    }
    v
}

/// A unit owned by a `sleep` (alive, or killed and reaped), written by
/// `liveness load --pid`, `set 0`, `ready`, then given `pidns` and `lock`.
struct Fixture {
    rd: Rundir,
    _owner: Option<Tree>,
    /// Holds the lock while the fixture lives (`Lock::Held`).
    _lock: Option<File>,
}

impl Fixture {
    fn new(alive: bool, pidns: Pidns, lock: Lock) -> Fixture {
        let rd = Rundir::new();
        let mut owner = Tree::spawn(Command::new("sleep").arg("600").stdin(Stdio::null()));
        let pid = owner.pid().to_string();
        for args in [&["load", "--pid", &pid][..], &["set", "0"], &["ready"]] {
            let r = rd.liveness(U, args);
            assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        }
        let owner = if alive {
            Some(owner)
        } else {
            owner.signal(nix::sys::signal::Signal::SIGKILL);
            assert!(owner.wait_timeout(common::PATIENCE).is_some());
            None
        };
        let dir = rd.unit_dir(U);
        match pidns {
            Pidns::Ours => assert!(dir.join("pidns").exists()),
            Pidns::Foreign => std::fs::write(dir.join("pidns"), b"4026530000\n").unwrap(),
            Pidns::Absent => std::fs::remove_file(dir.join("pidns")).unwrap(),
            Pidns::Corrupt => std::fs::write(dir.join("pidns"), b"pid:[1]\n").unwrap(),
        }
        let held = match lock {
            Lock::Held => {
                let f = File::create(dir.join("lock")).unwrap();
                f.lock().unwrap();
                Some(f)
            }
            Lock::Free => {
                File::create(dir.join("lock")).unwrap();
                None
            }
            Lock::Absent => None,
            Lock::NotRegular => {
                std::fs::create_dir(dir.join("lock")).unwrap();
                None
            }
        };
        Fixture {
            rd,
            _owner: owner,
            _lock: held,
        }
    }

    /// `liveness ARGS` as `reader` runs it.
    fn run(&self, reader: Reader, args: &[&str]) -> Ran {
        let bin = common::bin();
        let mut cmd = match reader {
            Reader::Same => self.rd.command(U, &bin, args),
            Reader::Other | Reader::HostProc => {
                let mut unshare = vec!["--pid", "--fork"];
                if matches!(reader, Reader::Other) {
                    unshare.push("--mount-proc");
                }
                let mut c = self.rd.command(U, "unshare", &unshare);
                c.arg(&bin).args(args);
                c
            }
        };
        cmd.output().unwrap().into()
    }
}

fn namespaces_available(test: &str) -> bool {
    common::require(
        common::is_root() && common::have("unshare"),
        test,
        "root and unshare (PID namespaces)",
    )
}

/// Every combination of reader, `pidns` and `lock` gets its documented
/// verdict from `liveness probe`: an owner is alive only when `/proc` in
/// its namespace or a held lock proves it, and a reader that can prove
/// neither says "owner unverifiable" (exit 4) — never "ok".
#[test]
fn cross_namespace_readers_need_a_proof() {
    let test = "cross_namespace_readers_need_a_proof";
    if !namespaces_available(test) {
        return;
    }
    let table = table();
    assert!(table.iter().any(|r| r.expect.contains(&OK)), "a control");
    let mut failures = Vec::new();
    for r in &table {
        let f = Fixture::new(r.alive, r.pidns, r.lock);
        for (reader, (words, code)) in READERS.iter().zip(r.expect) {
            let got = f.run(*reader, &["probe"]);
            let line = got.stderr.trim_end();
            let ok = got.code == code
                && if code == 0 {
                    line.is_empty()
                } else {
                    line.starts_with(&format!("liveness: unit {U}: {words}"))
                        && line.lines().count() == 1
                };
            if !ok {
                failures.push(format!(
                    "alive {} pidns {:?} lock {:?}, reader {reader:?}: expected {code} ({words}), got {}: {line}",
                    r.alive, r.pidns, r.lock, got.code
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        table.len() * READERS.len(),
        failures.join("\n")
    );
}

/// The issue's reproduction, word for word: a `load --pid` unit whose owner
/// was killed is "owner gone" in its namespace, "owner unverifiable" (exit
/// 4, with the reason) from another — never 0 — and `wait --gone` from
/// another namespace ends at once with exit 4 and the reason instead of
/// timing out.
#[test]
fn a_killed_load_pid_owner_is_never_alive_from_another_namespace() {
    let test = "a_killed_load_pid_owner_is_never_alive_from_another_namespace";
    if !namespaces_available(test) {
        return;
    }
    let f = Fixture::new(false, Pidns::Ours, Lock::Absent);
    assert_eq!(f.run(Reader::Same, &["probe"]).code, 4);
    let r = f.run(Reader::Other, &["probe"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("owner unverifiable: cannot verify pid ")
            && r.stderr.contains("from this PID namespace (its pidns ")
            && r.stderr.contains("and no lock is held"),
        "{}",
        r.stderr
    );
    // A timeout far beyond the test: reaching it would be the bug.
    let r = f.run(Reader::Other, &["wait", "--gone", U, "--timeout", "1h"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with(&format!("liveness: wait: unit {U}: owner unverifiable: ")),
        "{}",
        r.stderr
    );
}

/// `wait --gone` and a death dependency, from another PID namespace: a
/// free lock is gone (wait 0, the sidecar is stopped: 143), an unverifiable
/// owner ends the wait with 4 and counts as dead for the dependency (so a
/// Job's sidecars always end), and a held lock is alive (negative control:
/// the wait times out with 8, the sidecar's child exits on its own, 0).
#[test]
fn waiters_and_death_dependencies_in_another_namespace_always_end() {
    let test = "waiters_and_death_dependencies_in_another_namespace_always_end";
    if !namespaces_available(test) {
        return;
    }
    // (alive, lock, wait --gone's code, whether the death dependency fires)
    let table = [
        (true, Lock::Free, 0, true),
        (false, Lock::Absent, 4, true),
        (true, Lock::Absent, 4, true),
        (true, Lock::Held, 8, false),
    ];
    for (alive, lock, wait_code, dies) in table {
        let what = format!("alive {alive} lock {lock:?}");
        let f = Fixture::new(alive, Pidns::Ours, lock);
        let timeout = if wait_code == 8 { "1s" } else { "1h" };
        let r = f.run(Reader::Other, &["wait", "--gone", U, "--timeout", timeout]);
        assert_eq!(r.code, wait_code, "{what}: {}", r.stderr);

        let mut cmd =
            f.rd.command(U, "unshare", &["--pid", "--fork", "--mount-proc"]);
        cmd.arg(common::bin())
            .args([
                "run",
                "-u",
                "side",
                "--death-deps",
                U,
                "--grace",
                "1h",
                "--",
            ])
            .args(["sh", "-c", "echo started; read x; exit 0"])
            .env("LIVENESS_LOG", "warn")
            .stdin(Stdio::piped());
        let mut side = Proc::spawn(&mut cmd);
        if !dies {
            assert_eq!(side.next_line(), "started", "{what}");
            // No death within a second; then the child ends on its own.
            let w = f.run(
                Reader::Same,
                &["wait", "--tombstone", "side", "--timeout", "1s"],
            );
            assert_eq!(w.code, 8, "{what}: the sidecar was stopped: {}", w.stderr);
            side.close_stdin();
        }
        let expect = if dies { 143 } else { 0 };
        assert_eq!(side.code(), expect, "{what}\n{}", side.describe());
        let err = side.stderr();
        if lock == Lock::Absent {
            assert!(
                err.contains("owner unverifiable") && err.contains("counted as dead"),
                "{what}: the supervisor logs why: {err}"
            );
        }
    }
}

/// A `/proc` that is not our PID namespace's (a new namespace without
/// `--mount-proc`) proves nothing about our pids: `load --pid` refuses to
/// record a start time it cannot read (exit 11), and `terminate` refuses
/// to signal (exit 11) — the process lives. Negative control: the same
/// script with the namespace's own `/proc` loads and terminates (0, 0).
#[test]
fn a_foreign_proc_proves_nothing() {
    let test = "a_foreign_proc_proves_nothing";
    if !namespaces_available(test) {
        return;
    }
    let script = r#"
        L="$1"; R="$2"
        sleep 600 & S=$!
        "$L" load --pid "$S" -u l -r "$R"; echo "load $?"
        mkdir -p "$R/t"
        echo "$S" > "$R/t/pid"
        if [ -e "$R/l/starttime" ]; then cp "$R/l/starttime" "$R/t/starttime"; else echo 1 > "$R/t/starttime"; fi
        ns=$(readlink /proc/self/ns/pid); ns=${ns#pid:[}; echo "${ns%]}" > "$R/t/pidns"
        "$L" terminate -u t -r "$R" --no-wait; echo "terminate $?"
        kill -KILL "$S" 2>/dev/null; wait "$S"; echo "status $?"
    "#;
    // A SIGTERM that was sent decides the status (143) before the KILL.
    for (mount_proc, expect) in [
        (false, "load 11\nterminate 11\nstatus 137\n"),
        (true, "load 0\nterminate 0\nstatus 143\n"),
    ] {
        let rd = Rundir::new();
        let mut args = vec!["--pid", "--fork"];
        if mount_proc {
            args.push("--mount-proc");
        }
        let out = Command::new("unshare")
            .args(&args)
            .args(["sh", "-c", script, "sh"])
            .arg(common::bin())
            .arg(rd.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stdout, expect, "--mount-proc {mount_proc}: {stderr}");
        if !mount_proc {
            assert!(
                stderr.contains("/proc is not mounted, or is another PID namespace's"),
                "{stderr}"
            );
        }
    }
}

/// A `/proc` the reader may not read (`hidepid=1`: another user's
/// `/proc/<pid>/stat` is "Operation not permitted") proves nothing: the
/// lock decides — held (a `liveness run` supervisor) → 0, free → owner gone,
/// absent (`load --pid`) → owner unverifiable, never 0. Negative control:
/// root, who may read `/proc`, judges the same units by `/proc` (0, 4, 0).
#[test]
fn an_unreadable_proc_proves_nothing() {
    let test = "an_unreadable_proc_proves_nothing";
    if !namespaces_available(test) || !crate::other_user::available(test) {
        return;
    }
    let s = crate::other_user::Shared::new();
    let script = r#"
        L="$1"; R="$2"; AS="setpriv --reuid=65534 --regid=65534 --clear-groups --"
        "$L" run -u held -r "$R" -- sleep 600 & RUN=$!
        n=0
        until [ -e "$R/held/tombstone" ]; do
            kill -0 "$RUN" 2>/dev/null || { echo "run ended"; exit 98; }
            n=$((n + 1)); [ "$n" -lt 6000 ] || { echo "run stuck"; ls -la "$R/held"; exit 97; }
            sleep 0.01
        done
        sleep 600 & P=$!
        "$L" load --pid "$P" -u absent -r "$R" && "$L" set 0 -u absent -r "$R"
        "$L" load --pid "$P" -u free -r "$R" && "$L" set 0 -u free -r "$R"
        : > "$R/free/lock"
        "$L" set 0 -u held -r "$R"
        mount -o remount,hidepid=1 /proc || exit 99
        for u in held free absent; do
            $AS "$L" probe -u $u -r "$R"; echo "other $u $?"
        done
        for u in held free absent; do
            "$L" probe -u $u -r "$R" 2>/dev/null; echo "root $u $?"
        done
    "#;
    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&s.bin)
        .arg(s.tmp.path().join("r"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout,
        "other held 0\nother free 4\nother absent 4\nroot held 0\nroot free 4\nroot absent 0\n",
        "{stderr}"
    );
    assert!(
        stderr.contains("unit free: owner gone: lock is free")
            && stderr.contains("unit absent: owner unverifiable: cannot verify pid ")
            && stderr.contains("and no lock is held"),
        "{stderr}"
    );
}

/// A claim never takes over an owner it cannot verify: from another PID
/// namespace, `load --pid` and `run` on a `load --pid` unit (no lock) are
/// refused as busy (10, 123), naming the pid and why; `status` shows the
/// owner's liveness as `?`. Negative control: a free lock proves the owner
/// dead, and the same claims succeed.
#[test]
fn claims_refuse_an_unverifiable_owner() {
    let test = "claims_refuse_an_unverifiable_owner";
    if !namespaces_available(test) {
        return;
    }
    let script = r#"
        L="$1"
        sleep 600 & S=$!
        "$L" run -- true; echo "run $?"
        "$L" load --pid "$S"; echo "load $?"
        "$L" status
    "#;
    for (lock, run, load) in [(Lock::Absent, 123, 10), (Lock::Free, 0, 0)] {
        let f = Fixture::new(true, Pidns::Ours, lock);
        let out =
            f.rd.command(U, "unshare", &["--pid", "--fork", "--mount-proc"])
                .args(["sh", "-c", script, "sh"])
                .arg(common::bin())
                .output()
                .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stdout.starts_with(&format!("run {run}\nload {load}\n")),
            "{lock:?}: {stdout}{stderr}"
        );
        if lock == Lock::Absent {
            assert!(
                stderr.contains("which cannot be verified: cannot verify pid ")
                    && stderr.contains("not taking over"),
                "{stderr}"
            );
            let row = stdout.lines().find(|l| l.starts_with("u ")).unwrap();
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(&cells[1..3], ["owner", "unverifiable"], "{row}");
            assert_eq!(cells[4], "?", "{row}");
        }
    }
}

/// A refused claim leaves nothing behind: the `lock` it created to make the
/// claim goes with it, so a live `load --pid` owner is not turned into
/// "lock is free (the owner died)" by a second `load`, `run` or library
/// `load` (each refused: 10, 123, Busy). Negative control: the probe passes
/// before and after.
#[test]
fn a_refused_claim_leaves_no_lock_behind() {
    let f = Fixture::new(true, Pidns::Ours, Lock::Absent);
    assert_eq!(f.run(Reader::Same, &["probe"]).code, 0);
    let me = std::process::id().to_string();
    assert_eq!(f.run(Reader::Same, &["load", "--pid", &me]).code, 10);
    assert_eq!(f.run(Reader::Same, &["run", "--", "true"]).code, 123);
    let h = liveness::Health::builder()
        .unit(U)
        .rundir(f.rd.path())
        .build()
        .unwrap();
    assert_eq!(h.load().unwrap_err().kind(), liveness::ErrorKind::Busy);
    assert!(!f.rd.unit_dir(U).join("lock").exists());
    let r = f.run(Reader::Same, &["probe"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// Without `/proc` at all, nothing but the lock can prove an owner alive:
/// held (a `liveness run` supervisor) → 0, absent (`load --pid`) → owner
/// unverifiable, 4. Negative control: the same units before `/proc` is
/// unmounted (0, 0).
#[test]
fn no_proc_proves_nothing() {
    let test = "no_proc_proves_nothing";
    if !namespaces_available(test) {
        return;
    }
    let rd = Rundir::new();
    let script = r#"
        L="$1"; R="$2"
        "$L" run -u held -r "$R" -- sleep 600 & RUN=$!
        n=0
        until [ -e "$R/held/tombstone" ]; do
            kill -0 "$RUN" 2>/dev/null || { echo "run ended"; exit 98; }
            n=$((n + 1)); [ "$n" -lt 6000 ] || { echo "run stuck"; exit 97; }
            sleep 0.01
        done
        sleep 600 & P=$!
        "$L" load --pid "$P" -u absent -r "$R" && "$L" set 0 -u absent -r "$R"
        "$L" set 0 -u held -r "$R"
        for u in held absent; do "$L" probe -u $u -r "$R"; echo "with /proc $u $?"; done
        umount /proc || exit 99
        for u in held absent; do "$L" probe -u $u -r "$R"; echo "without /proc $u $?"; done
    "#;
    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(common::bin())
        .arg(rd.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout,
        "with /proc held 0\nwith /proc absent 0\nwithout /proc held 0\nwithout /proc absent 4\n",
        "{stderr}"
    );
    assert!(
        stderr.contains("unit absent: owner unverifiable: cannot verify pid ")
            && stderr.contains("/proc is not mounted, or is another PID namespace's"),
        "{stderr}"
    );
}
