//! Full pipes: a reader that never drains `liveness`'s stdout or stderr
//! must not keep a command from ending. Each command runs with its stdout,
//! its stderr, or both on a pipe (or socket) already full, under a time
//! limit that kills the whole process tree and reports a hang as a failure.
//!
//! The rule (src/bin/liveness/deadline.rs): a command with a deadline ends
//! by it (exit 8) however stuck its output is; a line on stderr never waits
//! for its reader (when there is no room it is dropped, and the exit code still
//! tells); bulk output on stdout waits, within the deadline when there is
//! one. `status` has no deadline and waits on a full stdout, as any Unix
//! tool does: it is the negative control, which shows that the pipes are
//! really full and that the harness sees a hang.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::common::{self, Rundir, Tree};

/// A second, non-blocking description of what `fd` names (a pipe, a
/// terminal), through `/proc/self/fd`: writes through it never wait, and
/// `fd` itself stays blocking.
fn nonblocking_twin(fd: &OwnedFd) -> OwnedFd {
    nix::fcntl::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap()
}

/// A pipe whose buffer is full: the test keeps the read end open and never
/// reads, so a blocking write to the other end waits forever.
struct FullPipe {
    _read: OwnedFd,
    write: OwnedFd,
}

impl FullPipe {
    fn new() -> FullPipe {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        // Filled through a description of its own, non-blocking, so the end
        // handed to the command stays blocking.
        let filler = nonblocking_twin(&write);
        fill(|bytes| nix::unistd::write(&filler, bytes));
        let capacity = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_GETPIPE_SZ).unwrap();
        assert_eq!(unread(&read), capacity, "the pipe is full");
        FullPipe { _read: read, write }
    }
}

/// A connected stream socket whose send buffer is full (the peer never
/// reads).
struct FullSocket {
    _peer: OwnedFd,
    write: OwnedFd,
}

impl FullSocket {
    fn new() -> FullSocket {
        use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socketpair};
        let (write, peer) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        fill(|bytes| send(write.as_raw_fd(), bytes, MsgFlags::MSG_DONTWAIT));
        FullSocket { _peer: peer, write }
    }
}

/// A terminal whose output nobody reads: the slave side of a pseudo-
/// terminal whose master is kept open and never read. Filled until a
/// non-blocking write is refused, then a thread of the test blocks in a
/// write to it (a terminal lets a blocking writer in where it refused a
/// non-blocking one): every later writer waits behind that one.
struct FullTerminal {
    // Dropped first: the blocked writer then fails with EIO and ends.
    _master: OwnedFd,
    slave: OwnedFd,
}

impl FullTerminal {
    fn new() -> FullTerminal {
        use nix::libc;
        use std::os::fd::FromRawFd;
        // SAFETY: posix_openpt returns a new descriptor or -1.
        let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        assert!(m >= 0, "posix_openpt");
        // SAFETY: the kernel just gave us this descriptor.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        let mut name = [0u8; 64];
        // SAFETY: grantpt and unlockpt take the master descriptor; ptsname_r
        // writes a NUL-terminated name into the buffer of the length given.
        unsafe {
            assert_eq!(libc::grantpt(m), 0, "grantpt");
            assert_eq!(libc::unlockpt(m), 0, "unlockpt");
            assert_eq!(libc::ptsname_r(m, name.as_mut_ptr().cast(), name.len()), 0);
        }
        let name = std::ffi::CStr::from_bytes_until_nul(&name).unwrap();
        let slave = nix::fcntl::open(
            name,
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let filler = nonblocking_twin(&slave);
        fill(|bytes| nix::unistd::write(&filler, bytes));
        let blocker = slave.try_clone().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(nix::unistd::gettid());
            let _ = nix::unistd::write(&blocker, &[b'x'; 1 << 20]);
        });
        let tid = rx.recv().unwrap();
        // Blocked in write(2), system call 1 on x86_64, 64 on aarch64.
        let write_nr = nix::libc::SYS_write.to_string();
        assert!(
            common::wait_until(common::PATIENCE, || {
                std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
                    .is_ok_and(|s| s.split(' ').next() == Some(write_nr.as_str()))
            }),
            "the blocking writer never blocked"
        );
        FullTerminal {
            _master: master,
            slave,
        }
    }
}

