//! How the binary ends on time, whatever its readers do.
//!
//! A command with a deadline (`probe --timeout`, `wait --timeout`,
//! `terminate --timeout`) ends with exit 8 and one line when the deadline
//! passes, however stuck it is — on a full output pipe, on a slow file
//! system — and no line the binary writes to stderr can keep it from
//! ending:
//!
//! - [`arm`] sets a timer (`setitimer`, `SIGALRM`). Its handler writes the
//!   deadline's line with [`os::write_now`] (never waits for a reader) and
//!   leaves with `_exit(8)`: no flush of Rust's buffered stdout, no lock.
//! - A process blocked in a *killable* wait (a request to a hung FUSE or NFS
//!   mount) runs no handler: only a fatal signal wakes it. So a second,
//!   POSIX timer sends `SIGKILL` [`KILL_GRACE`] later. In that one case the
//!   command ends killed (status 137 from a shell), without its line.
//! - Every line on stderr ([`say`], [`last_line`]: verdicts, errors, the
//!   log) is written without waiting: when the reader has left no room (64
//!   KiB unread in a pipe), the line is dropped, counted, and the exit code
//!   alone tells. Bulk output on stdout (`status`, `--json`, help) waits for
//!   its reader, within the command's deadline when it has one.
//!
//! Why a timer and not a thread: the probe used to sleep on a thread, which
//! `exit_group` wakes from any killable wait. Measured side by side, that
//! thread cost the probe about 9% of a static C no-op (`clone3`, a 128 MiB
//! malloc arena, an alternate signal stack, 15 system calls on the thread,
//! and a second task to wake and reap at exit); the timers cost 4 system
//! calls. A killable wait is the only case the thread handled better, and
//! there the command still ends, killed, in [`KILL_GRACE`]. Evidence and
//! figures: `doc/deadlines.md`.

use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::exit_code::ExitCode;
use crate::os;

/// How long after its deadline a command whose handler could not run (it is
/// blocked in a killable wait inside the kernel) is killed.
pub const KILL_GRACE: Duration = Duration::from_millis(500);

/// How long after its own `--timeout` a waiting command's deadline fires.
/// `wait` and `terminate` end by themselves at their timeout, with a line
/// that says what they waited for; the deadline only ends one whose state
/// could not be read in time.
pub const BACKSTOP: Duration = Duration::from_secs(1);

/// The line the deadline writes, set once before the timer is armed.
static LINE: OnceLock<Box<[u8]>> = OnceLock::new();
/// Set once the command writes its own last line: the deadline then adds
/// none.
static LAST_WORDS: AtomicBool = AtomicBool::new(false);
/// Lines dropped because stderr had no room.
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Ends the process with exit 8 and `line` (which ends with a newline)
/// `after` from now, unless it has ended before. Commands that arm a
/// deadline must not start programs: the timer survives `execve`.
pub fn arm(after: Duration, line: String) {
    let _ = LINE.set(line.into_bytes().into_boxed_slice());
    let armed = os::on_alarm(on_deadline)
        .and_then(|()| os::alarm_after(after))
        .and_then(|()| os::kill_after(after.saturating_add(KILL_GRACE)));
    if let Err(e) = armed {
        log::warn!("cannot arm the deadline: {e}");
    }
}

/// The `SIGALRM` handler: async-signal-safe (an atomic, `fstat`, `open`,
/// `write`, `close`, `_exit`; no allocation, no lock).
extern "C" fn on_deadline(_: nix::libc::c_int) {
    if !LAST_WORDS.swap(true, Ordering::SeqCst)
        && let Some(line) = LINE.get()
    {
        let _ = os::write_now(std::io::stderr().as_fd(), line);
    }
    os::exit_now(i32::from(ExitCode::Timeout.code()))
}

/// Writes the command's last line on stderr, without waiting: once it is
/// written, a deadline that fires adds no second line.
pub fn last_line(line: &str) {
    LAST_WORDS.store(true, Ordering::SeqCst);
    say(line);
}

/// Writes `line` (with its newline) on stderr without waiting for the
/// reader. A line that finds no room is dropped; the next line that gets
/// through is preceded by one saying how many were lost.
pub fn say(line: &str) {
    let stderr = std::io::stderr();
    let dropped = DROPPED.load(Ordering::Relaxed);
    if dropped > 0 {
        let notice = format!("liveness: warn: {dropped} lines dropped: stderr was full\n");
        if !fits(os::write_now(stderr.as_fd(), notice.as_bytes()), &notice) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        DROPPED.fetch_sub(dropped, Ordering::Relaxed);
    }
    if !fits(os::write_now(stderr.as_fd(), line.as_bytes()), line) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

fn fits(written: std::io::Result<usize>, line: &str) -> bool {
    matches!(written, Ok(n) if n == line.len())
}
