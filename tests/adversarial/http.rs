//! Hostile HTTP clients (issue #9, §5): while each kind of hostile client
//! keeps attacking `liveness serve` on `127.0.0.1`, a probe made like the
//! kubelet's (connect, `GET /health/live`, read to the end) is answered,
//! and the server's threads and memory stay bounded.
//!
//! Each case prints the slowest probe it saw: a figure, not an assertion
//! (the machines are shared 2-core boxes). The assertions are generous
//! bounds only: every probe answered 200 within [`PATIENCE`], at most
//! [`MAX_THREADS`] threads, at most [`MAX_RSS_KB`] of RSS. A negative
//! control shows the harness reports a server that does not answer.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use liveness::Health;

#[path = "../common/http.rs"]
mod harness;

use crate::common::{self, Rundir};
use harness::{Attack, Hostile, Peak, Prober, Served, probe_once, raise_open_files};

/// A probe not answered within this is a failure (the kubelet's default
/// `timeoutSeconds` is 1 s; this bound only catches a stall).
const PATIENCE: Duration = Duration::from_secs(5);
/// How long probes go on once every client has connected (they start with
/// the attack): longer than the request timeout (2 s) and the linger
/// time, so that a whole cycle of timeouts, answers and reconnections
/// happens meanwhile.
const SPAN: Duration = Duration::from_secs(3);
/// The main thread, the I/O thread and at most 8 workers.
const MAX_THREADS: usize = 10;
/// Far above what the server needs (a few MB), far below a buffer per
/// connection of any size.
const MAX_RSS_KB: usize = 64 * 1024;

/// One hostile case: which clients, how many, and the server's flags.
struct Case {
    name: &'static str,
    kind: Hostile,
    clients: usize,
    args: &'static [&'static str],
}

/// Idle clients never time out: only evicting them lets a probe in.
const NO_TIMEOUT: &[&str] = &["--request-timeout", "600000"];

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "slowloris: 1,000 clients, one byte a second",
            kind: Hostile::Slowloris(Duration::from_secs(1)),
            clients: 1000,
            args: &[],
        },
        Case {
            name: "1,100 idle clients (over the connection cap)",
            kind: Hostile::Idle,
            clients: 1100,
            args: NO_TIMEOUT,
        },
        Case {
            name: "10,000 idle clients",
            kind: Hostile::Idle,
            clients: 10_000,
            args: NO_TIMEOUT,
        },
        Case {
            name: "2,000 idle clients connecting again when closed",
            kind: Hostile::IdleReconnecting,
            clients: 2000,
            args: &[],
        },
        Case {
            name: "8 clients: garbage, then a byte every 150 ms",
            kind: Hostile::GarbageThenDribble(Duration::from_millis(150)),
            clients: 8,
            args: &[],
        },
        Case {
            name: "64 clients that never read their answer",
            kind: Hostile::NeverReads,
            clients: 64,
            args: &[],
        },
        Case {
            name: "32 clients sending headers far over 8 KiB",
            kind: Hostile::Oversized,
            clients: 32,
            args: &[],
        },
        Case {
            name: "32 clients pipelining 50 requests each",
            kind: Hostile::Asks("/health/live", 50),
            clients: 32,
            args: &[],
        },
        Case {
            name: "256 clients asking for /health (every unit) over and over",
            kind: Hostile::Asks("/health", 1),
            clients: 256,
            args: &[],
        },
    ]
}

/// A served unit `api`, healthy, and `extra` more healthy units beside it
/// so that `/health` has an answer larger than any socket buffer.
fn healthy(extra: usize) -> (Rundir, Health) {
    let rundir = Rundir::new();
    let h = Health::builder()
        .unit("api")
        .rundir(rundir.path())
        .build()
        .unwrap();
    h.load().unwrap();
    h.set(0).unwrap();
    h.ready().unwrap();
    let me = std::process::id().to_string();
    for i in 0..extra {
        let unit = format!("unit-with-a-rather-long-name-{i:05}");
        rundir.write(&unit, "pid", me.as_bytes());
        rundir.write(&unit, "error", b"0\n");
        rundir.write(&unit, "message", "m".repeat(200).as_bytes());
    }
    (rundir, h)
}