/// Writes through `write` until it would block: whole pages, then single
/// bytes.
fn fill(write: impl Fn(&[u8]) -> nix::Result<usize>) {
    for chunk in [4096, 1] {
        loop {
            match write(&vec![b'x'; chunk]) {
                Ok(_) => {}
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
    }
}

/// Bytes waiting in a pipe (`FIONREAD`).
fn unread(fd: &OwnedFd) -> i32 {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which is valid.
    let r = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    assert_eq!(r, 0, "FIONREAD");
    n
}

/// Which of the command's outputs nobody reads.
#[derive(Debug, Clone, Copy)]
enum Stuck {
    /// stdout a full pipe; stderr read.
    Stdout,
    /// stderr a full pipe; stdout read.
    Stderr,
    /// stdout and stderr two full pipes.
    Both,
    /// stdout and stderr one full pipe (`>pipe 2>&1`).
    Shared,
    /// stdout and stderr one full stream socket (as a log collector may
    /// give).
    Socket,
    /// stdout and stderr a terminal whose output nobody reads.
    Terminal,
}

const STUCK: [Stuck; 6] = [
    Stuck::Stdout,
    Stuck::Stderr,
    Stuck::Both,
    Stuck::Shared,
    Stuck::Socket,
    Stuck::Terminal,
];

/// What a case must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// End with this exit code.
    Code(i32),
    /// Never end (no deadline, bulk output waiting for its reader).
    Hang,
}
use Expect::{Code, Hang};

struct Case {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// Outcome with stdout full, with stderr full, with both full (pipes,
    /// a socket or a terminal, shared or not).
    expect: [Expect; 3],
    /// What stderr says when only stdout is stuck (stderr is read then).
    stderr_has: &'static str,
}

const fn case(
    name: &'static str,
    args: &'static [&'static str],
    expect: [Expect; 3],
    stderr_has: &'static str,
) -> Case {
    Case {
        name,
        args,
        env: &[],
        expect,
        stderr_has,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "probe, healthy: writes nothing",
            &["probe", "-u", "ok", "--timeout", "200"],
            [Code(0); 3],
            "",
        ),
        case(
            "probe, no state: its line is dropped, the verdict stands",
            &["probe", "-u", "gone", "--timeout", "200"],
            [Code(3); 3],
            "liveness: unit gone: no state",
        ),
        case(
            "probe -v, healthy",
            &["probe", "-v", "-u", "ok", "--timeout", "200"],
            [Code(0); 3],
            "liveness: unit ok: ok",
        ),
        case(
            "probe --json, healthy: stdout waits until the deadline",
            &["probe", "--json", "-u", "ok", "--timeout", "200"],
            [Code(8), Code(0), Code(8)],
            "liveness: unit ok: probe timed out after 200 ms",
        ),
        case(
            "probe --json, no state",
            &["probe", "--json", "-u", "gone", "--timeout", "200"],
            [Code(8), Code(3), Code(8)],
            "liveness: unit gone: probe timed out after 200 ms",
        ),
        case(
            "wait --ready, never ready: its timeout line is dropped",
            &["wait", "--ready", "gone", "--timeout", "300ms"],
            [Code(8); 3],
            "liveness: wait: timed out after 0.3 s: still waiting for gone",
        ),
        case(
            "wait --gone, gone at once",
            &["wait", "--gone", "gone", "--timeout", "300ms"],
            [Code(0); 3],
            "",
        ),
        case(
            "terminate, the owner ignores SIGTERM",
            &["terminate", "-u", "stubborn", "--timeout", "300ms"],
            [Code(8); 3],
            "liveness: unit stubborn: pid ",
        ),
        case(
            "run, a birth dependency never ready",
            &[
                "run",
                "-u",
                "child",
                "--birth-deps",
                "gone",
                "--birth-timeout",
                "300ms",
                "--",
                "true",
            ],
            [Code(124); 3],
            "birth dependencies not ready",
        ),
        Case {
            env: &[("LIVENESS_LOG", "info")],
            ..case(
                "run with its log on: log lines never wait",
                &["run", "-u", "logged", "--", "true"],
                [Code(0); 3],
                "liveness: info: unit logged: started pid",
            )
        },
        case(
            "set on a unit never loaded: the error line is dropped",
            &["set", "3", "-u", "gone"],
            [Code(3); 3],
            "liveness: unit gone",
        ),
        // The negative control.
        case(
            "status: no deadline, its table waits for the reader",
            &["status"],
            [Hang, Code(0), Hang],
            "",
        ),
    ]
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Code(i32),
    /// Still running at the time limit; the whole tree was killed.
    Hung,
}

