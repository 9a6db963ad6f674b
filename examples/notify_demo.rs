//! Every state change that has an sd_notify message, in a fixed order: the
//! program `tests/notify.rs` runs with `NOTIFY_SOCKET` pointing at a socket
//! it reads.
//!
//! Claims its unit (`LIVENESS_UNIT_NAME` under `LIVENESS_RUNDIR`) with a
//! heartbeat, reports healthy, ready, an error with and without a message,
//! repeats a value (which sends nothing), then starts its shutdown plan.

use std::sync::Arc;
use std::time::Duration;

use liveness::Health;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let health = Arc::new(
        Health::builder()
            .heartbeat(Duration::from_secs(60))
            .build()?,
    );
    health.load()?; // first beat: WATCHDOG=1
    health.set(0)?; // STATUS=ok
    health.set(0)?; // unchanged: nothing
    health.ready()?; // READY=1
    health.set_with_message(3, "database unreachable")?; // STATUS=error 3: ...; ERRNO=3
    health.set(3)?; // message cleared: STATUS=error 3; ERRNO=3
    health.beat()?; // rate-limited: nothing
    let shutdown = health.on_shutdown().signals(&[]).install()?;
    shutdown.trigger() // STOPPING=1, then exit 0
}
