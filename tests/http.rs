// Without the `http` feature there is no `liveness serve` to test; a
// `[[test]] required-features` entry would do the same, but it makes cargo
// require this file to build the binary alone (doc/examples/Dockerfile).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `liveness serve`: status codes and bodies for every verdict (the same as
//! `liveness probe`), HEAD, 404/405, malformed and slow clients, 1,000
//! concurrent connections with bounded threads, and answers while a writer
//! changes the state. Assertions are on answers and counts, never on time.

mod common;
#[path = "common/http.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{PATIENCE, Rundir, bin};
use harness::{Attack, Hostile, Peak, Served, open_fds, probe_once, raise_open_files};
use liveness::Health;

/// An HTTP answer: status code, head, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `bytes` on a new connection and reads the answer to its end.
fn raw(addr: SocketAddr, bytes: &[u8]) -> Answer {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    conn.write_all(bytes).unwrap();
    read_answer(&mut conn)
}

fn read_answer(conn: &mut TcpStream) -> Answer {
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {text:?}"));
    let status = head[9..12].parse().unwrap();
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n").as_bytes(),
    )
}

/// What `liveness probe MODE -v` says about `unit`: exit code and line.
fn probe(rundir: &Rundir, unit: &str, mode: &str) -> (i32, String) {
    let r = rundir.liveness(unit, &["probe", mode, "-v"]);
    let line = r.stderr.strip_prefix("liveness: ").unwrap().to_owned();
    (r.code, line)
}

/// One unit in each state of the core's table, in one run directory.
struct States {
    rundir: Rundir,
    _handles: Vec<Health>,
}

const STATES: [&str; 8] = [
    "ok",
    "unhealthy",
    "no-state",
    "owner-gone",
    "stale",
    "starting",
    "not-ready",
    "corrupt",
];

fn states() -> States {
    let rundir = Rundir::new();
    let mut handles = Vec::new();
    let load = |name: &str, heartbeat: bool| {
        let mut b = Health::builder().unit(name).rundir(rundir.path());
        if heartbeat {
            b = b.heartbeat(Duration::from_secs(1));
        }
        let h = b.build().unwrap();
        h.load().unwrap();
        h
    };
    let h = load("ok", false);
    h.set(0).unwrap();
    h.ready().unwrap();
    handles.push(h);
    let h = load("unhealthy", false);
    h.set_with_message(3, "database unreachable").unwrap();
    h.ready().unwrap();
    handles.push(h);
    let h = load("stale", true);
    h.set(0).unwrap();
    h.ready().unwrap();
    rundir.write("stale", "heartbeat", b"1 0\n"); // beat at boot: long ago
    handles.push(h);
    handles.push(load("starting", false));
    let h = load("not-ready", false);
    h.set(0).unwrap();
    handles.push(h);
    let h = load("corrupt", false);
    h.set(0).unwrap();
    rundir.write("corrupt", "error", b"garbage\n");
    handles.push(h);
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    rundir.write("owner-gone", "pid", format!("{dead_pid}\n").as_bytes());
    rundir.write("owner-gone", "error", b"0\n");
    States {
        rundir,
        _handles: handles,
    }
}

/// Every endpoint answers every state with the probe's verdict: 200 when
/// `liveness probe` exits 0, else 503, and the body is the probe's line.
#[test]
fn every_state_answers_with_the_probes_verdict_and_line() {
    let s = states();
    for unit in STATES {
        let served = Served::start(&s.rundir, &["--unit", unit]);
        for (path, mode) in [
            ("/health/live", "--live"),
            ("/health/ready", "--ready"),
            ("/health/startup", "--startup"),
        ] {
            let (code, line) = probe(&s.rundir, unit, mode);
            let a = get(served.addr, path);
            let want = if code == 0 { 200 } else { 503 };
            assert_eq!(
                a.status, want,
                "{unit} {path}: {a:?} vs probe {code} {line}"
            );
            assert_eq!(
                common::without_age(&a.body),
                common::without_age(&line),
                "{unit} {path}"
            );
            assert!(a.head.contains("Content-Type: text/plain"), "{a:?}");
        }
    }
    // Not vacuous: the table has passes and failures, with their words.
    let served = Served::start(&s.rundir, &["--unit", "ok"]);
    assert_eq!(get(served.addr, "/health/ready").body, "unit ok: ok\n");
    let served = Served::start(&s.rundir, &["--unit", "unhealthy"]);
    let a = get(served.addr, "/health/live");
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            503,
            "unit unhealthy: unhealthy: error 3: database unreachable\n"
        )
    );
    assert_eq!(get(served.addr, "/health/startup").status, 200);
}