/// Runs `liveness ARGS` with the outputs `stuck` names full, the others
/// read, under a time limit.
fn run(rd: &Rundir, c: &Case, stuck: Stuck, limit: Duration) -> (Outcome, String) {
    let mut cmd = rd.command("ok", common::bin(), c.args);
    cmd.envs(c.env.iter().copied());
    // Kept alive until the command has ended or been killed.
    let (mut _pipes, mut _socket, mut _terminal) = (Vec::new(), None, None);
    let mut full = || {
        let p = FullPipe::new();
        let fd = p.write.try_clone().unwrap();
        _pipes.push(p);
        Stdio::from(fd)
    };
    match stuck {
        Stuck::Stdout => {
            cmd.stdout(full()).stderr(Stdio::piped());
        }
        Stuck::Stderr => {
            cmd.stdout(Stdio::piped()).stderr(full());
        }
        Stuck::Both => {
            cmd.stdout(full()).stderr(full());
        }
        Stuck::Shared => {
            let p = FullPipe::new();
            cmd.stdout(Stdio::from(p.write.try_clone().unwrap()))
                .stderr(Stdio::from(p.write.try_clone().unwrap()));
            _pipes.push(p);
        }
        Stuck::Socket => {
            let s = FullSocket::new();
            cmd.stdout(Stdio::from(s.write.try_clone().unwrap()))
                .stderr(Stdio::from(s.write.try_clone().unwrap()));
            _socket = Some(s);
        }
        Stuck::Terminal => {
            let t = FullTerminal::new();
            cmd.stdout(Stdio::from(t.slave.try_clone().unwrap()))
                .stderr(Stdio::from(t.slave.try_clone().unwrap()));
            _terminal = Some(t);
        }
    }
    let mut tree = Tree::spawn(&mut cmd);
    drop(cmd); // our copies of the full ends
    let outcome = match tree.wait_timeout(limit) {
        Some(st) => Outcome::Code(
            common::Ran::from(std::process::Output {
                status: st,
                stdout: Vec::new(),
                stderr: Vec::new(),
            })
            .code,
        ),
        None => Outcome::Hung,
    };
    let mut stderr = String::new();
    if outcome != Outcome::Hung
        && let Some(mut e) = tree.child.stderr.take()
    {
        let _ = e.read_to_string(&mut stderr);
    }
    if let Some(mut o) = tree.child.stdout.take()
        && outcome != Outcome::Hung
    {
        let _ = o.read_to_end(&mut Vec::new());
    }
    (outcome, stderr)
}

