//! `liveness run`, `terminate` and `wait`, through the real binary: a helper
//! child (`examples/signal_child.rs`) reports each signal it receives on
//! stdout; every process tree is killed on drop; every wait is a deadline
//! poll, never a bare sleep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::{PATIENCE, Proc, Ran, Rundir, Tree, bin, example, wait_until};
use nix::sys::signal::Signal;

/// `liveness run -u UNIT OPTS -- CMD` in progress (see [`spawn`]).
fn supervised(rd: &Rundir, unit: &str, opts: &[&str], cmd: &[&str]) -> Proc {
    let mut c = rd.command(unit, bin(), &["run", "-u", unit]);
    c.args(opts).arg("--").args(cmd);
    spawn(c)
}

/// `c` in progress, stdin piped, with default signal dispositions: the
/// signal tests must not inherit INT or QUIT ignored.
fn spawn(mut c: Command) -> Proc {
    c.stdin(Stdio::piped());
    common::default_signals(&mut c);
    Proc::spawn(&mut c)
}

fn child() -> String {
    example("signal_child").display().to_string()
}

fn run(rd: &Rundir, unit: &str, opts: &[&str], cmd: &[&str]) -> Ran {
    let mut args = vec!["run", "-u", unit];
    args.extend(opts);
    args.push("--");
    args.extend(cmd);
    rd.liveness(unit, &args)
}

fn tombstone(rd: &Rundir, unit: &str) -> String {
    String::from_utf8(rd.read(unit, "tombstone").expect("tombstone")).unwrap()
}

fn field<'t>(t: &'t str, key: &str) -> Option<&'t str> {
    t.lines().find_map(|l| l.strip_prefix(key))
}

/// The exit status is the child's code, unmapped and mapped; the tombstone
/// records the child's own code.
#[test]
fn exit_code_matrix() {
    let rd = Rundir::new();
    let c = child();
    for code in [0, 1, 2, 128, 255] {
        let n = code.to_string();
        let r = run(&rd, "job", &[], &[&c, "exit", &n]);
        assert_eq!(r.code, code, "{r:?}");
        assert_eq!(field(&tombstone(&rd, "job"), "ExitCode: "), Some(&*n));
        let r = run(
            &rd,
            "job",
            &["--exit-code-map", &format!("{n}=7")],
            &[&c, "exit", &n],
        );
        assert_eq!(r.code, 7, "mapped {code}: {r:?}");
        assert_eq!(field(&tombstone(&rd, "job"), "ExitCode: "), Some(&*n));
    }
    // An unrelated mapping leaves the code alone.
    let r = run(&rd, "job", &["--exit-code-map", "3=0"], &[&c, "exit", "1"]);
    assert_eq!(r.code, 1);
}

