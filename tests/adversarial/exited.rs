//! After a supervised child ends (decision D4): no `pid` file and a
//! `tombstone` with a `Died` line is the verdict `exited`, exit 12, with how
//! and when (`code 3 at <Died>`, `killed by SIGTERM at <Died>`); a tombstone
//! without `Died` leaves "no state" (3); a tombstone that is not exactly the
//! documented format is corrupt (7). `health.sh` is held to the rows (the
//! contract, doc/state-format.md) and, wherever this build's `liveness
//! probe` gives exit 12 for a death, to the probe's own line.

use std::process::Command;

use crate::bounded::{self, Outcome};
use crate::common::{self, Rundir};

const BORN: &str = "Born: \"2026-11-23T12:00:00.123Z\"\n";
const DIED: &str = "Died: \"2026-11-23T12:00:05.456Z\"\n";

fn tomb(rest: &str) -> Vec<u8> {
    format!("Schema: 1\n{BORN}{rest}").into_bytes()
}

/// Rows: what, the tombstone's bytes, health.sh's code, words of its line.
fn rows() -> Vec<(&'static str, Vec<u8>, i32, &'static str)> {
    let never = |rest: &str| format!("Schema: 1\n{DIED}{rest}").into_bytes();
    vec![
        (
            "exit code",
            tomb(&format!("{DIED}ExitCode: 3\n")),
            12,
            "exited: code 3 at 2026-11-23T12:00:05.456Z",
        ),
        (
            "exit code 0",
            tomb(&format!("{DIED}ExitCode: 0\n")),
            12,
            "exited: code 0 at 2026-11-23T12:00:05.456Z",
        ),
        (
            "signal",
            tomb(&format!(
                "{DIED}ExitCode: 137\nSignal: SIGKILL\nSignalNumber: 9\n"
            )),
            12,
            "exited: killed by SIGKILL at 2026-11-23T12:00:05.456Z",
        ),
        (
            "real-time signal",
            tomb(&format!(
                "{DIED}ExitCode: 165\nSignal: SIGRTMIN+3\nSignalNumber: 37\n"
            )),
            12,
            "exited: killed by SIGRTMIN+3 at",
        ),
        (
            "leap day",
            tomb("Died: \"2024-02-29T00:00:00.000Z\"\nExitCode: 1\n"),
            12,
            "exited: code 1 at 2024-02-29T00:00:00.000Z",
        ),
        (
            "never started",
            never("ExitCode: 127\nReason: \"nosuchcmd: No such file or directory\"\n"),
            12,
            "exited: code 127 at 2026-11-23T12:00:05.456Z",
        ),
        (
            "never started, escapes",
            never("ExitCode: 124\nReason: \"a \\\"b\\\" \\\\ c\"\n"),
            12,
            "exited: code 124 at",
        ),
        (
            "born only (control)",
            tomb(""),
            3,
            "no state: not loaded (no pid file)",
        ),
        (
            "empty",
            b"".to_vec(),
            7,
            "corrupt state: tombstone: no final newline",
        ),
        (
            "no final newline",
            tomb(&format!("{DIED}ExitCode: 3")),
            7,
            "tombstone: no final newline",
        ),
        (
            "schema 2",
            b"Schema: 2\n".to_vec(),
            7,
            "tombstone: unknown schema \"2\"",
        ),
        (
            "no schema",
            BORN.as_bytes().to_vec(),
            7,
            "tombstone: no Schema line",
        ),
        (
            "schema only",
            b"Schema: 1\n".to_vec(),
            7,
            "tombstone: unexpected line",
        ),
        (
            "bad born",
            b"Schema: 1\nBorn: yesterday\n".to_vec(),
            7,
            "tombstone: bad Born line",
        ),
        (
            "31 February",
            tomb("Died: \"2026-02-31T00:00:00.000Z\"\nExitCode: 1\n"),
            7,
            "tombstone: bad Died line",
        ),
        (
            "29 February 2100",
            tomb("Died: \"2100-02-29T00:00:00.000Z\"\nExitCode: 1\n"),
            7,
            "tombstone: bad Died line",
        ),
        (
            "hour 24",
            tomb("Died: \"2026-01-01T24:00:00.000Z\"\nExitCode: 1\n"),
            7,
            "tombstone: bad Died line",
        ),
        (
            "unquoted time",
            tomb("Died: 2026-01-01T00:00:00.000Z\nExitCode: 1\n"),
            7,
            "tombstone: bad Died line",
        ),
        (
            "died without code",
            tomb(DIED),
            7,
            "tombstone: bad ExitCode line",
        ),
        (
            "code 01",
            tomb(&format!("{DIED}ExitCode: 01\n")),
            7,
            "tombstone: bad ExitCode line",
        ),
        (
            "code 256",
            tomb(&format!("{DIED}ExitCode: 256\n")),
            7,
            "tombstone: bad ExitCode line",
        ),
        (
            "signal without number",
            tomb(&format!("{DIED}ExitCode: 137\nSignal: SIGKILL\n")),
            7,
            "tombstone: bad SignalNumber line",
        ),
        (
            "signal disagrees",
            tomb(&format!(
                "{DIED}ExitCode: 137\nSignal: SIGTERM\nSignalNumber: 9\n"
            )),
            7,
            "tombstone: Signal, SignalNumber and ExitCode disagree",
        ),
        (
            "code disagrees",
            tomb(&format!(
                "{DIED}ExitCode: 1\nSignal: SIGKILL\nSignalNumber: 9\n"
            )),
            7,
            "tombstone: Signal, SignalNumber and ExitCode disagree",
        ),
        (
            "neither born nor reason",
            never("ExitCode: 3\n"),
            7,
            "tombstone: Born and Reason: exactly one of them",
        ),
        (
            "born and reason",
            tomb(&format!("{DIED}ExitCode: 3\nReason: \"x\"\n")),
            7,
            "tombstone: Born and Reason: exactly one of them",
        ),
        (
            "reason and signal",
            never("ExitCode: 143\nSignal: SIGTERM\nSignalNumber: 15\nReason: \"x\"\n"),
            7,
            "tombstone: Born and Reason: exactly one of them",
        ),
        (
            "reason unquoted",
            never("ExitCode: 127\nReason: x\n"),
            7,
            "tombstone: bad Reason line",
        ),
        (
            "reason with a bare quote",
            never("ExitCode: 127\nReason: \"a\"b\"\n"),
            7,
            "tombstone: bad Reason line",
        ),
        (
            "reason with a bad escape",
            never("ExitCode: 127\nReason: \"a\\nb\"\n"),
            7,
            "tombstone: bad Reason line",
        ),
        (
            "reason with a tab",
            never("ExitCode: 127\nReason: \"a\tb\"\n"),
            7,
            "tombstone: bad Reason line",
        ),
        (
            "reason of 513 bytes",
            never(&format!("ExitCode: 127\nReason: \"{}\"\n", "r".repeat(513))),
            7,
            "tombstone: bad Reason line",
        ),
        (
            "reason of 512 bytes",
            never(&format!("ExitCode: 127\nReason: \"{}\"\n", "r".repeat(512))),
            12,
            "exited: code 127 at",
        ),
        (
            "extra line",
            tomb(&format!("{DIED}ExitCode: 3\nExtra: 1\n")),
            7,
            "tombstone: unexpected line",
        ),
        (
            "extra line after born",
            tomb("Extra: 1\n"),
            7,
            "tombstone: unexpected line",
        ),
        (
            "too large",
            tomb(&format!("{DIED}ExitCode: 3\n{}\n", "x".repeat(2100))),
            7,
            "tombstone: too large",
        ),
        (
            "a tombstone directory",
            Vec::new(),
            7,
            "tombstone: not a regular file",
        ),
    ]
}