/// A process that ignores SIGTERM, registered as unit `stubborn`'s owner.
fn stubborn_owner(rd: &Rundir) -> Tree {
    let tree = Tree::spawn(
        Command::new("sh")
            .args(["-c", "trap '' TERM; exec sleep 600"])
            .stdin(Stdio::null()),
    );
    let pid = tree.pid();
    // After the exec, the trap is set (an ignored signal stays ignored).
    assert!(
        common::wait_until(common::PATIENCE, || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
        }),
        "the stubborn owner never started"
    );
    let r = rd.liveness("stubborn", &["load", "--pid", &pid.to_string()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    tree
}

/// Every command ends with its documented exit code whatever stdout and
/// stderr readers do: stuck stdout, stuck stderr, both, one shared pipe, a
/// full socket, a terminal nobody reads; and `status`, which has no
/// deadline, is seen to hang on a full stdout (the negative control).
#[test]
fn commands_end_whatever_their_readers_do() {
    let rd = Rundir::new();
    let me = std::process::id().to_string();
    for args in [&["load", "--pid", &me][..], &["set", "0"], &["ready"]] {
        let r = rd.liveness("ok", args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
    let _owner = stubborn_owner(&rd);
    let mut failures = Vec::new();
    let mut runs = 0;
    for c in cases() {
        for stuck in STUCK {
            let expect = c.expect[match stuck {
                Stuck::Stdout => 0,
                Stuck::Stderr => 1,
                _ => 2,
            }];
            // A case that must hang is given a short limit: it can never
            // end, however long it is given.
            let limit = match expect {
                Hang => Duration::from_secs(2),
                Code(_) => common::PATIENCE,
            };
            let (outcome, stderr) = run(&rd, &c, stuck, limit);
            runs += 1;
            let ok = match (expect, &outcome) {
                (Hang, Outcome::Hung) => true,
                (Code(want), Outcome::Code(got)) => want == *got,
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{} ({stuck:?} full): expected {expect:?}, got {outcome:?}",
                    c.name
                ));
            } else if matches!(stuck, Stuck::Stdout) && !stderr.contains(c.stderr_has) {
                failures.push(format!(
                    "{} (stdout full): stderr {stderr:?} lacks {:?}",
                    c.name, c.stderr_has
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A full stderr does not keep a deadline from firing: the probe stalls
/// (a test seam of debug builds) and ends with exit 8 at its deadline, its
/// line dropped.
#[cfg(debug_assertions)]
#[test]
fn the_deadline_fires_with_stderr_full() {
    let rd = Rundir::new();
    for stuck in [Stuck::Stderr, Stuck::Shared, Stuck::Socket, Stuck::Terminal] {
        let c = Case {
            env: &[("LIVENESS_TEST_STALL_MS", "600000")],
            ..case(
                "stalled probe",
                &["probe", "--timeout", "100"],
                [Code(8); 3],
                "",
            )
        };
        let (outcome, _) = run(&rd, &c, stuck, common::PATIENCE);
        assert_eq!(outcome, Outcome::Code(8), "{stuck:?}");
    }
}

/// The full pipe really is full: a write to it would wait. (Guards the
/// harness itself.)
#[test]
fn a_full_pipe_refuses_one_more_byte() {
    let p = FullPipe::new();
    let probe = nonblocking_twin(&p.write);
    assert_eq!(nix::unistd::write(&probe, b"x"), Err(Errno::EAGAIN));
    let s = FullSocket::new();
    assert_eq!(
        nix::sys::socket::send(
            s.write.as_fd().as_raw_fd(),
            b"x",
            nix::sys::socket::MsgFlags::MSG_DONTWAIT
        ),
        Err(Errno::EAGAIN)
    );
}

/// A probe running as another user than the one who made its stderr pipe
/// (the kubelet's runtime is root, the container is not) still writes its
/// line when there is room, and does not wait when there is none.
#[test]
fn lines_reach_another_users_pipe_and_never_wait() {
    let test = "lines_reach_another_users_pipe_and_never_wait";
    if !common::require(
        common::is_root() && common::have("setpriv"),
        test,
        "root and setpriv",
    ) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let rd = Rundir::new();
    std::fs::set_permissions(rd.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = || {
        let mut cmd = rd.command(
            "gone",
            "setpriv",
            &["--reuid=65534", "--regid=65534", "--clear-groups", "--"],
        );
        cmd.arg(common::bin()).args(["probe", "--timeout", "200"]);
        cmd
    };
    // Room: the line arrives.
    let r: common::Ran = as_nobody().output().unwrap().into();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("liveness: unit gone: no state"),
        "{:?}",
        r.stderr
    );
    // No room: the verdict, at once.
    let full = FullPipe::new();
    let mut cmd = as_nobody();
    cmd.stdout(Stdio::null())
        .stderr(Stdio::from(full.write.try_clone().unwrap()));
    let mut tree = Tree::spawn(&mut cmd);
    drop(cmd);
    let st = tree.wait_timeout(common::PATIENCE).expect("hung");
    assert_eq!(st.code(), Some(3));
}

/// A reader that has gone (the read end closed): a write fails with
/// `EPIPE` instead of killing `liveness` with SIGPIPE. `status`, whose
/// output is its result, says so in one line and exits 11; the probe's
/// verdict is its exit code, which the lost `--json` does not change; a
/// lost stderr line changes no exit code.
#[test]
fn a_reader_that_went_away() {
    let rd = Rundir::new();
    let me = std::process::id().to_string();
    for args in [&["load", "--pid", &me][..], &["set", "0"]] {
        assert_eq!(rd.liveness("ok", args).code, 0);
    }
    let closed = || {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        drop(r);
        Stdio::from(w)
    };
    for (args, stdout_closed, want, line) in [
        (&["status"][..], true, 11, "liveness: stdout: Broken pipe\n"),
        (&["probe", "--json", "-u", "ok"], true, 0, ""),
        (&["probe", "--json", "-u", "gone"], true, 3, "no state"),
        (&["probe", "-u", "gone"], false, 3, ""),
    ] {
        let mut cmd = rd.command("ok", common::bin(), args);
        if stdout_closed {
            cmd.stdout(closed()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped()).stderr(closed());
        }
        let out = cmd.output().unwrap();
        let r: common::Ran = out.into();
        assert_eq!(r.code, want, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(line), "{args:?}: {:?}", r.stderr);
        assert_eq!(
            r.stderr.lines().count(),
            usize::from(!line.is_empty()),
            "{args:?}: {:?}",
            r.stderr
        );
    }
}
