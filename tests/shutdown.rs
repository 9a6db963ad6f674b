#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The graceful shutdown plan, seen from outside: `examples/shutdown_demo`
//! installs a plan, prints a marker for every step, and is signalled from
//! here. Assertions are on the order of markers, on exit codes, and on what
//! a probe sees — never on how long something took.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{PATIENCE, Proc, Rundir, example};
use nix::sys::signal::Signal;

const UNIT: &str = "svc";

/// Starts `shutdown_demo` with `args`, its lines collected.
fn start(rundir: &Rundir, args: &[&str]) -> Proc {
    start_env(rundir, args, &[])
}

/// As [`start`], with more environment variables.
fn start_env(rundir: &Rundir, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = rundir.command(UNIT, example("shutdown_demo"), args);
    cmd.env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("LIVENESS_GRACE_PERIOD")
        .env_remove("NOTIFY_SOCKET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    // The signal tests must not inherit INT or QUIT ignored.
    common::default_signals(&mut cmd);
    Proc::spawn(&mut cmd)
}

fn probe(rundir: &Rundir, mode: &str) -> i32 {
    rundir.liveness(UNIT, &["probe", mode]).code
}

/// SIGTERM runs the plan in order: stopping, not ready, drain, each hook,
/// reset, exit with the configured code; the state is gone afterwards.
#[test]
fn sigterm_runs_unready_drain_hooks_reset_exit_in_order() {
    let rundir = Rundir::new();
    let mut demo = start(
        &rundir,
        &["--drain-ms", "200", "--hook", "a:50", "--hook", "b:50"],
    );
    demo.wait_for("ready");
    assert_eq!(probe(&rundir, "--ready"), 0, "ready before the signal");
    demo.signal(Signal::SIGTERM);
    let st = demo.exit();
    assert_eq!(st.code(), Some(0), "{:#?}", demo.lines());
    demo.assert_order(&[
        "shutdown: signal SIGTERM: stopping",
        "unit svc not ready",
        "draining for 0.2 s",
        "hook:a:start",
        "hook:a:end",
        "hook a: done",
        "hook:b:start",
        "hook:b:end",
        "hook b: done",
        "resetting unit svc",
        "shutdown: exit 0",
    ]);
    assert_eq!(rundir.read(UNIT, "pid"), None, "reset removed the state");
    assert_eq!(probe(&rundir, "--live"), 3, "no state after the exit");
}

/// By default readiness drops as soon as the signal arrives, while the
/// liveness probe stays green through the drain.
#[test]
fn readiness_drops_on_the_signal_while_liveness_stays_green() {
    let rundir = Rundir::new();
    let mut demo = start(&rundir, &["--drain-ms", "600000", "--budget-ms", "900000"]);
    demo.wait_for("ready");
    assert_eq!(
        probe(&rundir, "--ready"),
        0,
        "negative control: ready first"
    );
    demo.signal(Signal::SIGTERM);
    demo.wait_for("draining");
    assert_eq!(probe(&rundir, "--ready"), 6, "not ready while draining");
    assert_eq!(probe(&rundir, "--live"), 0, "still live while draining");
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(143));
}

/// With `Unready::AfterDrain` the unit stays ready through the drain and
/// drops before the first hook.
#[test]
fn after_drain_readiness_drops_between_drain_and_hooks() {
    let rundir = Rundir::new();
    let mut demo = start(
        &rundir,
        &[
            "--unready",
            "after-drain",
            "--drain-ms",
            "100",
            "--hook",
            "long:600000:600000",
            "--budget-ms",
            "900000",
        ],
    );
    demo.wait_for("ready");
    demo.signal(Signal::SIGTERM);
    demo.wait_for("hook:long:start");
    demo.assert_order(&["draining", "unit svc not ready", "hook:long:start"]);
    assert_eq!(probe(&rundir, "--ready"), 6, "not ready once hooks run");
    assert_eq!(probe(&rundir, "--live"), 0, "live while hooks run");
    demo.signal(Signal::SIGINT);
    assert_eq!(demo.exit().code(), Some(130));
}

/// With `Unready::AfterDrain` and a long drain, the ready file is still
/// there during the drain.
#[test]
fn after_drain_keeps_readiness_during_the_drain() {
    let rundir = Rundir::new();
    let mut demo = start(
        &rundir,
        &[
            "--unready",
            "after-drain",
            "--drain-ms",
            "600000",
            "--budget-ms",
            "900000",
        ],
    );
    demo.wait_for("ready");
    demo.signal(Signal::SIGTERM);
    demo.wait_for("draining");
    assert_eq!(probe(&rundir, "--ready"), 0, "still ready while draining");
    assert!(!demo.has("not ready"));
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(143));
}

/// With `Unready::Never` the unit stays ready while the hooks run.
#[test]
fn never_keeps_readiness_until_the_reset() {
    let rundir = Rundir::new();
    let mut demo = start(
        &rundir,
        &[
            "--unready",
            "never",
            "--hook",
            "long:600000:600000",
            "--budget-ms",
            "900000",
        ],
    );
    demo.wait_for("ready");
    demo.signal(Signal::SIGTERM);
    demo.wait_for("hook:long:start");
    assert_eq!(probe(&rundir, "--ready"), 0, "ready while hooks run");
    assert!(!demo.has("not ready"));
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(143));
}