/// Every row: health.sh under each shell gives the row's code and words
/// (the contract, doc/state-format.md), and — wherever this build's
/// `liveness probe` gives `exited` — exactly `liveness probe`'s line.
#[test]
fn both_probes_read_the_tombstone_alike() {
    let shells = common::shells("both_probes_read_the_tombstone_alike");
    // Does this build's `liveness probe` know D4 yet (it lands with the
    // supervisor's change)? Then every row is compared line for line.
    let rd = Rundir::new();
    rd.write("u", "tombstone", &rows()[0].1);
    let rust_knows = bounded::probe(rd.path(), "u", &[]).code() == Some(12);
    if !rust_knows {
        eprintln!(
            "\n*** NOTE: liveness probe does not say `exited` (12) yet: \
             health.sh is held to the rows alone ***\n"
        );
    }
    let mut failures = Vec::new();
    for (what, bytes, code, words) in rows() {
        let rd = Rundir::new();
        if what == "a tombstone directory" {
            std::fs::create_dir_all(rd.unit_dir("u").join("tombstone")).unwrap();
        } else {
            rd.write("u", "tombstone", &bytes);
        }
        let rust = bounded::probe(rd.path(), "u", &[]);
        if rust_knows && rust.code() != Some(code) {
            failures.push(format!("{what}: liveness probe: {}", rust.describe()));
        }
        for s in &shells {
            let out = bounded::health_sh(s, rd.path(), "u", &[]);
            if out.code() != Some(code) || !out.stderr().contains(words) {
                failures.push(format!("{what}: {}: {}", s.name, out.describe()));
            } else if rust_knows && out.stderr() != rust.stderr() {
                failures.push(format!(
                    "{what}: {}: {:?}, liveness probe {:?}",
                    s.name,
                    out.stderr(),
                    rust.stderr()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Real tombstones: `liveness run` around a child that exits 3 and one that
/// SIGTERMs itself; health.sh reads each as `exited` with the Died time
/// the file holds, and a unit whose child still runs is not exited.
#[test]
fn health_sh_reads_what_liveness_run_writes() {
    let shells = common::shells("health_sh_reads_what_liveness_run_writes");
    for (script, how) in [
        ("exit 3", "code 3 at "),
        ("kill -TERM $$", "killed by SIGTERM at "),
    ] {
        let rd = Rundir::new();
        let r = rd.liveness("u", &["run", "--", "sh", "-c", script]);
        assert_ne!(r.code, 0, "{script}: {}", r.stderr);
        let tomb = String::from_utf8(rd.read("u", "tombstone").unwrap()).unwrap();
        let died = tomb
            .lines()
            .find_map(|l| l.strip_prefix("Died: \""))
            .and_then(|t| t.strip_suffix('"'))
            .unwrap()
            .to_owned();
        for s in &shells {
            match bounded::health_sh(s, rd.path(), "u", &[]) {
                Outcome::Done(r, _) => {
                    assert_eq!(r.code, 12, "{script} under {}: {}", s.name, r.stderr);
                    assert_eq!(r.stderr, format!("liveness: unit u: exited: {how}{died}\n"));
                }
                hung => panic!("{script} under {}: {}", s.name, hung.describe()),
            }
        }
    }
    // Negative control: while the child runs there is a pid: not exited.
    let rd = Rundir::new();
    let mut run = common::Tree::spawn(
        Command::new(common::bin())
            .args(["run", "--ready-on-start", "--", "sleep", "600"])
            .env("LIVENESS_RUNDIR", rd.path())
            .env("LIVENESS_UNIT_NAME", "u"),
    );
    assert!(common::wait_until(common::PATIENCE, || rd
        .read("u", "ready")
        .is_some()));
    for s in &shells {
        let out = bounded::health_sh(s, rd.path(), "u", &[]);
        assert_eq!(out.code(), Some(0), "{}: {}", s.name, out.describe());
    }
    run.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = run.wait_timeout(common::PATIENCE);
}

/// An environment: variable, value.
type Env = Vec<(&'static str, String)>;

/// The unit and run directory come from kubexit's variables too
/// (doc/state-format.md, "Where"): `LIVENESS_UNIT_NAME`, else
/// `KUBEXIT_NAME`; `LIVENESS_RUNDIR`, else `$KUBEXIT_GRAVEYARD/.liveness`
/// (trailing slashes dropped), else `/graveyard/.liveness` when only
/// `KUBEXIT_NAME` is set, else `/run`; empty counts as unset. health.sh
/// finds a healthy unit there through its fast path and through its full
/// judgement (`--live --live`), names the directory it looked for when the
/// unit is missing, and says what `liveness probe` says wherever this
/// build's probe follows the same rules.
#[test]
fn health_sh_finds_the_unit_as_every_command_does() {
    let shells = common::shells("health_sh_finds_the_unit_as_every_command_does");
    let tmp = Rundir::new();
    let g = tmp.path().join("graveyard");
    let r = tmp.path().join("run");
    let gs = g.to_str().unwrap().to_owned();
    let rs = r.to_str().unwrap().to_owned();
    // (environment, where the unit is, its name)
    let rows: Vec<(Env, std::path::PathBuf, &str)> = vec![
        (
            vec![
                ("LIVENESS_RUNDIR", rs.clone()),
                ("KUBEXIT_NAME", "k".into()),
            ],
            r.clone(),
            "k",
        ),
        (
            vec![
                ("KUBEXIT_GRAVEYARD", format!("{gs}/")),
                ("KUBEXIT_NAME", "k".into()),
            ],
            g.join(".liveness"),
            "k",
        ),
        (
            vec![
                ("KUBEXIT_GRAVEYARD", format!("{gs}///")),
                ("LIVENESS_UNIT_NAME", "u".into()),
                ("KUBEXIT_NAME", "k".into()),
            ],
            g.join(".liveness"),
            "u",
        ),
        (
            vec![
                ("LIVENESS_RUNDIR", String::new()),
                ("KUBEXIT_GRAVEYARD", gs.clone()),
                ("LIVENESS_UNIT_NAME", "u".into()),
            ],
            g.join(".liveness"),
            "u",
        ),
    ];
    let owner = std::process::id().to_string();
    let run = |program: &std::ffi::OsStr, args: &[&str], env: &[(&str, String)]| -> Outcome {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        common::run_bounded(&mut cmd, bounded::LIMIT)
    };
    let script = common::repo("scripts/health.sh");
    let script = script.to_str().unwrap();
    let mut failures = Vec::new();
    for (env, rundir, unit) in &rows {
        let rundir_s = rundir.to_str().unwrap();
        let expected_missing =
            format!("liveness: unit {unit}: no state: no unit directory {rundir_s}/{unit}\n");
        for (state, code) in [("missing", 3), ("healthy", 0)] {
            if state == "healthy" {
                for args in [&["load", "--pid", &owner][..], &["set", "0"]] {
                    let mut a = args.to_vec();
                    a.extend(["-u", unit, "-r", rundir_s]);
                    let out = run(common::bin().as_os_str(), &a, &[]);
                    assert_eq!(out.code(), Some(0), "{a:?}: {}", out.describe());
                }
            }
            let rust = run(common::bin().as_os_str(), &["probe"], env);
            let rust_follows =
                rust.code() == Some(code) && (code == 0 || rust.stderr() == expected_missing);
            for s in &shells {
                for extra in [&[][..], &["--live", "--live"]] {
                    let mut args: Vec<&str> = s.argv[1..].to_vec();
                    args.push(script);
                    args.extend_from_slice(extra);
                    let out = run(std::ffi::OsStr::new(s.argv[0]), &args, env);
                    let ok = out.code() == Some(code)
                        && (code == 0 || out.stderr() == expected_missing)
                        && (!rust_follows || out.stderr() == rust.stderr());
                    if !ok {
                        failures.push(format!(
                            "{env:?} {state} {}{extra:?}: {} (liveness probe: {})",
                            s.name,
                            out.describe(),
                            rust.describe()
                        ));
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(rundir.join(unit));
    }
    // Only KUBEXIT_NAME: kubexit's default graveyard (not created here).
    for s in &shells {
        let mut args: Vec<&str> = s.argv[1..].to_vec();
        args.push(script);
        let out = run(
            std::ffi::OsStr::new(s.argv[0]),
            &args,
            &[("KUBEXIT_NAME", "kx".into())],
        );
        if !std::path::Path::new("/graveyard/.liveness/kx").exists() {
            assert_eq!(
                out.stderr(),
                "liveness: unit kx: no state: no unit directory /graveyard/.liveness/kx\n",
                "{}",
                s.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A tombstone the probe may not read (mode 000, probe run as `nobody`),
/// with no pid: corrupt for health.sh ("unreadable"), and the same line as
/// `liveness probe` once the probe gives `exited`; readable again, it is
/// `exited` (the control).
#[test]
fn an_unreadable_tombstone_is_corrupt() {
    let test = "an_unreadable_tombstone_is_corrupt";
    let Some(nobody) = bounded::AsNobody::new(test) else {
        return;
    };
    let shells = common::shells(test);
    let rundir = nobody.dir("run");
    std::fs::create_dir_all(rundir.join("u")).unwrap();
    let path = rundir.join("u/tombstone");
    std::fs::write(&path, &rows()[0].1).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (mode, code, words) in [
        (0o644, 12, "exited: code 3 at"),
        (
            0o000,
            7,
            "corrupt state: tombstone: unreadable: Permission denied",
        ),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let rust = nobody.probe(&rundir, "u", &[]);
        let rust_knows = rust.code() == Some(code) && rust.stderr().contains(words);
        for s in &shells {
            let out = nobody.health_sh(s, &rundir, "u", &[]);
            assert_eq!(
                out.code(),
                Some(code),
                "{mode:o} {}: {}",
                s.name,
                out.describe()
            );
            assert!(
                out.stderr().contains(words),
                "{}: {}",
                s.name,
                out.describe()
            );
            if rust_knows {
                assert_eq!(out.stderr(), rust.stderr(), "{mode:o} {}", s.name);
            }
        }
    }
}