/// 127 when the command does not exist, 126 when it is not executable;
/// both say why on one line and leave a tombstone.
#[test]
fn not_found_and_not_executable() {
    let rd = Rundir::new();
    let r = run(&rd, "job", &[], &["/nonexistent/program"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("No such file"), "{}", r.stderr);
    assert_eq!(field(&tombstone(&rd, "job"), "ExitCode: "), Some("127"));
    let r = run(&rd, "job", &[], &["no-such-program-on-path-xyz"]);
    assert_eq!(r.code, 127, "{r:?}");
    let plain = rd.path().join("plain.txt");
    std::fs::write(&plain, "not a program").unwrap();
    let r = run(&rd, "job", &[], &[plain.to_str().unwrap()]);
    assert_eq!(r.code, 126, "{r:?}");
    let r = run(
        &rd,
        "job",
        &["--exit-code-map", "126=0"],
        &[plain.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{r:?}");
}

/// TERM, INT, HUP and USR1 sent to the supervisor reach the child; the
/// child dies of it and the status is 128+N (0 with a map); the tombstone
/// names the signal.
#[test]
fn signal_matrix() {
    let rd = Rundir::new();
    let c = child();
    for (sig, name) in [
        (Signal::SIGTERM, "TERM"),
        (Signal::SIGINT, "INT"),
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGUSR1, "USR1"),
    ] {
        for mapped in [false, true] {
            let code = 128 + sig as i32;
            let map = format!("{code}=0");
            let opts: &[&str] = if mapped {
                &["--exit-code-map", &map]
            } else {
                &[]
            };
            let mut r = supervised(&rd, "job", opts, &[&c]);
            r.expect("ready");
            r.signal(sig);
            r.expect(name);
            assert_eq!(r.code(), if mapped { 0 } else { code }, "{name}");
            let t = tombstone(&rd, "job");
            assert_eq!(field(&t, "Signal: "), Some(sig.as_str()), "{t}");
            assert_eq!(field(&t, "ExitCode: "), Some(&*code.to_string()));
        }
    }
}

/// Every forwarded signal (HUP QUIT USR1 USR2 WINCH, then TERM twice)
/// reaches the child; the second TERM does not kill it (the grace is not
/// shortened): it still answers a later signal, then exits as told.
#[test]
fn forwards_every_signal_and_second_term_keeps_the_grace() {
    let rd = Rundir::new();
    let c = child();
    let ignore = [
        "--ignore", "TERM", "--ignore", "HUP", "--ignore", "QUIT", "--ignore", "USR1", "--ignore",
        "USR2",
    ];
    let mut cmd = vec![c.as_str()];
    cmd.extend(ignore);
    let mut r = supervised(&rd, "job", &["--grace", "10m"], &cmd);
    r.expect("ready");
    for (sig, name) in [
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGQUIT, "QUIT"),
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGUSR2, "USR2"),
        (Signal::SIGWINCH, "WINCH"),
    ] {
        r.signal(sig);
        r.expect(name);
    }
    r.signal(Signal::SIGTERM);
    r.expect("TERM");
    r.signal(Signal::SIGTERM);
    r.expect_n("TERM", 2);
    r.signal(Signal::SIGUSR1);
    r.expect_n("USR1", 2);
    r.send("exit 0");
    assert_eq!(r.code(), 0);
}

/// A child that ignores TERM is SIGKILLed after --grace; the tombstone
/// records SIGKILL and the status is 137.
#[test]
fn ignoring_term_is_killed_after_the_grace() {
    let rd = Rundir::new();
    let c = child();
    let mut r = supervised(&rd, "job", &["--grace", "1s"], &[&c, "--ignore", "TERM"]);
    r.expect("ready");
    r.signal(Signal::SIGTERM);
    r.expect("TERM");
    assert_eq!(r.code(), 137, "{}", r.stderr());
    let t = tombstone(&rd, "job");
    assert_eq!(field(&t, "Signal: "), Some("SIGKILL"), "{t}");
    assert_eq!(field(&t, "SignalNumber: "), Some("9"));
}

/// A second INT kills at once, long before a 10-minute grace.
#[test]
fn second_int_kills_at_once() {
    let rd = Rundir::new();
    let c = child();
    let mut r = supervised(&rd, "job", &["--grace", "10m"], &[&c, "--ignore", "INT"]);
    r.expect("ready");
    r.signal(Signal::SIGINT);
    r.expect("INT");
    r.signal(Signal::SIGINT);
    assert_eq!(r.code(), 137);
}

/// On TERM the unit is marked not ready before the child is told to stop.
#[test]
fn term_marks_not_ready_first() {
    let rd = Rundir::new();
    let c = child();
    let mut r = supervised(
        &rd,
        "job",
        &["--ready-on-start", "--grace", "10m"],
        &[&c, "--ignore", "TERM"],
    );
    r.expect("ready");
    assert_eq!(rd.liveness("job", &["probe", "--ready"]).code, 0);
    r.signal(Signal::SIGTERM);
    r.expect("TERM");
    let p = rd.liveness("job", &["probe", "--ready"]);
    assert_eq!(p.code, 6, "{p:?}");
    r.send("exit 0");
    assert_eq!(r.code(), 0);
}

