//! End-to-end scenarios under a kubelet-shaped prober (`tests/common/kubelet.rs`):
//! the probes run as the kubelet runs them — periods, deadlines, thresholds,
//! startup gating, restarts — and each scenario asserts when the container
//! is restarted or unrouted. Periods are 100 ms so that a scenario takes
//! seconds; assertions are about the order of events, never durations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/kubelet.rs"]
#[allow(dead_code)] // the harness is wider than the scenarios that use it today
mod kubelet;

use std::ffi::OsString;
use std::time::Duration;

use common::{PATIENCE, Rundir, bin, example, repo};
use kubelet::{ContainerSpec, Event, Kind, Kubelet, ProbeSpec, RestartPolicy, position};

/// The two exec probes the guide offers: the binary and the shell script.
fn probe_commands() -> Vec<(&'static str, Vec<OsString>)> {
    vec![
        (
            "liveness probe",
            vec![bin().into_os_string(), "probe".into()],
        ),
        (
            "dash health.sh",
            vec!["dash".into(), repo("scripts/health.sh").into_os_string()],
        ),
    ]
}

fn with(mut base: Vec<OsString>, extra: &[&str]) -> Vec<OsString> {
    base.extend(extra.iter().map(OsString::from));
    base
}

fn service(rundir: &Rundir, unit: &str, args: &[&str]) -> ContainerSpec {
    let mut cmd = vec![example("service").into_os_string()];
    cmd.extend(args.iter().map(OsString::from));
    ContainerSpec::new(unit, cmd)
        .env("LIVENESS_RUNDIR", rundir.path())
        .env("LIVENESS_UNIT_NAME", unit)
}

/// The three probes a Deployment declares, with the given probe command.
fn probed(spec: ContainerSpec, probe: &[OsString], liveness_failures: u32) -> ContainerSpec {
    spec.probe(
        Kind::Startup,
        ProbeSpec::exec(with(probe.to_vec(), &["--startup"])).failure_threshold(100),
    )
    .probe(
        Kind::Liveness,
        ProbeSpec::exec(probe.to_vec()).failure_threshold(liveness_failures),
    )
    .probe(
        Kind::Readiness,
        ProbeSpec::exec(with(probe.to_vec(), &["--ready"])).failure_threshold(1),
    )
}

fn count(events: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

fn restarted(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::Killing { .. }))
}

fn loaded_pid(events: &[Event], n: u32) -> Option<u32> {
    events.iter().find_map(|e| match e {
        Event::Output { n: m, line } if *m == n => line.strip_prefix("loaded ")?.parse().ok(),
        _ => None,
    })
}

/// A service that loads, becomes ready, turns unhealthy and recovers is
/// unrouted while unhealthy and routed again after, without a restart; left
/// unhealthy, it is restarted once liveness crosses its threshold.
#[test]
fn unhealthy_service_is_unrouted_then_restarted() {
    for (name, probe) in probe_commands() {
        let rundir = Rundir::new();
        // Liveness tolerates 30 failures (3 s) so the recovery can be seen.
        let pod = Kubelet::start(probed(
            service(&rundir, "api", &["--auto-ready"]),
            &probe,
            30,
        ));
        pod.wait_for(&format!("{name}: ready"), PATIENCE, |ev| {
            ev.contains(&Event::Ready { n: 1, ready: true })
        });

        pod.send("set 3 database unreachable");
        pod.wait_for(&format!("{name}: unrouted"), PATIENCE, |ev| {
            ev.contains(&Event::Ready { n: 1, ready: false })
        });
        let ev = pod.events();
        let failed = ev.iter().find_map(|e| match e {
            Event::Probed {
                kind: Kind::Readiness,
                ok: false,
                output,
                exit,
                ..
            } => Some((output.clone(), *exit)),
            _ => None,
        });
        let (output, exit) = failed.expect("a failed readiness probe");
        assert_eq!(exit, Some(1), "{name}: unhealthy is exit 1");
        assert!(
            output.contains("unit api: unhealthy: error 3: database unreachable"),
            "{name}: the probe says why in one line: {output:?}"
        );

        pod.send("set 0");
        pod.wait_for(&format!("{name}: routed again"), PATIENCE, |ev| {
            count(ev, |e| *e == Event::Ready { n: 1, ready: true }) == 2
        });
        assert!(
            !restarted(&pod.events()),
            "{name}: a recovery is not a restart:\n{}",
            pod.dump()
        );

        pod.send("set 3 database unreachable");
        pod.wait_for(&format!("{name}: restart"), PATIENCE, |ev| {
            ev.iter()
                .any(|e| matches!(e, Event::Killing { n: 1, why } if why.contains("error 3")))
        });
        pod.wait_for(
            &format!("{name}: the new incarnation is ready"),
            PATIENCE,
            |ev| ev.contains(&Event::Ready { n: 2, ready: true }),
        );
    }
}

