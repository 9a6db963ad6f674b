//! Atomicity under load: readers racing a writer never see a torn, empty or
//! mixed file, and a writer killed at any instant never leaves one behind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test reports failure by panicking

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Proc, Rundir};
use liveness::{Health, Mode, Probe, Unit, Verdict};

/// The unit `flip`, loaded here and healthy, for a writer thread to flip.
fn healthy_flip(rd: &Rundir) -> Arc<Health> {
    let health = Arc::new(
        Health::builder()
            .unit("flip")
            .rundir(rd.path())
            .build()
            .unwrap(),
    );
    health.load().unwrap();
    health.set(0).unwrap();
    health
}

/// One writer flips `set(0)`/`set(1)` as fast as it can while readers read
/// the raw file and run full probes: over 100,000 reads, every one sees a
/// complete value.
#[test]
fn readers_never_see_a_torn_write() {
    let rd = Rundir::new();
    let health = healthy_flip(&rd);
    let unit = Unit::new("flip", rd.path()).unwrap();
    let error_path = unit.dir().join("error");

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (health, stop, writes) = (health.clone(), stop.clone(), writes.clone());
        std::thread::spawn(move || {
            let mut code = 0;
            while !stop.load(Ordering::Relaxed) {
                code ^= 1;
                if code == 1 {
                    health.set_with_message(1, "flipping").unwrap();
                } else {
                    health.set(0).unwrap();
                }
                writes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    const READS_PER_READER: u64 = 60_000;
    let readers: Vec<_> = (0..2)
        .map(|i| {
            let (unit, error_path) = (unit.clone(), error_path.clone());
            std::thread::spawn(move || {
                let probe = Probe::new(Mode::Live);
                let mut bad = Vec::new();
                for n in 0..READS_PER_READER {
                    if i == 0 || n % 4 != 0 {
                        match std::fs::read(&error_path) {
                            Ok(b) if b == b"0\n" || b == b"1\n" => {}
                            other => bad.push(format!("raw read {n}: {other:?}")),
                        }
                    } else {
                        let r = probe.check(&unit);
                        if !matches!(r.verdict, Verdict::Ok | Verdict::Unhealthy) {
                            bad.push(format!("probe {n}: {r}"));
                        }
                    }
                }
                bad
            })
        })
        .collect();
    let bad: Vec<String> = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let writes = writes.load(Ordering::Relaxed);
    eprintln!("{} reads against {writes} writes", 2 * READS_PER_READER);
    assert!(writes > 1000, "the writer barely ran: {writes} writes");
    assert!(
        bad.is_empty(),
        "{} malformed reads, first: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

/// Other processes see the same: `liveness probe` and `health.sh` racing
/// the writer only ever report healthy or unhealthy.
#[test]
fn probe_processes_never_see_a_torn_write() {
    let rd = Rundir::new();
    let health = healthy_flip(&rd);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (health, stop) = (health.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut code = 0;
            while !stop.load(Ordering::Relaxed) {
                code ^= 1;
                health.set_with_message(code, "flipping").unwrap();
            }
        })
    };
    let shells = common::shells("probe_processes_never_see_a_torn_write");
    let mut bad = Vec::new();
    for n in 0..300 {
        let r = rd.liveness("flip", &["probe"]);
        if r.code != 0 && r.code != 1 {
            bad.push(format!("liveness probe {n}: {} {}", r.code, r.stderr));
        }
        // One shell per round, in turn.
        if let Some(shell) = shells.get(n % shells.len().max(1)) {
            let r = rd.health_sh(shell, "flip", &[] as &[&str]);
            if r.code != 0 && r.code != 1 {
                bad.push(format!("{} {n}: {} {}", shell.name, r.code, r.stderr));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(bad.is_empty(), "{bad:#?}");
}

/// A writer SIGKILLed at an arbitrary instant of its write loop, fifty
/// times over, never leaves a malformed file: the next reader sees the last
/// complete value, and the next `load` removes the dead writer's temporary
/// files.
#[test]
fn a_writer_killed_mid_write_never_leaves_a_malformed_file() {
    let rd = Rundir::new();
    let unit = Unit::new("victim", rd.path()).unwrap();
    let probe = Probe::new(Mode::Live);
    let mut temps_seen = 0;
    for round in 0..50u64 {
        let mut cmd = std::process::Command::new(common::example("state_writer"));
        cmd.args([rd.path().to_str().unwrap(), "victim", "flip"]);
        let mut writer = Proc::spawn(&mut cmd);
        assert_eq!(writer.next_line(), "ready");
        // Let it write for a varying while (this sets where the kill lands;
        // nothing is asserted about time).
        std::thread::sleep(Duration::from_micros(200 + round * 397 % 5000));
        writer.signal(nix::sys::signal::Signal::SIGKILL);
        writer.exit();

        for file in ["error", "heartbeat", "pid", "starttime"] {
            let bytes = rd.read("victim", file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            let ok = match file {
                "error" => text == "0\n" || text == "1\n",
                "heartbeat" => {
                    let (d, s) = text.trim_end().split_once(' ').unwrap_or(("", ""));
                    text.ends_with('\n') && d.parse::<u64>().is_ok() && s.parse::<u64>().is_ok()
                }
                _ => text.ends_with('\n') && text.trim_end().parse::<u64>().is_ok(),
            };
            assert!(ok, "round {round}: {file} is {text:?}");
        }
        let r = probe.check(&unit);
        assert_eq!(r.verdict, Verdict::OwnerGone, "round {round}: {r}");
        temps_seen += std::fs::read_dir(unit.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tmp.")
            })
            .count();
    }
    // The next owner cleans up whatever the dead writers left.
    let h = Health::builder()
        .unit("victim")
        .rundir(rd.path())
        .build()
        .unwrap();
    h.load().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(unit.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    eprintln!("temporary files left by killed writers over 50 rounds: {temps_seen}");
}

/// A change of owner (`liveness run` handing the unit from itself to its
/// child, a new incarnation) is never seen as a reused pid, by
/// `liveness probe`'s reader or by `health.sh`: `pid`, `starttime` and
/// `pidns` are replaced in the documented order and read with a re-check.
#[test]
fn a_change_of_owner_is_never_seen_as_a_reused_pid() {
    let rd = Rundir::new();
    let unit = Unit::new("handoff", rd.path()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, reads, unit) = (stop.clone(), reads.clone(), unit.clone());
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = Probe::new(Mode::Startup).check(&unit);
                reads.fetch_add(1, Ordering::Relaxed);
                if r.to_string().contains("reused") {
                    bad.push(r.to_string());
                }
            }
            bad
        })
    };
    // The shell probe in a loop, in parallel, printing only a "reused" line.
    // Killed with its loop if the test fails before the stop file.
    let mut shell = Proc::spawn(std::process::Command::new("dash").arg("-c").arg(format!(
        "while [ ! -e {stop} ]; do dash {sh} -u handoff -r {rd} --startup 2>&1 | grep reused; done",
        stop = rd.path().join("stop").display(),
        sh = common::repo("scripts/health.sh").display(),
        rd = rd.path().display(),
    )));
    for _ in 0..150 {
        let st = std::process::Command::new(common::bin())
            .args(["run", "--unit", "handoff", "--rundir"])
            .arg(rd.path())
            .args(["--", "true"])
            .status()
            .unwrap();
        assert!(st.success());
    }
    stop.store(true, Ordering::Relaxed);
    std::fs::write(rd.path().join("stop"), b"").unwrap();
    let bad = reader.join().unwrap();
    shell.exit();
    let seen = shell.lines();
    assert!(reads.load(Ordering::Relaxed) > 150, "the reader barely ran");
    assert!(
        bad.is_empty(),
        "liveness probe saw {} reused pids: {:?}",
        bad.len(),
        &bad[..bad.len().min(3)]
    );
    assert!(seen.is_empty(), "health.sh saw: {seen:?}");
}