/// The child's own `liveness set/ready` and a library `load` attach to the
/// supervisor's claim: a probe from outside passes, the pid file names the
/// child, and after exit only the tombstone (and lock) remain.
#[test]
fn child_attaches_and_reports() {
    let rd = Rundir::new();
    let lv = bin().display().to_string();
    let script = format!("{lv} set 0 && {lv} ready && echo reported $$ && read x");
    let mut r = supervised(&rd, "w", &[], &["sh", "-c", &script]);
    let line = r.next_line();
    assert!(line.starts_with("reported "), "{line}");
    let pid = line.strip_prefix("reported ").unwrap();
    assert_eq!(
        String::from_utf8(rd.read("w", "pid").unwrap()).unwrap(),
        format!("{pid}\n")
    );
    let p = rd.liveness("w", &["probe", "--ready", "-v"]);
    assert_eq!(p.code, 0, "{p:?}");
    r.send("");
    assert_eq!(r.code(), 0);
    let mut left: Vec<String> = std::fs::read_dir(rd.unit_dir("w"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["lock", "tombstone"]);
    let p = rd.liveness("w", &["probe"]);
    assert_eq!(p.code, 12, "exited: {p:?}");
    assert!(
        p.stderr.starts_with("liveness: unit w: exited: code 0 at "),
        "{p:?}"
    );

    // The library: Health::load attaches instead of being refused.
    let writer = example("state_writer").display().to_string();
    let dir = rd.path().display().to_string();
    let mut r = supervised(&rd, "lib", &[], &[&writer, &dir, "lib", "attach"]);
    r.send("go");
    r.expect("attached");
    r.expect("done");
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let h = supervised(&rd, "lib", &[], &[&writer, &dir, "lib", "hold"]);
    h.expect("ready");
    assert_eq!(rd.liveness("lib", &["probe", "--ready"]).code, 0);
    // Negative control: a second supervisor is refused, naming the owner.
    let second = run(&rd, "lib", &[], &["true"]);
    assert_eq!(second.code, 123, "{second:?}");
    assert!(second.stderr.contains("owned by pid"), "{}", second.stderr);
}

/// The `exited` verdict (exit 12) never passes: every probe mode says how
/// the child ended, and `wait --gone` counts it as gone. Control: a
/// tombstone with `Born` only and no pid file is "no state" (3).
#[test]
fn exited_never_passes_and_is_gone() {
    let rd = Rundir::new();
    let c = child();
    assert_eq!(
        run(&rd, "x", &["--ready-on-start"], &[&c, "exit", "3"]).code,
        3
    );
    for mode in ["--live", "--ready", "--startup"] {
        let p = rd.liveness("x", &["probe", mode]);
        assert_eq!(p.code, 12, "{mode}: {p:?}");
        let line = p.stderr.trim_end();
        let rest = line
            .strip_prefix("liveness: unit x: exited: code 3 at ")
            .unwrap();
        assert_eq!(rest.len(), "2026-11-30T05:00:00.123Z".len(), "{line}");
    }
    let w = rd.liveness("x", &["wait", "--gone", "x", "--timeout", "10s"]);
    assert_eq!(w.code, 0, "{w:?}");
    rd.write(
        "y",
        "tombstone",
        b"Schema: 1\nBorn: \"2026-11-30T05:00:00.123Z\"\n",
    );
    assert_eq!(rd.liveness("y", &["probe"]).code, 3);
    rd.write(
        "z",
        "tombstone",
        b"Schema: 1\nDied: \"2026-11-30T05:00:00.123Z\"\n",
    );
    assert_eq!(rd.liveness("z", &["probe"]).code, 7, "corrupt tombstone");
}

/// Nothing the child started survives the supervisor: a background
/// grandchild is killed, with and without --process-group.
#[test]
fn never_leaves_an_orphan_running() {
    let rd = Rundir::new();
    for opts in [&[][..], &["--process-group"][..]] {
        let mut r = supervised(
            &rd,
            "job",
            opts,
            &["sh", "-c", "sleep 1000 & echo $!; exit 0"],
        );
        assert_eq!(r.code(), 0);
        let pid: i32 = r.lines().first().expect("pid line").parse().unwrap();
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z") && s.contains("(sleep)"))
        };
        assert!(
            wait_until(PATIENCE, || !alive()),
            "sleep {pid} survived {opts:?}"
        );
    }
}

