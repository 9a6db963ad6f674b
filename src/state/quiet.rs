//! Proving, for the price of one `read(2)`, that nothing in a unit
//! directory changed: the fast path of a writer's cache.
//!
//! A writer may skip a write only when it can prove the disk already holds
//! the value (see `Known` in `write.rs`). A `stat` of the file proves it,
//! but costs a path lookup on every call. Once a handle has proven its
//! files by `stat`, an inotify watch on its unit directory keeps the proof
//! alive: as long as no event is queued, no file in the directory was
//! created, removed, renamed, written or had its attributes changed, so
//! what was proven still holds.
//!
//! Soundness rests on the order: the queue is drained *before* the files
//! are proven by `stat`, and the gate is armed only after that proof. A
//! change before the drain is seen by the `stat`; a change after it leaves
//! an event, and the next call proves again. Anything unusual — the watch
//! removed (`IN_IGNORED`), the directory moved or deleted, a queue overflow,
//! an error, a forked child sharing the descriptor — turns the gate off for
//! good, and every call proves by `stat` again.
//!
//! The watch costs an inotify instance, a per-user resource
//! (`fs.inotify.max_user_instances`, 128 by default): it is created only
//! once a handle has found its values already on disk twice in a row — a
//! hot loop — never by a one-shot `liveness set`.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// The events that can change what a state file in the directory holds,
/// and those that end the watch.
fn flags() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

/// How many calls in a row must find everything proven by `stat` before
/// the watch is created.
const HOT_AFTER: u8 = 2;

/// The gate of one handle's cache.
#[derive(Debug)]
pub(crate) struct Quiet {
    inotify: Option<Inotify>,
    /// Drained, then proven by `stat`, and no write since.
    armed: bool,
    /// Calls in a row that found everything proven, before the watch.
    proven_calls: u8,
    /// Never use the gate again.
    off: bool,
    /// The process that made the watch: a forked child shares the queue.
    pid: u32,
}

impl Quiet {
    pub(crate) fn new() -> Quiet {
        Quiet {
            inotify: None,
            armed: false,
            proven_calls: 0,
            off: false,
            pid: std::process::id(),
        }
    }

    /// Whether nothing in the directory changed since the gate was armed:
    /// one non-blocking `read` that finds the queue empty. `false` means
    /// "prove by `stat`", after [`Quiet::drain`].
    pub(crate) fn holds(&mut self) -> bool {
        if !self.armed {
            return false;
        }
        self.armed = false;
        if self.pid != std::process::id() {
            self.turn_off();
            return false;
        }
        let Some(ino) = &self.inotify else {
            return false;
        };
        match ino.read_events() {
            Err(Errno::EAGAIN) => {
                self.armed = true;
                true
            }
            Ok(events) => {
                if events.iter().any(|e| ends_the_watch(e.mask)) {
                    self.turn_off();
                }
                false
            }
            Err(e) => {
                log::debug!("inotify: {e}: proving by stat from now on");
                self.turn_off();
                false
            }
        }
    }

    /// Empties the queue before the files are proven by `stat`.
    pub(crate) fn drain(&mut self) {
        self.armed = false;
        let Some(ino) = &self.inotify else { return };
        loop {
            match ino.read_events() {
                Ok(events) if events.is_empty() => return,
                Ok(events) => {
                    if events.iter().any(|e| ends_the_watch(e.mask)) {
                        self.turn_off();
                        return;
                    }
                }
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.turn_off();
                    return;
                }
            }
        }
    }

    /// Everything the call needed was proven by `stat` (after a
    /// [`drain`](Quiet::drain)): arm the gate, creating the watch on `dir`
    /// once the handle is hot. A watch made now arms on the next proof.
    pub(crate) fn proven(&mut self, dir: BorrowedFd<'_>) {
        if self.off || self.pid != std::process::id() {
            return;
        }
        if self.inotify.is_some() {
            self.armed = true;
            return;
        }
        self.proven_calls = self.proven_calls.saturating_add(1);
        if self.proven_calls < HOT_AFTER {
            return;
        }
        match watch(dir) {
            Ok(ino) => self.inotify = Some(ino),
            Err(e) => {
                log::debug!("inotify: {e}: proving by stat");
                self.off = true;
            }
        }
    }

    /// This handle wrote (or failed to): prove by `stat` next time.
    pub(crate) fn wrote(&mut self) {
        self.armed = false;
        self.proven_calls = 0;
    }

    fn turn_off(&mut self) {
        self.armed = false;
        self.off = true;
        self.inotify = None;
    }
}

/// The watch is gone, or no longer names our directory's contents.
fn ends_the_watch(mask: AddWatchFlags) -> bool {
    mask.intersects(
        AddWatchFlags::IN_IGNORED
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_Q_OVERFLOW
            | AddWatchFlags::IN_UNMOUNT,
    )
}

/// An inotify instance watching the directory open as `dir` — through
/// `/proc/self/fd`, so the watch is on that very inode, not on whatever
/// its path names now.
fn watch(dir: BorrowedFd<'_>) -> nix::Result<Inotify> {
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    ino.add_watch(
        format!("/proc/self/fd/{}", dir.as_raw_fd()).as_str(),
        flags(),
    )?;
    Ok(ino)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn dir() -> (tempfile::TempDir, std::fs::File) {
        let t = tempfile::tempdir().unwrap();
        let f = std::fs::File::open(t.path()).unwrap();
        (t, f)
    }

    /// The gate holds only after the watch exists and a proof armed it;
    /// any change in the directory makes it fail once, until proven again.
    #[test]
    fn the_gate_holds_only_while_nothing_changes() {
        let (t, d) = dir();
        let mut q = Quiet::new();
        assert!(!q.holds(), "never armed");
        q.proven(d.as_fd());
        assert!(!q.holds(), "one proof is not yet hot");
        q.proven(d.as_fd());
        assert!(!q.holds(), "the watch made now arms on the next proof");
        q.drain();
        q.proven(d.as_fd());
        assert!(q.holds());
        assert!(q.holds(), "still nothing changed");
        std::fs::write(t.path().join("error"), b"3\n").unwrap();
        assert!(!q.holds(), "a write by anyone is seen");
        q.drain();
        q.proven(d.as_fd());
        assert!(q.holds());
        std::fs::rename(t.path().join("error"), t.path().join("x")).unwrap();
        assert!(!q.holds(), "a rename is seen");
    }

    /// A write of our own disarms the gate until the next proof.
    #[test]
    fn our_own_write_disarms() {
        let (_t, d) = dir();
        let mut q = Quiet::new();
        for _ in 0..3 {
            q.drain();
            q.proven(d.as_fd());
        }
        assert!(q.holds());
        q.wrote();
        assert!(!q.holds());
    }

    /// A directory moved away (its path may now name another) turns the
    /// gate off for good.
    #[test]
    fn a_moved_directory_turns_the_gate_off() {
        let (t, d) = dir();
        let mut q = Quiet::new();
        for _ in 0..3 {
            q.drain();
            q.proven(d.as_fd());
        }
        assert!(q.holds());
        let moved = t.path().with_extension("moved");
        std::fs::rename(t.path(), &moved).unwrap();
        assert!(!q.holds());
        q.drain();
        q.proven(d.as_fd());
        assert!(!q.holds(), "off for good");
        assert!(q.off);
        std::fs::rename(&moved, t.path()).unwrap();
    }
}
