//! A child for the supervisor's tests (in the style of dumb-init's and
//! tini's): it reports what happens to it on stdout, one line at a time.
//!
//! ```text
//! signal_child [--ignore SIG]... print "ready", then the name of every signal
//!                                it gets (TERM, INT, HUP, QUIT, USR1, USR2,
//!                                WINCH); each then kills it (default action,
//!                                WINCH excepted) unless named with --ignore;
//!                                a line "exit N" on stdin exits with N
//! signal_child exit N            print "ready", exit with N
//! signal_child trap-all          print "inherited blocked=HEX ignored=HEX" (its
//!                                SigBlk and SigIgn as exec'd), then "ready"; then
//!                                "got N" for every signal N it gets (all are
//!                                trapped), except SIGRTMAX, the end of a test
//!                                row: it then prints "got N" for every signal
//!                                still pending, and "sync"
//! signal_child orphans N SECS    fork a process that forks N children and exits
//!                                at once (they are orphaned, then exit); print
//!                                "orphaned N", then count zombies in /proc until
//!                                there are none or SECS pass; print "zombies Z"
//! ```

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("exit") => {
            say("ready");
            std::process::exit(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(0));
        }
        Some("trap-all") => trap_all(),
        Some("orphans") => {
            let n: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
            let secs: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(20);
            orphans(n, Duration::from_secs(secs));
        }
        _ => {
            let ignored: Vec<String> = args
                .windows(2)
                .filter(|w| w[0] == "--ignore")
                .map(|w| w[1].clone())
                .collect();
            signals(&ignored);
        }
    }
}

fn signals(ignored: &[String]) {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        std::process::exit(99);
    }
    // Commands on stdin, on a thread that inherits the blocked mask.
    std::thread::spawn(|| {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("exit ") {
                std::process::exit(n.trim().parse().unwrap_or(0));
            }
        }
    });
    say("ready");
    loop {
        let Ok(sig) = set.wait() else {
            std::process::exit(98);
        };
        let name = sig.as_str().trim_start_matches("SIG");
        say(name);
        let fatal = sig != Signal::SIGWINCH && !ignored.iter().any(|i| i == name);
        if fatal {
            // Die of the signal itself, as a real program would.
            let mut one = SigSet::empty();
            one.add(sig);
            let _ = nix::sys::signal::raise(sig);
            let _ = one.thread_unblock();
            std::thread::sleep(Duration::from_secs(5));
            std::process::exit(97);
        }
    }
}

/// Whether SIGPIPE was ignored when this process was exec'd: recorded
/// before Rust's runtime ignores it, by a function in `.init_array`.
static PIPE_IGNORED_AT_EXEC: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

extern "C" fn record_sigpipe() {
    // SAFETY: a null new action only queries into a zeroed local.
    unsafe {
        let mut old: nix::libc::sigaction = std::mem::zeroed();
        if nix::libc::sigaction(nix::libc::SIGPIPE, std::ptr::null(), &mut old) == 0 {
            PIPE_IGNORED_AT_EXEC.store(
                old.sa_sigaction == nix::libc::SIG_IGN,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }
}

#[used]
// SAFETY: the C runtime calls it once before main; it only queries a
// disposition and stores an atomic.
#[unsafe(link_section = ".init_array.00098")]
static RECORD_SIGPIPE: extern "C" fn() = record_sigpipe;

/// `SigBlk` and `SigIgn` of this process as exec'd (SIGPIPE as it was
/// before Rust's runtime ignored it).
fn inherited() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(u64::MAX)
    };
    let pipe = 1u64 << (nix::libc::SIGPIPE - 1);
    let mut ignored = field("SigIgn:") & !pipe;
    if PIPE_IGNORED_AT_EXEC.load(std::sync::atomic::Ordering::Relaxed) {
        ignored |= pipe;
    }
    format!(
        "inherited blocked={:016x} ignored={ignored:016x}",
        field("SigBlk:")
    )
}

fn trap_all() {
    use nix::libc;
    say(&inherited());
    // Everything that can be blocked is, and read with sigwaitinfo: no
    // signal can kill or stop this process but SIGKILL and SIGSTOP.
    // SAFETY: the set is a local initialised by sigfillset; the calls
    // write only into it and into `info`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
            std::process::exit(99);
        }
        say("ready");
        let end = libc::SIGRTMAX();
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let n = libc::sigwaitinfo(&set, &mut info);
            if n < 0 {
                continue;
            }
            if n != end {
                say(&format!("got {n}"));
                continue;
            }
            // Whatever the supervisor forwarded before the end marker is
            // pending now: it forwards in the order it reads, lowest
            // number first, and SIGRTMAX is the highest.
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            loop {
                let m = libc::sigtimedwait(&set, &mut info, &zero);
                if m < 0 {
                    break;
                }
                say(&format!("got {m}"));
            }
            say("sync");
        }
    }
}

fn orphans(n: usize, patience: Duration) {
    say("ready");
    // SAFETY: the process is single-threaded here; the forked children
    // only call fork and _exit (async-signal-safe).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            for _ in 0..n {
                // SAFETY: as above.
                if let Ok(nix::unistd::ForkResult::Child) = unsafe { nix::unistd::fork() } {
                    // SAFETY: _exit is async-signal-safe.
                    unsafe { nix::libc::_exit(0) };
                }
            }
            // SAFETY: _exit is async-signal-safe; the children are not
            // waited for: they become orphans.
            unsafe { nix::libc::_exit(0) };
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            let _ = nix::sys::wait::waitpid(child, None);
        }
        Err(e) => {
            say(&format!("fork: {e}"));
            std::process::exit(96);
        }
    }
    say(&format!("orphaned {n}"));
    let deadline = Instant::now() + patience;
    let mut zombies;
    loop {
        zombies = count_zombies();
        if zombies == 0 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    say(&format!("zombies {zombies}"));
}

fn count_zombies() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return usize::MAX;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|s| s.parse::<u32>().is_ok())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
                s.rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().next())
                    .is_some_and(|state| state == "Z")
            })
        })
        .count()
}