/// Not PID 1, the supervisor is a child subreaper: an orphaned grandchild
/// is re-parented to it (not to PID 1), and killed when the child ends.
#[test]
fn orphans_are_reparented_to_the_supervisor() {
    let rd = Rundir::new();
    let mut r = supervised(
        &rd,
        "job",
        &[],
        &["sh", "-c", "(sleep 1000 & echo $!); read x"],
    );
    let pid: i32 = r.next_line().parse().unwrap();
    let ppid = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rfind(')')
            .and_then(|i| stat[i + 2..].split(' ').nth(1).map(str::to_owned))
    };
    let supervisor = r.pid().to_string();
    assert!(
        wait_until(PATIENCE, || ppid().as_deref() == Some(&*supervisor)),
        "sleep {pid} has parent {:?}, not {supervisor}",
        ppid()
    );
    r.send("");
    assert_eq!(r.code(), 0);
    assert!(
        wait_until(PATIENCE, || ppid().is_none()),
        "sleep {pid} survived"
    );
}

/// As PID 1 of a PID namespace whose /proc is the host's (no
/// --mount-proc), the supervisor neither hangs nor trusts the host's pids:
/// it exits with the child's status and leaves nothing running.
#[test]
fn pid_1_without_its_own_proc_leaves_nothing_running() {
    if !common::require_unshare(
        "pid_1_without_its_own_proc_leaves_nothing_running",
        &["--pid", "--fork"],
    ) {
        return;
    }
    let rd = Rundir::new();
    let marker = format!("sleep\0{}\0", 100_000 + std::process::id());
    let seconds = 100_000 + std::process::id();
    let out = Command::new("unshare")
        .args(["--pid", "--fork"])
        .arg(bin())
        .args(["run", "-u", "p", "-r"])
        .arg(rd.path())
        .args([
            "--",
            "sh",
            "-c",
            &format!("sleep {seconds} & kill -0 $! && echo started; exit 0"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, b"started\n", "the grandchild did run");
    let running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == marker.as_bytes()))
    };
    assert!(wait_until(PATIENCE, || !running()), "{marker} survived");
}