/// A service that hangs (stops beating with error 0) goes stale and is
/// restarted; it is never restarted while it still beats.
#[test]
fn hung_service_is_restarted() {
    for (name, probe) in probe_commands() {
        let rundir = Rundir::new();
        let pod = Kubelet::start(probed(
            service(&rundir, "hangs", &["--auto-ready"]),
            &probe,
            3,
        ));
        pod.wait_for(&format!("{name}: ready"), PATIENCE, |ev| {
            ev.contains(&Event::Ready { n: 1, ready: true })
        });
        // Negative control: beating, it passes liveness many times over.
        pod.wait_for(
            &format!("{name}: ten passing liveness probes"),
            PATIENCE,
            |ev| {
                count(ev, |e| {
                    matches!(
                        e,
                        Event::Probed {
                            n: 1,
                            kind: Kind::Liveness,
                            ok: true,
                            ..
                        }
                    )
                }) >= 10
            },
        );
        assert!(!restarted(&pod.events()), "{name}:\n{}", pod.dump());

        pod.send("hang");
        pod.wait_for(&format!("{name}: restart for staleness"), PATIENCE, |ev| {
            ev.iter().any(
                |e| matches!(e, Event::Killing { n: 1, why } if why.contains("heartbeat stale")),
            )
        });
        pod.wait_for(
            &format!("{name}: the new incarnation is ready"),
            PATIENCE,
            |ev| ev.contains(&Event::Ready { n: 2, ready: true }),
        );
    }
}

/// A service SIGKILLed inside a container that keeps running (a wrapper
/// shell) fails liveness as "owner gone" and the container is restarted.
#[test]
fn sigkilled_service_in_a_live_container_is_restarted() {
    for (name, probe) in probe_commands() {
        let rundir = Rundir::new();
        let script = format!(
            "{} --auto-ready; exec sleep 1000",
            example("service").display()
        );
        let spec = ContainerSpec::new("wrapped", ["sh", "-c", script.as_str()])
            .env("LIVENESS_RUNDIR", rundir.path())
            .env("LIVENESS_UNIT_NAME", "wrapped");
        let pod = Kubelet::start(probed(spec, &probe, 3));
        pod.wait_for(&format!("{name}: ready"), PATIENCE, |ev| {
            ev.contains(&Event::Ready { n: 1, ready: true })
        });
        let pid = loaded_pid(&pod.events(), 1).expect("the service printed its pid");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        pod.wait_for(
            &format!("{name}: restart for a dead owner"),
            PATIENCE,
            |ev| {
                ev.iter().any(
                    |e| matches!(e, Event::Killing { n: 1, why } if why.contains("owner gone")),
                )
            },
        );
        pod.wait_for(
            &format!("{name}: the new incarnation is ready"),
            PATIENCE,
            |ev| ev.contains(&Event::Ready { n: 2, ready: true }),
        );
    }
}

