//! `liveness run` handles signals as tini does. Each row of the matrix
//! starts a supervisor around a child that traps every signal
//! (`examples/signal_child.rs trap-all`), sends one signal to the
//! supervisor, then SIGRTMAX as an end marker, and reads what the child
//! got. The same matrix runs against Debian's `tini` in the same test, and
//! the rows must agree; a shell that forwards nothing is the negative
//! control that proves a row can fail.
//!
//! No row waits for something *not* to happen: SIGRTMAX is forwarded after
//! every lower signal (both supervisors read pending signals lowest number
//! first), so when the child prints `sync` every forwarded signal is in
//! its log. A supervisor that was killed or stopped instead is seen in
//! `/proc`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::{PATIENCE, Proc, Rundir, bin, example, have, is_root, require, wait_until};
use nix::libc;

/// What became of one signal sent to the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The child got it.
    Forwarded,
    /// The supervisor took it and the child did not get it.
    NotForwarded,
    /// The supervisor died (of this signal: its number).
    SupervisorKilled(i32),
    /// The supervisor was stopped.
    SupervisorStopped,
    /// Neither the end marker nor a dead or stopped supervisor: the row
    /// cannot be read.
    NoAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Liveness,
    Tini,
    /// `sh -c 'CHILD; :'`: forwards nothing (the negative control).
    Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Not PID 1: `liveness run` is a child subreaper, tini runs with -s.
    Subreaper,
    /// PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`).
    Pid1,
}

/// Every signal of the issue's table, by name and number.
fn table() -> Vec<(String, i32)> {
    let rt = libc::SIGRTMIN();
    let mut rows: Vec<(String, i32)> = [
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("USR1", libc::SIGUSR1),
        ("USR2", libc::SIGUSR2),
        ("WINCH", libc::SIGWINCH),
        ("TERM", libc::SIGTERM),
        ("ALRM", libc::SIGALRM),
        ("PWR", libc::SIGPWR),
        ("VTALRM", libc::SIGVTALRM),
        ("XCPU", libc::SIGXCPU),
        ("XFSZ", libc::SIGXFSZ),
        ("PROF", libc::SIGPROF),
        ("STKFLT", libc::SIGSTKFLT),
        ("URG", libc::SIGURG),
        ("CONT", libc::SIGCONT),
        ("PIPE", libc::SIGPIPE),
        ("TSTP", libc::SIGTSTP),
        ("TTIN", libc::SIGTTIN),
        ("TTOU", libc::SIGTTOU),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_owned(), s))
    .collect();
    rows.push(("RTMIN".into(), rt));
    rows.push(("RTMIN+3".into(), rt + 3));
    rows.push(("RTMAX-1".into(), libc::SIGRTMAX() - 1));
    rows
}

/// The command line of a supervisor around `child_argv`.
fn supervisor(
    tool: Tool,
    place: Place,
    rd: &Rundir,
    group: bool,
    child_argv: &[String],
) -> Command {
    let mut argv: Vec<String> = Vec::new();
    if place == Place::Pid1 {
        argv.extend(["unshare", "--pid", "--fork", "--mount-proc"].map(String::from));
    }
    match tool {
        Tool::Liveness => {
            argv.push(bin().display().to_string());
            argv.extend(["run", "-u", "sig", "-r"].map(String::from));
            argv.push(rd.path().display().to_string());
            if group {
                argv.push("--process-group".into());
            }
            argv.push("--".into());
            argv.extend(child_argv.iter().cloned());
        }
        Tool::Tini => {
            argv.push("tini".into());
            if place == Place::Subreaper {
                argv.push("-s".into());
            }
            if group {
                argv.push("-g".into());
            }
            argv.push("--".into());
            argv.extend(child_argv.iter().cloned());
        }
        Tool::Shell => {
            argv.extend(["sh", "-c", "\"$@\"; :", "sh"].map(String::from));
            argv.extend(child_argv.iter().cloned());
        }
    }
    let mut c = rd.command("sig", &argv[0], &argv[1..]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    c
}

/// A supervisor in progress and its child's lines.
struct Session {
    proc: Proc,
    /// The supervisor's pid (the child of `unshare` for PID 1).
    sup: i32,
}

fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// `pid` and every process below it.
fn tree_of(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let kids = children_of(all[i]);
        all.extend(kids);
        i += 1;
    }
    all
}

/// The state letter of `/proc/<pid>/stat`; `None` when it is gone.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

impl Session {
    fn start(mut cmd: Command, place: Place, children: usize) -> Session {
        let proc = Proc::spawn(&mut cmd);
        let leader = proc.pid();
        let mut s = Session { sup: leader, proc };
        s.proc.expect_n("ready", children);
        if place == Place::Pid1 {
            let mut sup = None;
            assert!(wait_until(PATIENCE, || {
                sup = children_of(leader).first().copied();
                sup.is_some()
            }));
            s.sup = sup.unwrap();
        }
        s
    }