/// With several units an endpoint passes only when all pass, one line each.
#[test]
fn several_units_must_all_pass() {
    let s = states();
    let served = Served::start(&s.rundir, &["-u", "ok", "-u", "not-ready"]);
    let live = get(served.addr, "/health/live");
    assert_eq!(live.status, 200);
    assert_eq!(live.body, "unit ok: ok\nunit not-ready: ok\n");
    let ready = get(served.addr, "/health/ready");
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body.lines().count(), 2);
    assert!(
        ready.body.contains("unit not-ready: not ready"),
        "{ready:?}"
    );
}

/// `/health` is the JSON of every unit under the run directory.
#[test]
fn health_is_the_json_of_every_unit() {
    let s = states();
    let served = Served::start(&s.rundir, &["--unit", "ok"]);
    let a = get(served.addr, "/health");
    assert_eq!(a.status, 200, "the served unit is live");
    assert!(a.head.contains("Content-Type: application/json"));
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    let mut names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["unit"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let mut want: Vec<&str> = STATES
        .iter()
        .copied()
        .filter(|u| *u != "no-state")
        .collect();
    want.sort_unstable();
    assert_eq!(names, want);
    let served = Served::start(&s.rundir, &["--unit", "unhealthy"]);
    assert_eq!(
        get(served.addr, "/health").status,
        503,
        "served unit unhealthy"
    );
}

/// HEAD answers with the same status and headers, and no body.
#[test]
fn head_has_the_status_and_headers_but_no_body() {
    let s = states();
    let served = Served::start(&s.rundir, &["--unit", "unhealthy"]);
    let a = raw(
        served.addr,
        b"HEAD /health/live HTTP/1.1\r\nHost: probe\r\n\r\n",
    );
    assert_eq!(a.status, 503);
    assert_eq!(a.body, "");
    let len = "unit unhealthy: unhealthy: error 3: database unreachable\n".len();
    assert!(a.head.contains(&format!("Content-Length: {len}")), "{a:?}");
}

/// Unknown paths get 404, other methods 405 with `Allow`; a query string
/// is ignored.
#[test]
fn unknown_paths_get_404_and_other_methods_405() {
    let s = states();
    let served = Served::start(&s.rundir, &["--unit", "ok"]);
    for path in ["/", "/health/", "/health/live/x", "/metrics", "/healthz"] {
        assert_eq!(get(served.addr, path).status, 404, "{path}");
    }
    let a = raw(
        served.addr,
        b"POST /health/live HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(a.status, 405);
    assert!(a.head.contains("Allow: GET, HEAD"), "{a:?}");
    assert_eq!(get(served.addr, "/health/live?verbose=1").status, 200);
}

/// Garbage, a huge header, NUL bytes, an HTTP/2 preface and a client that
/// hangs up are answered (or dropped) without harming the server.
#[test]
fn malformed_requests_do_not_kill_the_server() {
    let s = states();
    let served = Served::start(&s.rundir, &["--unit", "ok"]);
    assert_eq!(raw(served.addr, b"garbage garbage\r\n\r\n").status, 400);
    assert_eq!(raw(served.addr, b"\0\0\0\0\r\n\r\n").status, 400);
    let mut huge = b"GET /health/live HTTP/1.1\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    assert_eq!(raw(served.addr, &huge).status, 431);
    let preface = raw(served.addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(matches!(preface.status, 400 | 404 | 405), "{preface:?}");
    drop(TcpStream::connect(served.addr).unwrap()); // hangs up at once
    let mut half = TcpStream::connect(served.addr).unwrap();
    half.write_all(b"GET /heal").unwrap();
    drop(half);
    // Still serving.
    assert_eq!(get(served.addr, "/health/live").status, 200);
}

/// Slow clients that send half a request and stall do not delay another
/// probe: with 100 of them open (more than a thread-per-connection server
/// with 64 threads could hold), a probe is answered while every slow one is
/// still open and unanswered.
#[test]
fn slow_clients_do_not_delay_another_probe() {
    let s = states();
    // The slow clients' deadline is far away: they are surely still open
    // when the other probe has been answered.
    let served = Served::start(&s.rundir, &["--unit", "ok", "--request-timeout", "600000"]);
    let slow: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut c = TcpStream::connect(served.addr).unwrap();
            c.write_all(b"GET /health/live HTTP/1.1\r\nHost: sl")
                .unwrap();
            c
        })
        .collect();
    let a = get(served.addr, "/health/live");
    assert_eq!(a.status, 200);
    for mut c in slow {
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        let still_open =
            matches!(c.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        assert!(still_open, "a slow client was answered or closed first");
    }
}

/// A client that never finishes its request gets 408 after the request
/// timeout and is closed.
#[test]
fn a_stalled_client_gets_408_and_is_closed() {
    let s = states();
    let served = Served::start(&s.rundir, &["--unit", "ok", "--request-timeout", "200"]);
    let mut slow = TcpStream::connect(served.addr).unwrap();
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    slow.write_all(b"GET /health/live HTTP/1.1\r\n").unwrap();
    let a = read_answer(&mut slow);
    assert_eq!(a.status, 408);
}

/// The open-file limit of this test process, to size the connection test.
fn max_open_files() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// 1,000 connections open at once are all answered, while the server never
/// runs more than its 8 worker threads besides the reading thread.
#[test]
fn a_thousand_concurrent_connections_are_answered_with_bounded_threads() {
    let n = 1000.min(max_open_files().saturating_sub(100));
    if n < 1000 {
        eprintln!("\n*** open-file limit: {n} connections instead of 1000 ***\n");
    }
    let s = states();
    let served = Served::start(&s.rundir, &["--unit", "ok", "--request-timeout", "600000"]);
    let idle_threads = served.threads();
    let peak = Peak::start(served.proc.pid());
    let mut conns: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(served.addr).unwrap())
        .collect();
    for c in &mut conns {
        c.set_read_timeout(Some(PATIENCE)).unwrap();
        c.write_all(b"GET /health/live HTTP/1.1\r\nHost: probe\r\n\r\n")
            .unwrap();
    }
    let ok = conns
        .iter_mut()
        .map(read_answer)
        .filter(|a| a.status == 200 && a.body == "unit ok: ok\n")
        .count();
    let (max_threads, max_rss) = peak.finish();
    eprintln!(
        "{n} connections: all answered {ok}; server threads idle {idle_threads}, max {max_threads}; \
         max RSS {max_rss} kB"
    );
    assert_eq!(ok, n);
    // The reading thread and the main thread, plus at most 8 workers
    // (MAX_WORKERS in src/http/transport.rs): not one thread per connection.
    assert!(max_threads <= idle_threads + 8, "{max_threads} threads");
    assert!(max_threads > idle_threads, "negative control: handlers ran");
}

/// 200 clients asking at the same moment are all answered.
#[test]
fn two_hundred_simultaneous_clients_are_all_answered() {
    let s = states();
    // A client descheduled between connect and write must not get 408.
    let served = Served::start(&s.rundir, &["--unit", "ok", "--request-timeout", "600000"]);
    let barrier = Arc::new(Barrier::new(200));
    let addr = served.addr;
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let b = Arc::clone(&barrier);
            std::thread::spawn(move || {
                b.wait();
                get(addr, "/health/ready").status
            })
        })
        .collect();
    let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

