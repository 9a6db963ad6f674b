//! FIFOs and leases (issue #9 §4): opening a FIFO for reading blocks until a
//! writer comes, and opening a file under another process's write lease
//! blocks until the holder lets go or the kernel breaks the lease
//! (`/proc/sys/fs/lease-break-time`, 45 s by default). `liveness probe`
//! opens with `O_NONBLOCK`; `health.sh` tests every file with `test -f`
//! before it opens it, and can do nothing about a lease (documented in the
//! script's header and in doc/state-format.md). Every probe runs under a
//! time limit: a hang fails the test.

use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::bounded::{self, Outcome};
use crate::common;
use crate::{Base, Fixture};

/// Each state file replaced by a FIFO that no one writes: both probes say
/// "not a regular file" (exit 7, the same line), at once. The unit before
/// the swap is the negative control (healthy for both).
#[test]
fn a_fifo_in_place_of_any_file_never_blocks() {
    let shells = common::shells("a_fifo_in_place_of_any_file_never_blocks");
    let mut failures = Vec::new();
    for (file, args) in [
        ("pid", &[][..]),
        ("starttime", &[]),
        ("pidns", &[]),
        ("lock", &[]),
        ("heartbeat", &[]),
        ("error", &[]),
        ("message", &[]),
        ("ready", &["--ready"]),
    ] {
        let f = Fixture::new(Base::Library);
        f.write(
            "heartbeat",
            format!("30 {}\n", crate::boottime_ms()).as_bytes(),
        );
        let mut judge = |when: &str, want: i32| {
            let rust = bounded::probe(f.rd.path(), "u", args);
            if rust.code() != Some(want) {
                failures.push(format!("{file} {when}: liveness probe {}", rust.describe()));
            }
            for s in &shells {
                let out = bounded::health_sh(s, f.rd.path(), "u", args);
                if out.code() != Some(want) || out.stderr() != rust.stderr() {
                    failures.push(format!(
                        "{file} {when}: {}: {} (liveness probe: {})",
                        s.name,
                        out.describe(),
                        rust.describe()
                    ));
                }
            }
        };
        if file == "message" {
            f.write("message", b"database unreachable\n");
            f.write("error", b"3\n");
            judge("before", 1);
        } else {
            judge("before", 0);
        }
        f.replace_with_fifo(file);
        judge("as a FIFO", 7);
    }
    // The unit directory itself.
    let f = Fixture::new(Base::Nothing);
    nix::unistd::mkfifo(
        &f.rd.unit_dir("u"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let rust = bounded::probe(f.rd.path(), "u", &[]);
    assert_eq!(rust.code(), Some(7), "{}", rust.describe());
    for s in &shells {
        let out = bounded::health_sh(s, f.rd.path(), "u", &[]);
        if out.code() != Some(7) || out.stderr() != rust.stderr() {
            failures.push(format!(
                "unit directory FIFO: {}: {}",
                s.name,
                out.describe()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A write lease held by this process on `file` until dropped. The kernel
/// signals the holder when a reader wants the file; SIGWINCH, which is
/// ignored by default, stands in for SIGIO, which would kill the tests.
struct Lease {
    _held: std::fs::File,
}

impl Lease {
    fn take(path: &std::path::Path) -> Lease {
        let f = std::fs::File::open(path).unwrap();
        let fd = f.as_raw_fd();
        // SAFETY: fcntl on a descriptor this function owns, with integer
        // arguments only.
        unsafe {
            assert_eq!(nix::libc::fcntl(fd, F_SETSIG, nix::libc::SIGWINCH), 0);
            assert_eq!(
                nix::libc::fcntl(fd, nix::libc::F_SETLEASE, nix::libc::F_WRLCK),
                0,
                "F_SETLEASE: {}",
                std::io::Error::last_os_error()
            );
        }
        Lease { _held: f }
    }
}

/// `F_SETSIG` from `<fcntl.h>` (Linux, every architecture), which the libc
/// crate does not export.
const F_SETSIG: nix::libc::c_int = 10;

fn lease_break_time() -> Duration {
    let s = std::fs::read_to_string("/proc/sys/fs/lease-break-time").unwrap_or_default();
    Duration::from_secs(s.trim().parse().unwrap_or(45))
}

/// A holder that never lets go of a write lease on `pid` or `error`:
/// `liveness probe` says at once that it cannot read the file (exit 7);
/// `health.sh` blocks in open(2) until the kernel breaks the lease, then
/// judges what the file holds (here: healthy). Bounded by the lease break
/// time, which is the documented limit; a probe still running a minute
/// after it is a hang. The three shells and both files run side by side.
#[test]
fn a_write_lease_delays_health_sh_at_most_the_lease_break_time() {
    let test = "a_write_lease_delays_health_sh_at_most_the_lease_break_time";
    let shells = common::shells(test);
    if !common::require(common::is_root(), test, "root (CAP_LEASE)") {
        return;
    }
    let limit = lease_break_time() + Duration::from_secs(60);
    let mut units = Vec::new();
    for file in ["pid", "error"] {
        let f = Fixture::new(Base::Cli);
        // A fresh inode that no other process has open.
        let bytes = std::fs::read(f.path(file)).unwrap();
        std::fs::remove_file(f.path(file)).unwrap();
        std::fs::write(f.path(file), &bytes).unwrap();
        let lease = Lease::take(&f.path(file));
        let rust = bounded::probe(f.rd.path(), "u", &[]);
        assert_eq!(rust.code(), Some(7), "{file}: {}", rust.describe());
        assert!(
            rust.stderr().contains(&format!("{file}: unreadable")),
            "{}",
            rust.stderr()
        );
        units.push((file, f, lease));
    }
    let outcomes: Vec<(&str, &str, Outcome)> = std::thread::scope(|scope| {
        let runs: Vec<_> = units
            .iter()
            .flat_map(|(file, f, _)| {
                shells.iter().map(move |s| {
                    let h = scope
                        .spawn(move || bounded::health_sh_limit(s, f.rd.path(), "u", &[], limit));
                    (*file, s.name, h)
                })
            })
            .collect();
        runs.into_iter()
            .map(|(file, shell, h)| (file, shell, h.join().unwrap()))
            .collect()
    });
    drop(units);
    for (file, shell, out) in outcomes {
        assert_eq!(
            out.code(),
            Some(0),
            "{file} under {shell}: {}",
            out.describe()
        );
    }
}
