//! A process that owns a unit, for the tests (and as a small example of the
//! library from a second process).
//!
//! ```text
//! state_writer RUNDIR UNIT hold       load, set(0), ready, print "ready", sleep
//! state_writer RUNDIR UNIT flip       load, set(0), beat, print "ready", then set(1)/set(0)
//!                                     with messages and beats, as fast as it can
//! state_writer RUNDIR UNIT try-load   load; print "loaded" or "error <kind> <pid>: <msg>"
//! state_writer RUNDIR UNIT attach     wait for a line on stdin, then load and print
//!                                     "attached" or "owner", set(0), ready, print "done"
//! state_writer RUNDIR UNIT fork-drop  load, set(0); a forked child drops its copy of the
//!                                     handle and exits; print "child exited", sleep
//! state_writer RUNDIR UNIT unready    load (under `liveness run --ready-on-start`: attach),
//!                                     not_ready(), print "attached" or "owner", then
//!                                     wait for a line on stdin
//! ```

use std::io::{BufRead, Write};
use std::time::Duration;

use liveness::Health;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: state_writer RUNDIR UNIT hold|flip|try-load|attach|fork-drop|unready");
        std::process::exit(2);
    }
    let (rundir, unit, action) = (&args[1], &args[2], args[3].as_str());
    let health = Health::builder()
        .unit(unit.clone())
        .rundir(rundir)
        .heartbeat(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|e| fail(&e));
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    match action {
        "hold" => {
            health.load().unwrap_or_else(|e| fail(&e));
            health.set(0).unwrap_or_else(|e| fail(&e));
            health.ready().unwrap_or_else(|e| fail(&e));
            say("ready");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        "flip" => {
            health.load().unwrap_or_else(|e| fail(&e));
            // Every file the kill test checks exists before it may kill us.
            health
                .set(0)
                .and_then(|()| health.set_heartbeat(Duration::from_secs(1)))
                .unwrap_or_else(|e| fail(&e));
            say("ready");
            for i in 1u64.. {
                let r = if i % 2 == 0 {
                    health.set(0)
                } else {
                    health.set_with_message(1, &format!("flip {i}"))
                };
                r.and_then(|()| health.set_heartbeat(Duration::from_secs(1 + i % 60)))
                    .unwrap_or_else(|e| fail(&e));
            }
        }
        "try-load" => match health.load() {
            Ok(()) => say("loaded"),
            Err(e) => {
                say(&format!(
                    "error {:?} {}: {e}",
                    e.kind(),
                    e.pid().map_or("-".into(), |p| p.to_string())
                ));
                std::process::exit(1);
            }
        },
        "attach" => {
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            health.load().unwrap_or_else(|e| fail(&e));
            say(if health.is_attached() {
                "attached"
            } else {
                "owner"
            });
            health.set(0).unwrap_or_else(|e| fail(&e));
            health.ready().unwrap_or_else(|e| fail(&e));
            say("done");
        }
        "fork-drop" => {
            health.load().unwrap_or_else(|e| fail(&e));
            health.set(0).unwrap_or_else(|e| fail(&e));
            // SAFETY: the process is single-threaded here; the child only
            // drops the handle (close, a mutex no other thread holds) and
            // exits.
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => {
                    drop(health);
                    std::process::exit(0);
                }
                Ok(nix::unistd::ForkResult::Parent { child }) => {
                    let _ = nix::sys::wait::waitpid(child, None);
                    say("child exited");
                    loop {
                        std::thread::sleep(Duration::from_secs(3600));
                    }
                }
                Err(e) => {
                    eprintln!("fork: {e}");
                    std::process::exit(1);
                }
            }
        }
        "unready" => {
            health.load().unwrap_or_else(|e| fail(&e));
            health.not_ready().unwrap_or_else(|e| fail(&e));
            say(if health.is_attached() {
                "attached"
            } else {
                "owner"
            });
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
        }
        other => {
            eprintln!("unknown action {other}");
            std::process::exit(2);
        }
    }
}

fn fail(e: &liveness::Error) -> ! {
    eprintln!("state_writer: {e}");
    std::process::exit(1);
}