/// While a writer flips the unit between healthy and unhealthy as fast as
/// it can, every answer is a truthful one: ok, or error 1 with or without
/// its message (files are ordered, not transactional: the message may
/// already be gone when the error is read, as `doc/state-format.md` says).
#[test]
fn answers_stay_truthful_while_a_writer_updates_the_state() {
    let rundir = Rundir::new();
    let h = Arc::new(
        Health::builder()
            .unit("w")
            .rundir(rundir.path())
            .build()
            .unwrap(),
    );
    h.load().unwrap();
    h.set(0).unwrap();
    let served = Served::start(&rundir, &["--unit", "w"]);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (h, stop) = (Arc::clone(&h), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                h.set_with_message(1, "flip").unwrap();
                h.set(0).unwrap();
                flips += 1;
            }
            flips
        })
    };
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..300 {
        let a = get(served.addr, "/health/live");
        let ok = matches!(
            (a.status, a.body.as_str()),
            (200, "unit w: ok\n")
                | (503, "unit w: unhealthy: error 1: flip\n")
                | (503, "unit w: unhealthy: error 1\n")
        );
        assert!(ok, "{a:?}");
        *seen.entry(a.status).or_insert(0) += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let flips = writer.join().unwrap();
    assert!(flips > 0);
    eprintln!("answers by status while flipping: {seen:?} ({flips} flips)");
}