/// Under every kind of hostile client, a kubelet-shaped probe of
/// `/health/live` is answered 200 within the patience, and the server
/// stays within its thread and memory bounds; the attack really happened.
#[test]
fn probes_are_answered_under_hostile_clients() {
    let test = "probes_are_answered_under_hostile_clients";
    let hard = raise_open_files();
    let (rundir, _health) = healthy(3000);
    let mut failures = Vec::new();
    for case in cases() {
        if !common::require(
            hard >= case.clients as u64 + 512,
            test,
            &format!(
                "an open-file hard limit of {} for {:?} (it is {hard})",
                case.clients + 512,
                case.name
            ),
        ) {
            continue;
        }
        let mut args = vec!["--unit", "api"];
        args.extend_from_slice(case.args);
        let served = Served::start(&rundir, &args);
        assert_eq!(
            probe_once(served.addr, "/health/live", PATIENCE).map(|a| a.0),
            Ok(200),
            "{}: before the attack",
            case.name
        );
        let peak = Peak::start(served.proc.pid());
        let started = Instant::now();
        let prober = Prober::start(served.addr, PATIENCE);
        let attack = Attack::start(served.addr, case.kind, case.clients);
        let established = attack.established(case.clients, common::PATIENCE);
        let setup = started.elapsed();
        std::thread::sleep(SPAN);
        let probes = prober.finish();
        let stats = attack.stop();
        let (threads, rss) = peak.finish();
        eprintln!(
            "{}: slowest probe {} ms of {} answered ({} failed); server peak {threads} threads, \
             {rss} kB RSS; clients connected in {} ms, {} connections, {} closed by the \
             server, answers {:?}",
            case.name,
            probes.slowest.as_millis(),
            probes.answered,
            probes.failures.len(),
            setup.as_millis(),
            stats.connects,
            stats.closed_by_server,
            stats.answers,
        );
        let mut fail = |what: String| failures.push(format!("{}: {what}", case.name));
        if !established {
            fail(format!("only {} clients connected", stats.connects));
        }
        if !probes.failures.is_empty() || probes.answered == 0 {
            fail(format!(
                "{} probes answered, failures: {:?}",
                probes.answered, probes.failures
            ));
        }
        if threads > MAX_THREADS {
            fail(format!("{threads} threads"));
        }
        if rss > MAX_RSS_KB {
            fail(format!("{rss} kB of RSS"));
        }
        // Each attack did what it says (not vacuous).
        let answered = |code| stats.answers.get(&code).copied().unwrap_or(0);
        match case.kind {
            // Pipelined: one whole answer per connection, never reset.
            Hostile::Asks("/health/live", _)
                if answered(200) == 0 || stats.extra_answers > 0 || stats.resets > 0 =>
            {
                fail(format!("want one 200 per connection, no reset: {stats:?}"));
            }
            // `/health` answers 200, or 503 when too many ask at once.
            Hostile::Asks(_, _) if answered(200) + answered(503) == 0 => {
                fail(format!("no answer to /health: {stats:?}"));
            }
            Hostile::Oversized if answered(431) == 0 => fail(format!("no 431: {stats:?}")),
            Hostile::GarbageThenDribble(_) if answered(400) == 0 => {
                fail(format!("no 400: {stats:?}"));
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Negative control: against a listener that accepts connections and
/// never answers, the harness reports the probes as failed (so a stalled
/// server cannot pass the test above).
#[test]
fn the_harness_reports_a_server_that_never_answers() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let patience = Duration::from_millis(300);
    let once = probe_once(addr, "/health/live", patience);
    assert!(
        matches!(&once, Err(e) if e.contains("no answer")),
        "{once:?}"
    );
    let probes = Prober::start(addr, patience).finish();
    assert_eq!(probes.answered, 0);
    assert!(!probes.failures.is_empty(), "{probes:?}");
    assert!(probes.slowest >= patience, "{probes:?}");
    drop(silent);
}
