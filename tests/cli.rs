//! The `liveness` binary, black-box: commands, exit codes, one-line errors,
//! JSON, and compatibility with the original module's probe.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test reports failure by panicking

mod common;

/// The binary's command-line parser, compiled into this test: the command
/// list comes from it, not from a copy.
#[path = "../src/bin/liveness/cli.rs"]
#[allow(dead_code, unreachable_pub)]
mod cli;

use common::Rundir;

/// Usage errors exit 2 with exactly one line that says what is wrong.
#[test]
fn usage_errors_are_one_line_and_exit_2() {
    let rd = Rundir::new();
    for args in [
        &["frobnicate"][..],
        &["probe", "--bogus"],
        &["probe", "--timeout", "soon"],
        &["probe", "--max-age", "0"],
        &["probe", "--ready", "--startup"],
        &["probe", "extra"],
        &["set"],
        &["set", "-5"],
        &["set", "garbage"],
        &["set", "2147483648"],
        &["load", "--pid", "self"],
        &["beat", "--deadline", "1.5"],
        &["status", "--unit", "x"],
        &["probe", "--unit", "../etc"],
        &["load", "--unit", "a/b"],
        &["set", "0", "--unit", ""],
    ] {
        let r = rd.liveness("u", args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {:?}", r.stderr);
        assert!(r.stderr.starts_with("liveness: "), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}");
    }
}

/// Whether `help` documents exit code `code`: the number standing alone
/// between spaces, as the table prints it (`  1 unhealthy`), so that `11`
/// does not count for `1`.
fn documents_code(help: &str, code: u8) -> bool {
    help.contains(&format!(" {code} "))
}

/// `--help` documents every command the parser knows and the whole
/// exit-code table; each command has its own help.
#[test]
fn help_documents_commands_and_exit_codes() {
    // Negative control: `11` and `12` do not document `1`, nor `2`.
    assert!(!documents_code("  11 system error\n  12 exited\n", 1));
    assert!(!documents_code("  11 system error\n  12 exited\n", 2));
    assert!(documents_code("  1 unhealthy", 1));

    let rd = Rundir::new();
    let r = rd.liveness("u", &["--help"]);
    assert_eq!(r.code, 0);
    assert!(!cli::COMMANDS.is_empty());
    for word in cli::COMMANDS {
        assert!(r.stdout.contains(&format!("\n  {word} ")), "{word}");
        let own = rd.liveness("u", &[word, "--help"]);
        assert!(
            own.stdout.starts_with(&format!("Usage: liveness {word} ")),
            "{word}: {}",
            own.stdout
        );
    }
    for code in 0..=12 {
        assert!(documents_code(&r.stdout, code), "exit code {code}");
    }
    let r = rd.liveness("u", &["--version"]);
    assert_eq!(
        r.stdout,
        format!("liveness {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// The shell-job life cycle through the CLI: no state → starting →
/// healthy → ready → unhealthy → reset, each with its exit code, and
/// nothing on stdout or stderr when a probe passes.
#[test]
fn shell_job_life_cycle() {
    let rd = Rundir::new();
    let probe = |args: &[&str]| {
        let mut a = vec!["probe"];
        a.extend_from_slice(args);
        rd.liveness("job", &a)
    };
    assert_eq!(probe(&[]).code, 3);
    assert_eq!(rd.liveness("job", &["set", "0"]).code, 3, "set before load");
    assert_eq!(rd.liveness("job", &["ready"]).code, 3, "ready before load");
    let r = rd.liveness("job", &["load", "--check", "true", "--check", "test -d /"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(probe(&[]).code, 6);
    assert_eq!(probe(&["--startup"]).code, 6);
    assert_eq!(rd.liveness("job", &["set", "0"]).code, 0);
    let ok = probe(&[]);
    assert_eq!(
        (ok.code, ok.stdout.as_str(), ok.stderr.as_str()),
        (0, "", "")
    );
    assert_eq!(probe(&["--ready"]).code, 6);
    assert_eq!(rd.liveness("job", &["ready"]).code, 0);
    assert_eq!(probe(&["--ready"]).code, 0);
    assert_eq!(
        rd.liveness("job", &["set", "3", "--message", "database unreachable"])
            .code,
        0
    );
    let r = probe(&["--ready"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "liveness: unit job: unhealthy: error 3: database unreachable\n"
    );
    assert_eq!(probe(&["--startup"]).code, 0, "started, though unhealthy");
    assert_eq!(rd.liveness("job", &["not-ready"]).code, 0);
    assert_eq!(rd.liveness("job", &["set", "0"]).code, 0);
    assert_eq!(probe(&["--ready"]).code, 6);
    assert_eq!(rd.liveness("job", &["reset"]).code, 0);
    assert_eq!(
        rd.liveness("job", &["reset"]).code,
        0,
        "reset is idempotent"
    );
    assert_eq!(probe(&[]).code, 3);
    assert_eq!(
        probe(&["-v"]).stderr,
        "liveness: unit job: no state: not loaded (no pid file)\n"
    );
}

/// A failing `--check` exits 9 naming the check, and nothing is written.
#[test]
fn a_failing_check_writes_nothing() {
    let rd = Rundir::new();
    let r = rd.liveness(
        "c",
        &[
            "load",
            "--check",
            "true",
            "--check",
            "exit 4",
            "--check",
            "touch never",
        ],
    );
    assert_eq!(r.code, 9);
    assert_eq!(r.stderr, "liveness: check \"exit 4\": exit status 4\n");
    assert!(!rd.unit_dir("c").exists());
}

/// `load --pid` refuses a pid that is not running.
#[test]
fn load_refuses_a_dead_pid() {
    let rd = Rundir::new();
    let r = rd.liveness("d", &["load", "--pid", "2147483647"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.stderr, "liveness: pid 2147483647: is not running\n");
}

/// Heartbeats from the CLI: `beat` needs a declared deadline, keeps it once
/// declared, and a missed deadline makes the probe exit 5.
#[test]
fn heartbeats_from_the_cli() {
    let rd = Rundir::new();
    assert_eq!(rd.liveness("hb", &["load"]).code, 0);
    rd.liveness("hb", &["set", "0"]);
    let r = rd.liveness("hb", &["beat"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no heartbeat deadline"), "{}", r.stderr);
    assert_eq!(rd.liveness("hb", &["beat", "--deadline", "1"]).code, 0);
    let hb = String::from_utf8(rd.read("hb", "heartbeat").unwrap()).unwrap();
    assert!(hb.starts_with("1 ") && hb.ends_with('\n'), "{hb:?}");
    assert_eq!(rd.liveness("hb", &["beat"]).code, 0);
    assert!(
        String::from_utf8(rd.read("hb", "heartbeat").unwrap())
            .unwrap()
            .starts_with("1 ")
    );
    assert!(common::wait_until(common::PATIENCE, || rd
        .liveness("hb", &["probe"])
        .code
        == 5));
    let r = rd.liveness("hb", &["probe"]);
    assert!(
        r.stderr.contains("heartbeat stale: last beat "),
        "{}",
        r.stderr
    );
    assert_eq!(rd.liveness("hb", &["beat"]).code, 0);
    assert_eq!(rd.liveness("hb", &["probe"]).code, 0, "a beat revives it");
}

/// `probe --json` prints one JSON object with the verdict and the facts,
/// whatever the verdict.
#[test]
fn probe_json() {
    let rd = Rundir::new();
    let r = rd.liveness("j", &["probe", "--json"]);
    assert_eq!(r.code, 3);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["verdict"], "no state");
    assert_eq!(v["code"], 3);
    rd.liveness("j", &["load", "--heartbeat", "30"]);
    rd.liveness("j", &["set", "2", "-m", "quote \" and \\ and é"]);
    let r = rd.liveness("j", &["probe", "--json", "--ready"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["unit"], "j");
    assert_eq!(v["mode"], "ready");
    assert_eq!(v["verdict"], "unhealthy");
    assert_eq!(v["error"], 2);
    assert_eq!(v["message"], "quote \" and \\ and é");
    assert_eq!(v["heartbeat_deadline_s"], 30);
    assert!(v["pid"].as_u64().is_some());
    assert_eq!(r.stderr.lines().count(), 1, "the line still goes to stderr");
}

/// `status` lists every unit (and only units) under the run directory, as a
/// table or as JSON.
#[test]
fn status_lists_units() {
    let rd = Rundir::new();
    rd.liveness("b-ok", &["load"]);
    rd.liveness("b-ok", &["set", "0"]);
    rd.liveness("a-sick", &["load"]);
    rd.liveness("a-sick", &["set", "5", "-m", "disk"]);
    std::fs::create_dir(rd.path().join("not-a-unit")).unwrap();
    let r = rd.liveness("x", &["status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[0].starts_with("UNIT"));
    assert!(
        lines[1].starts_with("a-sick")
            && lines[1].contains("unhealthy")
            && lines[1].ends_with("error 5: disk"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("b-ok") && lines[2].contains(" ok "),
        "{}",
        lines[2]
    );
    let r = rd.liveness("x", &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["unit"], "a-sick");
    let empty = Rundir::new();
    let r = common::Ran::from(
        empty
            .command(
                "x",
                common::bin(),
                &["status", "--rundir", "/nonexistent/run"],
            )
            .output()
            .unwrap(),
    );
    assert_eq!((r.code, r.stdout.lines().count()), (0, 1));
}

/// The probe stops itself at its `--timeout` with exit 8 and one line,
/// however it is stuck (the stall is a test seam of debug builds).
#[test]
fn probe_enforces_its_own_deadline() {
    let rd = Rundir::new();
    let r: common::Ran = rd
        .command("slow", common::bin(), &["probe", "--timeout", "50"])
        .env("LIVENESS_TEST_STALL_MS", "60000")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "liveness: unit slow: probe timed out after 50 ms\n"
    );
}

/// The original module's probe (`tests/fixtures/original-health.sh`,
/// under bash) on the unit `orig` of `rd`.
fn original_probe(rd: &Rundir) -> common::Ran {
    rd.command(
        "orig",
        "bash",
        &[common::repo("tests/fixtures/original-health.sh")],
    )
    .env("CIC_RUNDIR", rd.path())
    .env("CIC_UNIT", "orig")
    .output()
    .unwrap()
    .into()
}

/// Files we write are judged correctly by the original module's probe:
/// healthy passes, error 3 fails, no error yet fails, reset fails.
#[test]
fn the_original_probe_reads_our_files() {
    let rd = Rundir::new();
    if !common::require(
        common::have("bash"),
        "the_original_probe_reads_our_files",
        "bash",
    ) {
        return;
    }
    let original = || original_probe(&rd);
    rd.liveness("orig", &["load"]);
    assert_eq!(original().code, 1, "starting: no error file yet");
    rd.liveness("orig", &["set", "0"]);
    let r = original();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("has error 0"),
        "our newline is stripped: {}",
        r.stderr
    );
    rd.liveness("orig", &["set", "3"]);
    assert_eq!(original().code, 1);
    rd.liveness("orig", &["reset"]);
    assert_eq!(original().code, 1);
}

/// Negative control for the table in tests/adversarial.rs: the original
/// probe passes garbage that ours call corrupt.
#[test]
fn the_original_probe_passes_what_ours_refuse() {
    let rd = Rundir::new();
    if !common::require(
        common::have("bash"),
        "the_original_probe_passes_what_ours_refuse",
        "bash",
    ) {
        return;
    }
    rd.write("orig", "pid", std::process::id().to_string().as_bytes());
    for garbage in ["-5", "garbage", "True", "0x10"] {
        rd.write("orig", "error", garbage.as_bytes());
        let r = original_probe(&rd);
        assert_eq!(r.code, 0, "the original passes {garbage:?}");
        assert_eq!(
            rd.liveness("orig", &["probe"]).code,
            7,
            "ours refuses {garbage:?}"
        );
    }
}
