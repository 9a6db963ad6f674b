//! A service with a graceful shutdown plan: the program `tests/shutdown.rs`
//! signals, and a sketch of what a real service does.
//!
//! ```text
//! shutdown_demo [--drain-ms MS] [--unready on-signal|after-drain|never]
//!               [--hook NAME:RUN_MS[:TIMEOUT_MS[:ok|fail|panic]]]...
//!               [--budget-ms MS] [--exit-code N] [--strict] [--no-signals]
//!               [--trigger-after-ms MS] [--serve]
//! ```
//!
//! It claims its unit (`LIVENESS_UNIT_NAME` under `LIVENESS_RUNDIR`),
//! installs the plan, becomes healthy and ready, prints `ready` and waits.
//! With `--serve` it first serves its health over HTTP on a free loopback
//! port and prints `serving ADDR`.
//! Every line it prints is a marker the tests read: the library's log
//! (`log: info: shutdown: ...`) and `hook:NAME:start` / `hook:NAME:end`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use liveness::{Health, Unready};

fn main() {
    if let Err(e) = run() {
        println!("error: {e}");
        eprintln!("shutdown_demo: {e}");
        std::process::exit(2);
    }
}

/// Every log line goes to stdout, one line each, so that the order of
/// markers is the order of events.
struct Stdout;

impl log::Log for Stdout {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        let level = r.level().as_str().to_lowercase();
        say(&format!("log: {level}: {}", r.args()));
    }
    fn flush(&self) {}
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    static LOGGER: Stdout = Stdout;
    log::set_logger(&LOGGER).map_err(|e| e.to_string())?;
    log::set_max_level(log::LevelFilter::Info);

    let health = Arc::new(Health::builder().build()?);
    let mut plan = health.on_shutdown();
    let mut trigger_after = None;
    let mut serve = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        plan = match flag.as_str() {
            "--drain-ms" => plan.drain(Duration::from_millis(value()?.parse()?)),
            "--unready" => plan.unready(match value()?.as_str() {
                "on-signal" => Unready::OnSignal,
                "after-drain" => Unready::AfterDrain,
                "never" => Unready::Never,
                other => return Err(format!("--unready {other}?").into()),
            }),
            "--hook" => add_hook(plan, &value()?)?,
            "--budget-ms" => plan.budget(Duration::from_millis(value()?.parse()?)),
            "--exit-code" => plan.exit_code(value()?.parse()?),
            "--strict" => plan.strict(true),
            "--no-signals" => plan.signals(&[]),
            "--serve" => {
                serve = true;
                plan
            }
            "--trigger-after-ms" => {
                trigger_after = Some(Duration::from_millis(value()?.parse()?));
                plan
            }
            _ => return Err(format!("unknown option {flag}").into()),
        };
    }
    health.load()?;
    let shutdown = plan.install()?;
    #[cfg(feature = "http")]
    if serve {
        let server = health.serve("127.0.0.1:0")?;
        say(&format!("serving {}", server.local_addr()));
    }
    #[cfg(not(feature = "http"))]
    if serve {
        return Err("built without the http feature".into());
    }
    health.set(0)?;
    health.ready()?;
    say("ready");
    if let Some(after) = trigger_after {
        // Two threads ask at once: one runs the plan, the other waits.
        let h = Arc::clone(&health);
        std::thread::spawn(move || {
            std::thread::sleep(after);
            let _ = h.shutdown();
        });
        std::thread::spawn(move || {
            std::thread::sleep(after);
            let _ = health.shutdown();
        });
    }
    shutdown.wait()
}

/// `NAME:RUN_MS[:TIMEOUT_MS[:ok|fail|panic]]`.
fn add_hook(
    plan: liveness::ShutdownPlan,
    spec: &str,
) -> Result<liveness::ShutdownPlan, Box<dyn std::error::Error>> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default().to_owned();
    let run_ms: u64 = parts.next().ok_or("--hook NAME:RUN_MS")?.parse()?;
    let timeout = match parts.next() {
        Some("") | None => None,
        Some(t) => Some(Duration::from_millis(t.parse()?)),
    };
    let outcome = parts.next().unwrap_or("ok").to_owned();
    let label = name.clone();
    let hook = move || -> liveness::CheckResult {
        say(&format!("hook:{label}:start"));
        std::thread::sleep(Duration::from_millis(run_ms));
        say(&format!("hook:{label}:end"));
        match outcome.as_str() {
            "fail" => Err(format!("{label} could not flush").into()),
            "panic" => {
                // Said first, so that the panic message that follows on
                // stderr reads as the test's doing, not as a failure.
                eprintln!(
                    "shutdown_demo: hook {label} panics now, as asked (--hook {label}:...:panic); \
                     the panic message below is expected"
                );
                panic!("{label} blew up")
            }
            _ => Ok(()),
        }
    };
    Ok(match timeout {
        Some(t) => plan.hook_with_timeout(&name, t, hook),
        None => plan.hook(&name, hook),
    })
}
