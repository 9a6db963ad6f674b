//! A long-running service driven from its standard input, for the
//! kubelet-shaped end-to-end tests (and as an example of a service's life:
//! load, become ready, fail, recover, hang).
//!
//! ```text
//! service [--start-ms MS] [--heartbeat-s S] [--auto-ready]
//! ```
//!
//! It waits `--start-ms` (a slow start), claims its unit (`LIVENESS_UNIT_NAME`
//! under `LIVENESS_RUNDIR`) with a heartbeat deadline of `--heartbeat-s`
//! (default 1), prints `loaded <pid>`, and beats every 50 ms. With
//! `--auto-ready` it then reports error 0 and becomes ready. Each line on its
//! standard input is a command, acknowledged by printing it back:
//!
//! ```text
//! set N [MESSAGE]   report error N (0 = healthy)
//! ready | not-ready
//! hang              stop beating, as a deadlocked process would
//! exit N            reset the state and exit with code N
//! ```

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use liveness::Health;

fn main() {
    if let Err(e) = run() {
        eprintln!("service: {e}");
        std::process::exit(1);
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut start_ms = 0u64;
    let mut heartbeat_s = 1u64;
    let mut auto_ready = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--auto-ready" => auto_ready = true,
            "--start-ms" => start_ms = args.next().ok_or("--start-ms needs MS")?.parse()?,
            "--heartbeat-s" => heartbeat_s = args.next().ok_or("--heartbeat-s needs S")?.parse()?,
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    std::thread::sleep(Duration::from_millis(start_ms));
    let health = Arc::new(
        Health::builder()
            .heartbeat(Duration::from_secs(heartbeat_s))
            .build()?,
    );
    health.load()?;
    say(&format!("loaded {}", std::process::id()));
    if auto_ready {
        health.set(0)?;
        health.ready()?;
        say("ready");
    }

    let hung = Arc::new(AtomicBool::new(false));
    {
        let (health, hung) = (Arc::clone(&health), Arc::clone(&hung));
        std::thread::spawn(move || {
            while !hung.load(Ordering::Relaxed) {
                if let Err(e) = health.beat() {
                    eprintln!("service: beat: {e}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }

    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("set"), Some(n), msg) => match msg {
                Some(m) => health.set_with_message(n.parse()?, m)?,
                None => health.set(n.parse()?)?,
            },
            (Some("ready"), None, None) => health.ready()?,
            (Some("not-ready"), None, None) => health.not_ready()?,
            (Some("hang"), None, None) => hung.store(true, Ordering::Relaxed),
            (Some("exit"), Some(n), None) => {
                health.reset()?;
                say(&line);
                std::process::exit(n.parse()?);
            }
            _ => return Err(format!("unknown command {line:?}").into()),
        }
        say(&line);
    }
    // Standard input closed: keep serving until killed.
    loop {
        std::thread::park();
    }
}