    fn lines(&self) -> Vec<String> {
        self.proc.lines()
    }

    fn count(&self, line: &str) -> usize {
        self.proc.count(line)
    }

    /// Sends `sig`, then the end marker, and reads what happened.
    fn fate(&mut self, sig: i32, children: usize) -> Fate {
        let send = |s: i32| {
            // SAFETY: kill(2) with two integers.
            unsafe { libc::kill(self.sup, s) };
        };
        send(sig);
        send(libc::SIGRTMAX());
        let answered = wait_until(PATIENCE, || {
            if self.count("sync") >= children {
                return true;
            }
            matches!(state(self.sup), None | Some('Z' | 'X' | 'T' | 't'))
        });
        if self.count("sync") >= children {
            let got = self.count(&format!("got {sig}"));
            return if got >= children {
                Fate::Forwarded
            } else {
                Fate::NotForwarded
            };
        }
        if !answered {
            return Fate::NoAnswer;
        }
        if let Some('T' | 't') = state(self.sup) {
            return Fate::SupervisorStopped;
        }
        // Dead: the status is the tree leader's (unshare mirrors its
        // child's death by signal).
        use std::os::unix::process::ExitStatusExt;
        let dead = self
            .proc
            .tree
            .wait_timeout(PATIENCE)
            .and_then(|st| st.signal().or(st.code().map(|c| c - 128)));
        Fate::SupervisorKilled(dead.unwrap_or(0))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // The child may be in a process group of its own (--process-group,
        // tini -g), and traps everything but SIGKILL.
        for p in tree_of(self.proc.pid()).into_iter().rev() {
            // SAFETY: kill(2) with two integers.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
}

fn trap_all() -> Vec<String> {
    vec![
        example("signal_child").display().to_string(),
        "trap-all".into(),
    ]
}

/// Each signal of the table, sent to `tool` at `place`: one fresh
/// supervisor per row, so a row that kills it does not spoil the next.
fn matrix(tool: Tool, place: Place) -> Vec<(String, Fate)> {
    table()
        .into_iter()
        .map(|(name, sig)| {
            let rd = Rundir::new();
            let mut s = Session::start(supervisor(tool, place, &rd, false, &trap_all()), place, 1);
            (name, s.fate(sig, 1))
        })
        .collect()
}

/// What tini does, and therefore what `liveness run` must do.
fn expected(name: &str, place: Place) -> Fate {
    let _ = place; // the same as PID 1 and as a subreaper
    match name {
        "TTIN" | "TTOU" => Fate::NotForwarded,
        _ => Fate::Forwarded,
    }
}

fn prerequisites(test: &str) -> bool {
    require(is_root() && have("unshare"), test, "root and unshare")
        && require(have("tini"), test, "tini (apt-get install tini)")
}

/// The signal matrix, as a child subreaper and as PID 1: every catchable
/// signal but the fault signals and SIGCHLD reaches the child (real-time
/// ones, TSTP, CONT, URG, PIPE included), TTIN and TTOU are ignored, and
/// none kills or stops the supervisor — row for row what tini 0.19 does in
/// the same run.
#[test]
fn signal_matrix_agrees_with_tini() {
    if !prerequisites("signal_matrix_agrees_with_tini") {
        return;
    }
    let mut report = String::new();
    let mut wrong = Vec::new();
    for place in [Place::Subreaper, Place::Pid1] {
        let ours = matrix(Tool::Liveness, place);
        let tini = matrix(Tool::Tini, place);
        for ((name, o), (_, t)) in ours.iter().zip(&tini) {
            report.push_str(&format!(
                "{place:?} {name:>8}: liveness {o:?}, tini {t:?}\n"
            ));
            if *o != *t || *o != expected(name, place) {
                wrong.push(format!("{place:?} {name}: liveness {o:?}, tini {t:?}"));
            }
        }
    }
    eprintln!("{report}");
    assert!(
        wrong.is_empty(),
        "rows that disagree:\n{}",
        wrong.join("\n")
    );
}

/// Negative control: a supervisor that forwards nothing (`sh -c 'CHILD;
/// :'`) fails the same rows: a terminating signal kills it, TSTP stops it,
/// and no row reads "forwarded".
#[test]
fn signal_matrix_negative_control() {
    if !require(have("sh"), "signal_matrix_negative_control", "sh") {
        return;
    }
    let rows = matrix(Tool::Shell, Place::Subreaper);
    let fate = |n: &str| rows.iter().find(|(name, _)| name == n).unwrap().1;
    assert!(rows.iter().all(|(_, f)| *f != Fate::Forwarded), "{rows:?}");
    assert_eq!(
        fate("HUP"),
        Fate::SupervisorKilled(libc::SIGHUP),
        "{rows:?}"
    );
    assert_eq!(
        fate("RTMIN+3"),
        Fate::SupervisorKilled(libc::SIGRTMIN() + 3)
    );
    assert_eq!(fate("TSTP"), Fate::SupervisorStopped, "{rows:?}");
}

/// With --process-group (tini -g) a forwarded signal reaches every
/// process of the child's group: two trap-all processes both get it.
#[test]
fn process_group_gets_every_signal() {
    if !prerequisites("process_group_gets_every_signal") {
        return;
    }
    let c = trap_all().join(" ");
    let two = vec!["sh".into(), "-c".into(), format!("{c} & exec {c}")];
    for tool in [Tool::Liveness, Tool::Tini] {
        for (name, sig) in [
            ("USR1", libc::SIGUSR1),
            ("TSTP", libc::SIGTSTP),
            ("RTMIN+3", libc::SIGRTMIN() + 3),
        ] {
            let rd = Rundir::new();
            let cmd = supervisor(tool, Place::Subreaper, &rd, true, &two);
            let mut s = Session::start(cmd, Place::Subreaper, 2);
            assert_eq!(
                s.fate(sig, 2),
                Fate::Forwarded,
                "{tool:?} {name}: {:?}",
                s.lines()
            );
        }
    }
}

/// `inherited blocked=HEX ignored=HEX` without signals 32 and 33, which
/// glibc reserves for itself (its `posix_spawn` marks them ignored in the
/// children it starts, and no program may use them).
fn without_glibc_internal(line: &str) -> String {
    let internal = !(0b11u64 << 31);
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .map(|v| v & internal)
    };
    match (field("blocked="), field("ignored=")) {
        (Some(b), Some(i)) => format!("inherited blocked={b:016x} ignored={i:016x}"),
        _ => line.to_owned(),
    }
}

/// The child inherits the supervisor's blocked mask and ignored signals as
/// they were when it started (SIGPIPE included, which Rust's runtime
/// ignores before `main`), as under tini and as when started directly.
/// Control: started without them, the child's mask and ignored set are
/// empty, so the comparison can fail.
#[test]
fn child_inherits_mask_and_ignored_signals() {
    if !require(
        have("tini"),
        "child_inherits_mask_and_ignored_signals",
        "tini",
    ) {
        return;
    }
    let inherited = |tool: Option<Tool>, set_up: bool| -> String {
        let rd = Rundir::new();
        let mut cmd = match tool {
            Some(t) => supervisor(t, Place::Subreaper, &rd, false, &trap_all()),
            None => {
                let mut c = Command::new(&trap_all()[0]);
                c.arg("trap-all").stdout(Stdio::piped());
                c
            }
        };
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls on local structures. Every
        // disposition is set, so what the test process inherited does not
        // leak into the comparison.
        unsafe {
            cmd.pre_exec(move || {
                for sig in 1..=libc::SIGRTMAX() {
                    // glibc refuses its two internal signals (32, 33),
                    // and KILL and STOP cannot be changed: EINVAL, fine.
                    libc::signal(sig, libc::SIG_DFL);
                }
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                if set_up {
                    libc::sigaddset(&mut set, libc::SIGUSR2);
                    libc::sigaddset(&mut set, libc::SIGRTMIN() + 5);
                    libc::signal(libc::SIGHUP, libc::SIG_IGN);
                    libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                }
                libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        let s = Session::start(cmd, Place::Subreaper, 1);
        let line = s
            .lines()
            .into_iter()
            .find(|l| l.starts_with("inherited "))
            .unwrap();
        without_glibc_internal(&line)
    };
    for set_up in [true, false] {
        let direct = inherited(None, set_up);
        let ours = inherited(Some(Tool::Liveness), set_up);
        let tini = inherited(Some(Tool::Tini), set_up);
        assert_eq!(ours, direct, "set up: {set_up}");
        assert_eq!(tini, direct, "set up: {set_up}");
    }
    // usr2 = bit 11, RTMIN+5 = bit 38; HUP = bit 0, PIPE = bit 12.
    let blocked = (1u64 << (libc::SIGUSR2 - 1)) | (1u64 << (libc::SIGRTMIN() + 5 - 1));
    let ignored = (1u64 << (libc::SIGHUP - 1)) | (1u64 << (libc::SIGPIPE - 1));
    assert_eq!(
        inherited(Some(Tool::Liveness), true),
        format!("inherited blocked={blocked:016x} ignored={ignored:016x}")
    );
    assert_eq!(
        inherited(Some(Tool::Liveness), false),
        format!("inherited blocked={:016x} ignored={:016x}", 0, 0)
    );
}