/// Without `--listen` the address is 127.0.0.1 and the port comes from
/// `LIVENESS_HTTP_PORT`; a bad port is a usage error.
#[test]
fn the_port_comes_from_liveness_http_port() {
    let s = states();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let served = Served::start_env(
        &s.rundir,
        &["--unit", "ok"],
        &[("LIVENESS_HTTP_PORT", &port.to_string())],
    );
    assert_eq!(served.addr, SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(get(served.addr, "/health/live").status, 200);

    let r = s
        .rundir
        .command("ok", bin(), &["serve"])
        .env("LIVENESS_HTTP_PORT", "http")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("$LIVENESS_HTTP_PORT=\"http\""), "{err}");
}

/// Over the connection cap (1,024), idle connections that never time out
/// cannot keep a probe out: each new connection evicts the oldest idle
/// one, so the probe is answered, the oldest are closed and the newest
/// stay open.
#[test]
fn over_the_cap_the_oldest_idle_connections_are_evicted() {
    let test = "over_the_cap_the_oldest_idle_connections_are_evicted";
    if !common::require(
        raise_open_files() >= 1300,
        test,
        "an open-file limit of 1,300",
    ) {
        return;
    }
    let s = states();
    let served = Served::start(&s.rundir, &["--unit", "ok", "--request-timeout", "600000"]);
    let mut idle: Vec<TcpStream> = (0..1100)
        .map(|_| TcpStream::connect(served.addr).unwrap())
        .collect();
    // Answered only if the server made room: no idle one ever times out.
    assert_eq!(
        probe_once(served.addr, "/health/live", PATIENCE).map(|a| a.0),
        Ok(200)
    );
    let closed: Vec<bool> = idle
        .iter_mut()
        .map(|c| {
            c.set_nonblocking(true).unwrap();
            matches!(c.read(&mut [0u8; 16]), Ok(0))
        })
        .collect();
    let n = closed.iter().filter(|c| **c).count();
    eprintln!("1,100 idle connections and a probe: {n} evicted");
    assert!(closed[0], "the oldest was evicted");
    assert!(!closed[1099], "the newest is still open");
    assert!((76..=200).contains(&n), "{n} evicted");
}

/// With a low open-file limit (200, which the server cannot raise) the
/// server holds fewer connections (72: 128 descriptors stay free for
/// reading state) and still answers a probe while 300 idle clients that
/// never time out are connected.
#[test]
fn a_low_open_file_limit_lowers_the_cap_and_probes_are_answered() {
    let test = "a_low_open_file_limit_lowers_the_cap_and_probes_are_answered";
    if !common::require(common::have("prlimit"), test, "prlimit (util-linux)") {
        return;
    }
    let s = states();
    let served = Served::start_under(
        &s.rundir,
        &["prlimit", "--nofile=200:200"],
        &["--unit", "ok", "--request-timeout", "600000"],
        &[],
    );
    let attack = Attack::start(served.addr, Hostile::Idle, 300);
    assert!(attack.established(300, PATIENCE));
    let answer = probe_once(served.addr, "/health/live", PATIENCE).map(|a| a.0);
    let fds = open_fds(served.proc.pid());
    drop(attack.stop());
    eprintln!("open-file limit 200, 300 idle clients: server has {fds} descriptors open");
    assert_eq!(answer, Ok(200));
    // 72 connections, plus stdio, the listener, its reserve, the wake-up
    // pair and a few state files.
    assert!((72..=72 + 16).contains(&fds), "{fds} descriptors");
}

/// `/health` is `liveness status --json` of the run directory, plus each
/// served unit that has no state there (as `doc/http-endpoints.md` says): with only
/// units that have state the two bodies are equal; a served unit without
/// state is appended (verdict "no state") and makes the answer 503.
#[test]
fn health_is_status_json_plus_served_units_without_state() {
    let rundir = Rundir::new();
    let h = Health::builder()
        .unit("a")
        .rundir(rundir.path())
        .build()
        .unwrap();
    h.load().unwrap();
    h.set(0).unwrap();
    let status = rundir.liveness(
        "a",
        &[
            "status",
            "--json",
            "--rundir",
            rundir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();

    let served = Served::start(&rundir, &["--unit", "a"]);
    let a = get(served.addr, "/health");
    assert_eq!(a.status, 200, "{a:?}");
    let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body, status, "only units with state: the same JSON");

    let served = Served::start(&rundir, &["--unit", "a", "--unit", "ghost"]);
    let a = get(served.addr, "/health");
    assert_eq!(a.status, 503, "the served unit ghost is not live: {a:?}");
    let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    let body = body.as_array().unwrap();
    let (ghost, rest) = body.split_last().unwrap();
    assert_eq!(rest, status.as_array().unwrap().as_slice(), "{body:?}");
    assert_eq!(ghost["unit"], "ghost");
    assert_eq!(ghost["verdict"], "no state");
}