/// A restarted container finds the previous incarnation's files in its
/// `emptyDir` (pid, error 0, ready, a fresh heartbeat): until the new process
/// has loaded, it is neither started nor ready, and the old state never
/// passes for it.
#[test]
fn restarted_container_is_not_judged_by_previous_state() {
    for (name, probe) in probe_commands() {
        let rundir = Rundir::new();
        let spec = service(&rundir, "batch", &["--start-ms", "1500", "--auto-ready"]);
        let pod = Kubelet::start(probed(spec, &probe, 3));
        pod.wait_for(&format!("{name}: ready"), PATIENCE, |ev| {
            ev.contains(&Event::Ready { n: 1, ready: true })
        });
        // The runtime's OOM killer: no reset, every file stays behind.
        pod.signal(nix::sys::signal::Signal::SIGKILL);
        pod.wait_for(
            &format!("{name}: second incarnation ready"),
            PATIENCE,
            |ev| ev.contains(&Event::Ready { n: 2, ready: true }),
        );
        let ev = pod.events();
        let loaded = position(
            &ev,
            |e| matches!(e, Event::Output { n: 2, line } if line.starts_with("loaded ")),
        )
        .expect("incarnation 2 loaded");
        let started = position(&ev, |e| *e == Event::StartupSucceeded { n: 2 }).unwrap();
        let ready = position(&ev, |e| *e == Event::Ready { n: 2, ready: true }).unwrap();
        assert!(
            loaded < started && loaded < ready,
            "{name}: incarnation 2 passed on the old state:\n{}",
            pod.dump()
        );
        // While it was starting, the probes said why it was not started.
        let before: Vec<&Event> = ev[..loaded]
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::Probed {
                        n: 2,
                        kind: Kind::Startup,
                        ..
                    }
                )
            })
            .collect();
        assert!(
            !before.is_empty(),
            "{name}: no startup probe ran before the load:\n{}",
            pod.dump()
        );
        // Each one failed: "owner gone" (the old pid is dead), or, for a
        // probe that ran during the new process's load, "starting".
        for e in &before {
            let Event::Probed { ok, exit, .. } = e else {
                unreachable!()
            };
            assert!(!ok && matches!(exit, Some(4 | 6)), "{name}: {e:?}");
        }
        assert!(
            before.iter().any(|e| matches!(e,
                Event::Probed { exit: Some(4), output, .. } if output.contains("owner gone"))),
            "{name}: no probe said the old owner is gone:\n{}",
            pod.dump()
        );
    }
}

/// The harness itself: a probe that outlives its deadline is killed and
/// counted as a failure, and only 10 KiB of its output is kept.
#[test]
fn harness_enforces_probe_deadline_and_output_cap() {
    let rundir = Rundir::new();
    let spec = service(&rundir, "h", &["--auto-ready"])
        .probe(
            Kind::Readiness,
            ProbeSpec::exec([
                "sh",
                "-c",
                "head -c 20000 /dev/zero | tr '\\0' x; exec sleep 10",
            ])
            .timeout(Duration::from_millis(300)),
        )
        .probe(
            Kind::Liveness,
            ProbeSpec::exec(["sh", "-c", "head -c 20000 /dev/zero | tr '\\0' y; exit 1"])
                .failure_threshold(1000),
        );
    let pod = Kubelet::start(spec);
    pod.wait_for("a timed-out and a verbose probe", PATIENCE, |ev| {
        ev.iter().any(|e| {
            matches!(
                e,
                Event::Probed {
                    kind: Kind::Readiness,
                    ..
                }
            )
        }) && ev.iter().any(|e| {
            matches!(
                e,
                Event::Probed {
                    kind: Kind::Liveness,
                    ..
                }
            )
        })
    });
    for e in pod.events() {
        match e {
            Event::Probed {
                kind: Kind::Readiness,
                ok,
                exit,
                output,
                ..
            } => {
                assert!(!ok && exit.is_none(), "{output}");
                assert!(output.contains("timed out"), "{output}");
            }
            Event::Probed {
                kind: Kind::Liveness,
                ok,
                exit,
                output,
                ..
            } => {
                assert!(!ok && exit == Some(1));
                assert_eq!(output.len(), kubelet::MAX_PROBE_OUTPUT);
            }
            _ => {}
        }
    }
    assert!(!pod.events().contains(&Event::Ready { n: 1, ready: true }));
}

/// The last `Exited` of a container with its time.
fn exit_of(pod: &Kubelet) -> Option<(std::time::Instant, Option<i32>, Option<i32>)> {
    pod.timed_events()
        .into_iter()
        .rev()
        .find_map(|(t, e)| match e {
            Event::Exited { code, signal, .. } => Some((t, code, signal)),
            _ => None,
        })
}