/// As PID 1 of a PID namespace, the supervisor reaps 1,000 orphaned
/// grandchildren: none stays a zombie. Negative control: the same child as
/// PID 1 itself (which reaps nothing) leaves zombies.
#[test]
fn reaps_zombies_as_pid_1() {
    if !common::require_unshare(
        "reaps_zombies_as_pid_1",
        &["--pid", "--fork", "--mount-proc"],
    ) {
        return;
    }
    let rd = Rundir::new();
    let c = child();
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(bin())
        .args(["run", "-u", "z", "-r"])
        .arg(rd.path())
        .args(["--", &c, "orphans", "1000", "20"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let why = common::describe(&out);
    assert!(text.contains("orphaned 1000"), "{why}");
    assert!(text.contains("zombies 0\n"), "{why}");
    assert_eq!(out.status.code(), Some(0), "{why}");

    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            &c,
            "orphans",
            "1000",
            "1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let zombies: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("zombies "))
        .unwrap_or_else(|| panic!("no zombie count: {}", common::describe(&out)))
        .parse()
        .unwrap();
    assert!(zombies > 0, "control without reaping: {text}");
}

/// Birth dependencies: the child does not start until the dependency is
/// ready; then it does.
#[test]
fn birth_dependency_gates_the_start() {
    let rd = Rundir::new();
    let c = child();
    let mut b = supervised(
        &rd,
        "b",
        &["--birth-deps", "a", "--birth-timeout", "1m"],
        &[&c],
    );
    // The supervisor has claimed b and waits: b is "starting", owned by it.
    let supervisor = b.pid().to_string();
    assert!(wait_until(PATIENCE, || rd.read("b", "pid")
        == Some(format!("{supervisor}\n").into_bytes())));
    assert_eq!(rd.liveness("b", &["probe", "--startup"]).code, 6);
    assert_eq!(b.count("ready"), 0, "started before its dependency");
    let mut a = supervised(&rd, "a", &["--ready-on-start"], &[&c]);
    a.expect("ready");
    b.expect("ready");
    b.signal(Signal::SIGTERM);
    assert_eq!(b.code(), 143);
    a.signal(Signal::SIGTERM);
    assert_eq!(a.code(), 143);
}

/// A birth dependency that never becomes ready: exit 124, one line naming
/// each missing unit, and the command never ran.
#[test]
fn birth_dependency_timeout() {
    let rd = Rundir::new();
    let marker = rd.path().join("ran");
    let script = format!("touch {}", marker.display());
    let r = run(
        &rd,
        "b",
        &["--birth-deps", "a,c", "--birth-timeout", "1s"],
        &["sh", "-c", &script],
    );
    assert_eq!(r.code, 124, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("a (") && r.stderr.contains("c ("),
        "{}",
        r.stderr
    );
    assert!(!marker.exists());
    // The child never started: its death is written down, without Born,
    // with the reason, so death dependents stop.
    let t = tombstone(&rd, "b");
    assert_eq!(field(&t, "Born: "), None, "{t}");
    assert_eq!(field(&t, "ExitCode: "), Some("124"), "{t}");
    assert!(
        field(&t, "Reason: ").is_some_and(|r| r.contains("birth dependencies not ready")),
        "{t}"
    );
    let p = rd.liveness("b", &["probe", "--startup"]);
    assert_eq!(p.code, 12, "state cleared, tombstone kept: {p:?}");
}

/// Death dependencies between three instances: when the main job exits,
/// both sidecars are stopped (TERM, mapped to 0); a tombstone written
/// before a watcher starts counts too.
#[test]
fn death_dependency_stops_sidecars() {
    let rd = Rundir::new();
    let c = child();
    let side = ["--death-deps", "main", "--exit-code-map", "143=0"];
    let mut main = supervised(&rd, "main", &[], &[&c]);
    main.expect("ready");
    let mut s1 = supervised(&rd, "s1", &side, &[&c]);
    let mut s2 = supervised(&rd, "s2", &side, &[&c]);
    s1.expect("ready");
    s2.expect("ready");
    main.send("exit 0");
    assert_eq!(main.code(), 0);
    s1.expect("TERM");
    s2.expect("TERM");
    assert_eq!(s1.code(), 0);
    assert_eq!(s2.code(), 0);
    assert_eq!(field(&tombstone(&rd, "s1"), "ExitCode: "), Some("143"));

    // The tombstone of main is already there when s3 starts: its child is
    // stopped at once (perhaps before it could print anything).
    let mut s3 = supervised(&rd, "s3", &side, &[&c]);
    assert_eq!(s3.code(), 0);
    assert_eq!(field(&tombstone(&rd, "s3"), "Signal: "), Some("SIGTERM"));
}

/// A dependency whose supervisor is SIGKILLed (no tombstone): its lock is
/// released, the owner is gone, and the dependent child is stopped.
#[test]
fn death_dependency_supervisor_sigkilled() {
    let rd = Rundir::new();
    let c = child();
    let a = supervised(&rd, "a", &[], &[&c]);
    a.expect("ready");
    let mut b = supervised(&rd, "b", &["--death-deps", "a"], &[&c]);
    b.expect("ready");
    assert_eq!(b.count("TERM"), 0);
    let a_child: u32 = String::from_utf8(rd.read("a", "pid").unwrap())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Only the supervisor: its child dies with it (PR_SET_PDEATHSIG).
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(a.pid()), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(PATIENCE, || !std::fs::read_to_string(format!(
            "/proc/{a_child}/stat"
        ))
        .is_ok_and(|s| s.contains("(signal_child)") && !s.contains(") Z"))),
        "the child of a SIGKILLed supervisor kept running"
    );
    b.expect("TERM");
    assert_eq!(b.code(), 143);
    let t = rd
        .read("a", "tombstone")
        .map(|t| String::from_utf8(t).unwrap());
    assert!(t.as_deref().is_some_and(|t| !t.contains("Died")), "{t:?}");
}

/// `terminate` signals the supervised child after verifying it, waits for
/// the supervisor to write the tombstone, and exits 0; 3 when there is no
/// unit; 8 when the owner ignores the signal past --timeout.
#[test]
fn terminate_waits_for_a_real_exit() {
    let rd = Rundir::new();
    let c = child();
    let mut r = supervised(&rd, "t", &[], &[&c]);
    r.expect("ready");
    let t = rd.liveness("t", &["terminate", "--timeout", "1m"]);
    assert_eq!(t.code, 0, "{t:?}");
    // No waiting here: terminate returned after the unit was released.
    assert_eq!(field(&tombstone(&rd, "t"), "Signal: "), Some("SIGTERM"));
    assert_eq!(r.code(), 143);
    assert_eq!(rd.liveness("t", &["terminate"]).code, 3);
    assert_eq!(rd.liveness("nothing", &["terminate"]).code, 3);

    let mut r = supervised(&rd, "t", &["--grace", "10m"], &[&c, "--ignore", "TERM"]);
    r.expect("ready");
    let t = rd.liveness("t", &["terminate", "--timeout", "1s"]);
    assert_eq!(t.code, 8, "{t:?}");
    assert!(t.stderr.contains("still running"), "{}", t.stderr);
    let t = rd.liveness("t", &["terminate", "--signal", "USR1", "--no-wait"]);
    assert_eq!(t.code, 0, "{t:?}");
    r.expect("USR1");
    assert_eq!(r.code(), 138);
}

/// `terminate` never signals a reused pid: a live process whose start time
/// differs from the recorded one is left alone (exit 4). Control: with the
/// right start time it is signalled and waited for.
#[test]
fn terminate_refuses_a_reused_pid() {
    let rd = Rundir::new();
    let mut victim = Tree::spawn(Command::new("sleep").arg("1000"));
    let pid = victim.pid();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let starttime: u64 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    rd.write("r", "pid", format!("{pid}\n").as_bytes());
    rd.write("r", "starttime", format!("{}\n", starttime + 1).as_bytes());
    let t = rd.liveness("r", &["terminate", "--timeout", "5s"]);
    assert_eq!(t.code, 4, "{t:?}");
    assert!(t.stderr.contains("reused"), "{}", t.stderr);
    assert!(
        victim.child.try_wait().unwrap().is_none(),
        "signalled anyway"
    );

    rd.write("r", "starttime", format!("{starttime}\n").as_bytes());
    let t = rd.liveness("r", &["terminate", "--timeout", "20s"]);
    assert_eq!(t.code, 0, "{t:?}");
    assert!(victim.wait_timeout(PATIENCE).is_some());
}

/// The termination log: unit, status and duration in one paragraph, cut at
/// 4096 bytes on a character boundary.
#[test]
fn termination_log_is_written_and_truncated() {
    let rd = Rundir::new();
    let log = rd.path().join("termination-log");
    let lv = bin().display().to_string();
    let script = format!("{lv} set 3 -m 'database unreachable'; exit 3");
    let r = run(
        &rd,
        "job",
        &["--termination-log", log.to_str().unwrap()],
        &["sh", "-c", &script],
    );
    assert_eq!(r.code, 3, "{r:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("unit job: sh -c "), "{text}");
    assert!(text.contains("exited with code 3"), "{text}");
    assert!(
        text.contains("last error 3: database unreachable"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");

    let long = "é".repeat(3000); // 6000 bytes of two-byte characters
    let r = run(
        &rd,
        "job",
        &["--termination-log", log.to_str().unwrap()],
        &["sh", "-c", "exit 0", &long],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let bytes = std::fs::read(&log).unwrap();
    assert!(
        bytes.len() <= 4096 && bytes.len() >= 4090,
        "{}",
        bytes.len()
    );
    assert!(std::str::from_utf8(&bytes).is_ok());
}

/// `wait` returns 0 once every unit reaches the state, and 8 with a line
/// naming the units still waiting otherwise.
#[test]
fn wait_for_ready_gone_and_tombstone() {
    let rd = Rundir::new();
    let c = child();
    let w = rd.liveness("x", &["wait", "--ready", "a", "b", "--timeout", "1s"]);
    assert_eq!(w.code, 8, "{w:?}");
    assert!(
        w.stderr.contains("a (") && w.stderr.contains("b ("),
        "{}",
        w.stderr
    );
    assert_eq!(rd.liveness("x", &["wait", "--gone", "a"]).code, 0);

    let waiter = spawn({
        let mut c = rd.command("x", bin(), &["wait", "--tombstone", "a", "--timeout", "1m"]);
        c.env_remove("LIVENESS_UNIT_NAME");
        c
    });
    let mut a = supervised(&rd, "a", &["--ready-on-start"], &[&c]);
    a.expect("ready");
    assert_eq!(rd.liveness("x", &["wait", "--ready", "a"]).code, 0);
    let w = rd.liveness("x", &["wait", "--gone", "a", "--timeout", "1s"]);
    assert_eq!(w.code, 8, "{w:?}");
    a.send("exit 0");
    assert_eq!(a.code(), 0);
    let mut waiter = waiter;
    assert_eq!(waiter.code(), 0, "{}", waiter.stderr());
    assert_eq!(rd.liveness("x", &["wait", "--gone", "a"]).code, 0);
}

/// kubexit's variables name the unit, the graveyard (the unit directory
/// goes in `<graveyard>/.liveness`, kubexit's tombstone file is
/// `<graveyard>/<name>`), the grace and the death dependencies.
#[test]
fn kubexit_environment_aliases() {
    let rd = Rundir::new();
    let c = child();
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--", &c, "--ignore", "TERM"])
        .env_remove("LIVENESS_RUNDIR")
        .env_remove("LIVENESS_UNIT_NAME")
        .env("KUBEXIT_NAME", "kx")
        .env("KUBEXIT_GRAVEYARD", rd.path())
        .env("KUBEXIT_GRACE_PERIOD", "1s");
    let mut r = spawn(cmd);
    r.expect("ready");
    r.signal(Signal::SIGTERM);
    r.expect("TERM");
    assert_eq!(r.code(), 137);
    let ours = std::fs::read_to_string(rd.path().join(".liveness/kx/tombstone")).unwrap();
    assert_eq!(field(&ours, "Signal: "), Some("SIGKILL"));
    let theirs = std::fs::read_to_string(rd.path().join("kx")).unwrap();
    assert_eq!(theirs, ours, "kubexit's file mirrors ours");

    let mut cmd = Command::new(bin());
    cmd.args(["run", "--", &c])
        .env_remove("LIVENESS_RUNDIR")
        .env_remove("LIVENESS_UNIT_NAME")
        .env("KUBEXIT_NAME", "k2")
        .env("KUBEXIT_GRAVEYARD", rd.path())
        .env("KUBEXIT_DEATH_DEPS", "kx");
    let mut r = spawn(cmd);
    assert_eq!(r.code(), 143);
}

/// Usage errors of `run` exit 125 (the supervisor's own failure), not a
/// code a child could have returned for the same reason.
#[test]
fn run_usage_errors_are_125() {
    let rd = Rundir::new();
    for args in [
        &["run"][..],
        &["run", "--grace", "soon", "--", "true"],
        &["run", "--exit-code-map", "143", "--", "true"],
    ] {
        let r = rd.liveness("job", args);
        assert_eq!(r.code, 125, "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
}