/// A hook that overruns its timeout is abandoned, named in the log, and
/// the next hook still runs; the plan still resets and exits cleanly.
#[test]
fn an_overrunning_hook_is_cut_off_and_the_next_still_runs() {
    let rundir = Rundir::new();
    let mut demo = start(
        &rundir,
        &[
            "--hook",
            "slow:600000:200",
            "--hook",
            "next:10",
            "--budget-ms",
            "900000",
        ],
    );
    demo.wait_for("ready");
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(0), "{:#?}", demo.lines());
    demo.assert_order(&[
        "hook:slow:start",
        "hook slow: still running after its 0.2 s timeout; abandoned",
        "hook:next:start",
        "hook:next:end",
        "resetting unit svc",
        "shutdown: exit 0",
    ]);
    assert!(!demo.has("hook:slow:end"));
    assert_eq!(rundir.read(UNIT, "pid"), None);
}

/// A hook that returns an error and a hook that panics are logged with
/// their names and reasons; the hooks after them run.
#[test]
fn failing_and_panicking_hooks_are_logged_and_the_rest_run() {
    let rundir = Rundir::new();
    let mut demo = start(
        &rundir,
        &[
            "--hook",
            "bad:0::fail",
            "--hook",
            "boom:0::panic",
            "--hook",
            "last:0",
        ],
    );
    demo.wait_for("ready");
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(0), "{:#?}", demo.lines());
    demo.assert_order(&[
        "log: warn: shutdown: hook bad: failed: bad could not flush",
        "log: warn: shutdown: hook boom: panicked: boom blew up",
        "hook:last:end",
        "hook last: done",
        "shutdown: exit 0",
    ]);
}

/// A second signal during the shutdown exits at once with 128 + its
/// number: 143 for SIGTERM, 130 for SIGINT, whatever the first was.
#[test]
fn a_second_signal_exits_at_once_with_128_plus_its_number() {
    for (first, second, code) in [
        (Signal::SIGTERM, Signal::SIGTERM, 143),
        (Signal::SIGINT, Signal::SIGINT, 130),
        (Signal::SIGTERM, Signal::SIGINT, 130),
    ] {
        let rundir = Rundir::new();
        let mut demo = start(&rundir, &["--drain-ms", "600000", "--budget-ms", "900000"]);
        demo.wait_for("ready");
        demo.signal(first);
        demo.wait_for("draining");
        demo.signal(second);
        let st = demo.exit();
        assert_eq!(st.code(), Some(code), "{first} then {second}");
        assert!(demo.has(&format!("second signal {second} during shutdown")));
        assert!(!demo.has("shutdown: exit 0"), "the plan did not finish");
    }
}

/// The exit code after an orderly shutdown is the configured one, for
/// SIGINT as for SIGTERM (not 130).
#[test]
fn the_exit_code_is_the_configured_one() {
    for (args, sig, code) in [
        (&[][..], Signal::SIGINT, 0),
        (&["--exit-code", "1"][..], Signal::SIGTERM, 1),
        (&["--exit-code", "42"][..], Signal::SIGINT, 42),
    ] {
        let rundir = Rundir::new();
        let mut demo = start(&rundir, args);
        demo.wait_for("ready");
        demo.signal(sig);
        assert_eq!(demo.exit().code(), Some(code), "{args:?} {sig}");
        assert!(demo.has(&format!("shutdown: exit {code}")));
    }
}

/// When the budget runs out, the plan names the step still running, resets
/// the unit and exits with 1; a plan that cannot fit its budget is warned
/// about at install, naming the numbers.
#[test]
fn the_budget_forces_the_exit_and_is_checked_at_install() {
    let rundir = Rundir::new();
    let mut demo = start(
        &rundir,
        &["--hook", "stuck:600000:600000", "--budget-ms", "1500"],
    );
    demo.wait_for("ready");
    demo.assert_order(&[
        "log: warn: shutdown plan: drain 0 s + 1 hook timeout 600 s = 600 s does not fit \
         the grace period 1.5 s less a 1 s margin (0.5 s)",
        "ready",
    ]);
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(1), "{:#?}", demo.lines());
    assert!(demo.has("log: error: shutdown: budget of 1.5 s spent during hook stuck: exit 1"));
    assert_eq!(rundir.read(UNIT, "pid"), None, "reset even so");
}

/// A strict plan that does not fit is refused before anything is installed.
#[test]
fn a_strict_plan_that_does_not_fit_is_refused() {
    let rundir = Rundir::new();
    let mut demo = start(&rundir, &["--strict", "--drain-ms", "30000"]);
    assert_eq!(demo.exit().code(), Some(2));
    assert!(
        demo.has("drain 30 s + 0 hook timeouts 0 s = 30 s does not fit the grace period 30 s"),
        "{:#?}",
        demo.lines()
    );
    // Negative control: the same plan with a budget that fits starts.
    let rundir = Rundir::new();
    let mut demo = start(
        &rundir,
        &["--strict", "--drain-ms", "30000", "--budget-ms", "34000"],
    );
    demo.wait_for("ready");
    demo.signal(Signal::SIGTERM);
    demo.wait_for("draining");
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(143));
}