fn run_container(rundir: &Rundir, unit: &str, run_args: &[&str], cmd: &[&str]) -> ContainerSpec {
    let mut argv: Vec<OsString> = vec![bin().into(), "run".into(), "--unit".into(), unit.into()];
    argv.extend(run_args.iter().map(OsString::from));
    argv.push("--".into());
    argv.extend(cmd.iter().map(OsString::from));
    ContainerSpec::new(unit, argv)
        .env("LIVENESS_RUNDIR", rundir.path())
        .env("PATH", path_with_liveness())
        .restart(RestartPolicy::Never)
}

/// `$PATH` with the binary under test first, so that scripts in a
/// container say `liveness ready` as they would in an image.
fn path_with_liveness() -> OsString {
    let mut p = bin().parent().unwrap().as_os_str().to_owned();
    p.push(":");
    p.push(std::env::var_os("PATH").unwrap_or_default());
    p
}

/// A sidecar's program: on SIGTERM it asks whether the app is still alive
/// (`liveness probe`: 0 or 6 alive, 3 or 4 gone), says so, and exits 143.
const ON_TERM: &str = "trap 'liveness probe --unit app >/dev/null 2>&1; echo app-probe-$?; exit 143' TERM; \
                       sleep 1000 & wait";

/// A Job's three-container pod sharing a run directory: the app waits for
/// the database (birth dependency), finishes, and the database and the log
/// shipper (death dependencies) stop after it; the sidecars' SIGTERM exits
/// are mapped to 0, so the pod's outcome is the app's exit code.
#[test]
fn job_pod_starts_and_stops_in_order() {
    let rundir = Rundir::new();
    let ready = |unit: &str| {
        ProbeSpec::exec([
            bin().into_os_string(),
            "probe".into(),
            "--unit".into(),
            unit.into(),
            "--ready".into(),
        ])
    };
    // The database becomes ready a moment after it starts, by itself.
    let db = Kubelet::start(
        run_container(
            &rundir,
            "db",
            &["--death-deps", "app", "--exit-code-map", "143=0"],
            &[
                "sh",
                "-c",
                &format!("sleep 1; liveness set 0 && liveness ready && echo db-ready; {ON_TERM}"),
            ],
        )
        .probe(Kind::Readiness, ready("db")),
    );
    let app = Kubelet::start(run_container(
        &rundir,
        "app",
        &["--birth-deps", "db", "--birth-timeout", "20s"],
        &[
            "sh",
            "-c",
            "liveness probe --unit db --ready && echo db-was-ready; echo working; exit 3",
        ],
    ));
    let shipper = Kubelet::start(run_container(
        &rundir,
        "shipper",
        &[
            "--death-deps",
            "app",
            "--ready-on-start",
            "--exit-code-map",
            "143=0",
        ],
        &["sh", "-c", ON_TERM],
    ));
    for pod in [&app, &db, &shipper] {
        pod.wait_for("exit", PATIENCE, |ev| {
            ev.iter().any(|e| matches!(e, Event::Exited { .. }))
        });
    }
    let out = app.events();
    assert!(
        out.contains(&Event::Output {
            n: 1,
            line: "db-was-ready".into()
        }),
        "the app started before the database was ready:\n{}",
        app.dump()
    );
    let (_, app_code, _) = exit_of(&app).unwrap();
    let (_, db_code, db_sig) = exit_of(&db).unwrap();
    let (_, sh_code, sh_sig) = exit_of(&shipper).unwrap();
    assert_eq!(app_code, Some(3), "the app's own exit code");
    assert_eq!(
        (db_code, db_sig),
        (Some(0), None),
        "db: SIGTERM's 143 mapped to 0:\n{}",
        db.dump()
    );
    assert_eq!(
        (sh_code, sh_sig),
        (Some(0), None),
        "shipper:\n{}",
        shipper.dump()
    );
    // The order: each sidecar was stopped after the app had ended, as its
    // own probe of the app, run when SIGTERM arrived, says.
    for (name, pod) in [("db", &db), ("shipper", &shipper)] {
        let said = pod.events().into_iter().find_map(|e| match e {
            Event::Output { line, .. } => line.strip_prefix("app-probe-").map(str::to_owned),
            _ => None,
        });
        assert!(
            matches!(said.as_deref(), Some("4" | "12")),
            "{name} was stopped while the app was alive (probe exit {said:?}):\n{}",
            pod.dump()
        );
        let t = String::from_utf8(rundir.read(name, "tombstone").expect("tombstone")).unwrap();
        assert!(t.contains("ExitCode: 143\n"), "{name}: {t}");
    }
    let app_tomb = String::from_utf8(rundir.read("app", "tombstone").unwrap()).unwrap();
    assert!(app_tomb.contains("ExitCode: 3\n"), "{app_tomb}");
}

