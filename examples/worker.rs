//! A batch worker that reports its health: the library's main use, and the
//! job `scripts/demo.sh` runs and probes.
//!
//! ```text
//! worker [--items N] [--fail-at K] [--item-ms MS]
//! ```
//!
//! It checks its environment, claims its unit (`LIVENESS_UNIT_NAME`, else
//! the host name, under `LIVENESS_RUNDIR`, else `/run`), becomes ready, and
//! processes N items, beating once per item. At item K its "upstream" fails
//! for two items: it reports error 3 with a message, then recovers. When the
//! work is done, dropping the handle removes the state.

use std::time::Duration;

use liveness::Health;

fn main() {
    if let Err(e) = run() {
        eprintln!("worker: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut items = 10u32;
    let mut fail_at = 4u32;
    let mut item_ms = 300u64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--items" => items = value.parse()?,
            "--fail-at" => fail_at = value.parse()?,
            "--item-ms" => item_ms = value.parse()?,
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }

    let health = Health::builder()
        .check("temp dir writable", || {
            let probe = std::env::temp_dir().join(format!("worker-{}", std::process::id()));
            std::fs::write(&probe, b"")?;
            std::fs::remove_file(&probe)?;
            Ok(())
        })
        .heartbeat(Duration::from_secs(5))
        .build()?;
    health.load()?;
    println!(
        "worker: pid {} loaded unit {} in {}",
        std::process::id(),
        health.unit().name(),
        health.unit().rundir().display()
    );
    health.set(0)?;
    health.ready()?;

    for item in 1..=items {
        health.beat()?;
        if item == fail_at {
            health.set_with_message(3, "upstream unavailable")?;
            println!("worker: item {item}: upstream unavailable (error 3)");
        } else if item == fail_at + 2 {
            health.set(0)?;
            println!("worker: item {item}: upstream back (error 0)");
        } else {
            println!("worker: item {item} done");
        }
        std::thread::sleep(Duration::from_millis(item_ms));
    }
    println!("worker: all {items} items done; resetting");
    health.reset()?;
    Ok(())
}
