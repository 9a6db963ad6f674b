#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The sd_notify bridge: with `NOTIFY_SOCKET` set, the handle tells the
//! service manager what it writes to its files, in `sd_notify(3)` words.
//! `examples/notify_demo` runs in a child process (the environment is
//! process-wide); the test reads the datagrams it sent.

mod common;

use std::os::unix::net::UnixDatagram;

use common::{Rundir, example};

/// Runs the demo with `NOTIFY_SOCKET` set to `socket` (or unset) and
/// returns every datagram `sock` received.
fn run_demo(sock: &UnixDatagram, socket: Option<&str>) -> Vec<String> {
    let rundir = Rundir::new();
    let mut cmd = rundir.command("notified", example("notify_demo"), &[] as &[&str]);
    cmd.env_remove("NOTIFY_SOCKET")
        .env_remove("KUBERNETES_SERVICE_HOST");
    if let Some(s) = socket {
        cmd.env("NOTIFY_SOCKET", s);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        rundir.read("notified", "pid"),
        None,
        "the plan reset the unit"
    );
    sock.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    got
}

const EXPECTED: [&str; 6] = [
    "WATCHDOG=1\n",
    "STATUS=ok\n",
    "READY=1\n",
    "STATUS=error 3: database unreachable\nERRNO=3\n",
    "STATUS=error 3\nERRNO=3\n",
    "STOPPING=1\n",
];

/// A path socket receives exactly one datagram per change, in order, with
/// the exact bytes; unchanged values and rate-limited beats send nothing.
#[test]
fn a_path_socket_receives_the_exact_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let got = run_demo(&sock, Some(path.to_str().unwrap()));
    assert_eq!(got, EXPECTED);
}

/// An abstract socket (`@name`, as systemd and Podman may pass) works too.
#[test]
fn an_abstract_socket_receives_the_same_messages() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("liveness-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    let got = run_demo(&sock, Some(&format!("@{name}")));
    assert_eq!(got, EXPECTED);
}

/// Without `NOTIFY_SOCKET` nothing is sent, even with a socket listening.
#[test]
fn nothing_is_sent_when_notify_socket_is_unset() {
    let dir = tempfile::tempdir().unwrap();
    let sock = UnixDatagram::bind(dir.path().join("notify.sock")).unwrap();
    assert_eq!(run_demo(&sock, None), Vec::<String>::new());
    // Negative control: the same socket does receive when named.
    let got = run_demo(
        &sock,
        Some(dir.path().join("notify.sock").to_str().unwrap()),
    );
    assert_eq!(got.len(), EXPECTED.len());
}

/// A socket that is gone does not make any call fail.
#[test]
fn a_missing_socket_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let sock = UnixDatagram::unbound().unwrap();
    let missing = dir.path().join("gone.sock");
    assert_eq!(
        run_demo(&sock, Some(missing.to_str().unwrap())),
        Vec::<String>::new()
    );
}