/// Counts zombies whose parent is `ppid` (host pids), from the host's /proc.
fn zombies_of(ppid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                return false;
            };
            let mut f = rest.split(' ');
            f.next() == Some("Z") && f.next().and_then(|p| p.parse::<u32>().ok()) == Some(ppid)
        })
        .count()
}

/// The first child of `pid` (the PID 1 of the namespace `unshare --fork` made).
fn first_child(pid: u32) -> Option<u32> {
    let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    kids.split_whitespace().next()?.parse().ok()
}

/// A pod whose process is PID 1 of its own PID namespace, probed by exec
/// probes that leave an orphan each time (as a probe killed at its deadline
/// does): under `liveness run` as PID 1 no zombie accumulates; under a PID 1
/// that does not reap (the negative control), one zombie per probe does.
#[test]
fn pid1_reaps_what_exec_probes_leave_behind() {
    let test = "pid1_reaps_what_exec_probes_leave_behind";
    if !common::require(common::have("nsenter"), test, "nsenter")
        || !common::require_unshare(test, &["--pid", "--fork", "--mount-proc"])
    {
        return;
    }
    let service = example("service").into_os_string().into_string().unwrap();
    let live = bin().into_os_string().into_string().unwrap();
    for reaping in [true, false] {
        let rundir = Rundir::new();
        let inner: Vec<String> = if reaping {
            vec![
                live.clone(),
                "run".into(),
                "--unit".into(),
                "p".into(),
                "--".into(),
                service.clone(),
                "--auto-ready".into(),
            ]
        } else {
            vec![
                "sh".into(),
                "-c".into(),
                format!("{service} --auto-ready & exec sleep 1000"),
            ]
        };
        let mut argv = vec![
            "unshare".to_owned(),
            "--pid".into(),
            "--fork".into(),
            "--mount-proc".into(),
        ];
        argv.extend(inner);
        let mut spec = ContainerSpec::new("pid1", argv)
            .env("LIVENESS_RUNDIR", rundir.path())
            .env("LIVENESS_UNIT_NAME", "p");
        // Each probe leaves a short-lived orphan behind in the namespace.
        spec = spec.probe(
            Kind::Liveness,
            ProbeSpec::exec([
                "sh".to_owned(),
                "-c".into(),
                format!("sleep 0.01 & {live} probe"),
            ])
            .failure_threshold(1000),
        );
        spec.probe_prefix = Some(std::sync::Arc::new(|pid: u32| {
            let init = first_child(pid).unwrap_or(pid);
            ["nsenter", "--target", &init.to_string(), "--pid", "--mount"]
                .iter()
                .map(OsString::from)
                .collect()
        }));
        let pod = Kubelet::start(spec);
        let unshare_pid = pod.pid().unwrap();
        let mut init = None;
        assert!(
            common::wait_until(PATIENCE, || {
                init = first_child(unshare_pid);
                init.is_some()
            }),
            "unshare (pid {unshare_pid}) never started its PID 1 (its stderr is above); \
             events:\n{}",
            pod.dump()
        );
        let init = init.unwrap();
        pod.wait_for("20 passing liveness probes", PATIENCE, |ev| {
            ev.iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::Probed {
                            kind: Kind::Liveness,
                            ok: true,
                            ..
                        }
                    )
                })
                .count()
                >= 20
        });
        if reaping {
            // Every orphan has had time to exit; none may stay a zombie.
            assert!(
                common::wait_until(PATIENCE, || zombies_of(init) == 0),
                "liveness run as PID 1 left {} zombies",
                zombies_of(init)
            );
        } else {
            assert!(
                common::wait_until(PATIENCE, || zombies_of(init) >= 10),
                "negative control: a non-reaping PID 1 should collect zombies, has {}",
                zombies_of(init)
            );
        }
    }
}