/// `LIVENESS_GRACE_PERIOD` sets the budget, `KUBERNETES_SERVICE_HOST` the
/// default drain (5 s); a bad grace period is refused.
#[test]
fn the_environment_sets_budget_and_drain_defaults() {
    let rundir = Rundir::new();
    let mut demo = start_env(
        &rundir,
        &["--hook", "h:0"],
        &[
            ("LIVENESS_GRACE_PERIOD", "4"),
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
        ],
    );
    demo.wait_for("ready");
    assert!(demo.has("drain 5 s + 1 hook timeout 5 s = 10 s does not fit the grace period 4 s"));
    demo.signal(Signal::SIGTERM);
    demo.wait_for("stopping (drain 5 s, budget 4 s)");
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(143));

    // Negative control: outside Kubernetes there is no drain.
    let rundir = Rundir::new();
    let mut demo = start(&rundir, &[]);
    demo.wait_for("ready");
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(0));
    assert!(demo.has("stopping (drain 0 s, budget 30 s)"));
    assert!(!demo.has("draining"));

    // Go's form, as kubexit's variables have it, is a duration too.
    let rundir = Rundir::new();
    let mut demo = start_env(&rundir, &[], &[("LIVENESS_GRACE_PERIOD", "1m30s")]);
    demo.wait_for("ready");
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(0));
    assert!(demo.has("stopping (drain 0 s, budget 90 s)"));

    for bad in ["30x", "0", "-1s"] {
        let rundir = Rundir::new();
        let mut demo = start_env(&rundir, &[], &[("LIVENESS_GRACE_PERIOD", bad)]);
        assert_eq!(demo.exit().code(), Some(2), "{bad}");
        let line = format!("$LIVENESS_GRACE_PERIOD={bad:?}: must be a duration from 1 s");
        assert!(demo.has(&line), "{bad}: {:#?}", demo.lines());
    }
}

/// Shutdown started from code by two threads at once runs once.
#[test]
fn shutdown_from_code_runs_once() {
    let rundir = Rundir::new();
    let mut demo = start(
        &rundir,
        &["--no-signals", "--trigger-after-ms", "50", "--hook", "h:0"],
    );
    assert_eq!(demo.exit().code(), Some(0), "{:#?}", demo.lines());
    let lines = demo.lines();
    let count = |n: &str| lines.iter().filter(|l| l.contains(n)).count();
    assert_eq!(count("requested by the program: stopping"), 1, "{lines:#?}");
    assert_eq!(count("hook:h:start"), 1);
    assert_eq!(count("shutdown: exit 0"), 1);
}

/// With no signals in the plan, no handler is installed: SIGTERM keeps its
/// default action and kills the process without running the plan.
#[test]
fn an_empty_signal_list_installs_no_handler() {
    let rundir = Rundir::new();
    let mut demo = start(&rundir, &["--no-signals", "--hook", "h:0"]);
    demo.wait_for("ready");
    demo.signal(Signal::SIGTERM);
    let st = demo.exit();
    assert_eq!(st.signal(), Some(libc_sigterm()), "{st:?}");
    assert!(!demo.has("stopping"));
}

fn libc_sigterm() -> i32 {
    Signal::SIGTERM as i32
}

/// Served over HTTP (`Health::serve`), the same plan turns
/// `/health/ready` to 503 on SIGTERM while `/health/live` stays 200: what
/// a Kubernetes `httpGet` readiness probe sees.
#[cfg(feature = "http")]
#[test]
fn http_readiness_drops_on_the_signal_while_liveness_stays_200() {
    use std::io::{Read, Write};
    let status = |addr: &str, path: &str| -> u16 {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(PATIENCE)).unwrap();
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: k\r\n\r\n").as_bytes())
            .unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        text[9..12].parse().unwrap()
    };
    let rundir = Rundir::new();
    let mut demo = start(
        &rundir,
        &["--serve", "--drain-ms", "600000", "--budget-ms", "900000"],
    );
    demo.wait_for("ready");
    let addr = demo
        .lines()
        .iter()
        .find_map(|l| l.strip_prefix("serving 127."))
        .map(|rest| format!("127.{rest}"))
        .unwrap();
    assert_eq!(
        status(&addr, "/health/ready"),
        200,
        "ready before the signal"
    );
    demo.signal(Signal::SIGTERM);
    demo.wait_for("draining");
    assert_eq!(
        status(&addr, "/health/ready"),
        503,
        "not ready while draining"
    );
    assert_eq!(status(&addr, "/health/live"), 200, "live while draining");
    demo.signal(Signal::SIGTERM);
    assert_eq!(demo.exit().code(), Some(143));
}