/// Pod deletion with a graceful shutdown plan: after SIGTERM the readiness
/// probe fails at once (the pod leaves its Services) while liveness keeps
/// passing through the drain delay, so the kubelet never restarts a
/// draining pod; the hooks run after the drain, in order; the process exits
/// 0 with its state reset.
#[test]
fn sigterm_drains_with_probes_answering() {
    let rundir = Rundir::new();
    let live = vec![bin().into_os_string(), "probe".into()];
    let spec = ContainerSpec::new(
        "drain",
        [
            example("shutdown_demo").into_os_string(),
            "--drain-ms".into(),
            "1500".into(),
            "--hook".into(),
            "flush:200".into(),
            "--hook".into(),
            "close:100".into(),
        ],
    )
    .env("LIVENESS_RUNDIR", rundir.path())
    .env("LIVENESS_UNIT_NAME", "drain")
    .restart(RestartPolicy::Never);
    // Startup gates the others; then one liveness failure would restart.
    let spec = probed(spec, &live, 1);
    let pod = Kubelet::start(spec);
    pod.wait_for("ready", PATIENCE, |ev| {
        ev.contains(&Event::Ready { n: 1, ready: true })
    });
    pod.signal(nix::sys::signal::Signal::SIGTERM);
    pod.wait_for("exit", PATIENCE, |ev| {
        ev.iter().any(|e| matches!(e, Event::Exited { .. }))
    });

    let ev = pod.events();
    let at = |pred: &dyn Fn(&Event) -> bool, what: &str| {
        position(&ev, pred).unwrap_or_else(|| panic!("no {what}:\n{}", pod.dump()))
    };
    let sent = at(
        &|e| matches!(e, Event::Note(n) if n.contains("SIGTERM")),
        "SIGTERM",
    );
    let unready = at(&|e| *e == Event::Ready { n: 1, ready: false }, "unready");
    let drain = at(
        &|e| matches!(e, Event::Output { line, .. } if line.contains("shutdown: draining")),
        "drain",
    );
    let first_hook = at(
        &|e| matches!(e, Event::Output { line, .. } if line == "hook:flush:start"),
        "flush hook",
    );
    let second_hook = at(
        &|e| matches!(e, Event::Output { line, .. } if line == "hook:close:start"),
        "close hook",
    );
    let exited = at(&|e| matches!(e, Event::Exited { .. }), "exit");
    assert!(
        sent < unready && unready < exited,
        "readiness dropped after SIGTERM:\n{}",
        pod.dump()
    );
    assert!(
        drain < first_hook && first_hook < second_hook && second_hook < exited,
        "{}",
        pod.dump()
    );
    // Liveness probes ran during the drain, and every one passed.
    let during: Vec<&Event> = ev[sent..first_hook]
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Probed {
                    kind: Kind::Liveness,
                    ..
                }
            )
        })
        .collect();
    assert!(
        !during.is_empty(),
        "no liveness probe ran during the drain:\n{}",
        pod.dump()
    );
    assert!(
        during
            .iter()
            .all(|e| matches!(e, Event::Probed { ok: true, .. })),
        "liveness failed while draining:\n{}",
        pod.dump()
    );
    // Readiness said why while draining.
    assert!(
        ev[sent..exited].iter().any(|e| matches!(e,
        Event::Probed { kind: Kind::Readiness, ok: false, exit: Some(6), output, .. }
            if output.contains("not ready"))),
        "{}",
        pod.dump()
    );
    assert!(!restarted(&ev), "restarted while draining:\n{}", pod.dump());
    assert_eq!(
        ev[exited],
        Event::Exited {
            n: 1,
            code: Some(0),
            signal: None
        }
    );
    assert!(rundir.read("drain", "pid").is_none(), "the state was reset");
}
