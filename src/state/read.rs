//! Reading a unit's state: strict, symlink-proof, and fail-closed.
//!
//! Every reader (the probe, `status`, `wait`, the claim in `load`) goes
//! through here, so they cannot disagree about what a file means.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::os::fs;
use crate::os::proc;
use crate::state::format::{self, Corruption};
use crate::state::unit::Unit;
use crate::vocab::text;

/// A state file that cannot be trusted: which file, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bad {
    pub file: &'static str,
    pub why: Corruption,
}

impl Bad {
    pub(crate) fn new(file: &'static str, why: Corruption) -> Bad {
        Bad { file, why }
    }
}

/// Opening a unit directory.
pub(crate) enum OpenUnit {
    /// There is no `<rundir>/<unit>` (or no run directory).
    Missing,
    /// The path exists but is a symlink, not a directory, or unreadable.
    Bad(Corruption),
    /// An open descriptor on the unit directory.
    Dir(OwnedFd),
}

fn corruption_of(e: &io::Error) -> Corruption {
    match e.raw_os_error() {
        Some(nix::libc::ELOOP) => Corruption::Symlink,
        Some(nix::libc::ENOTDIR) => Corruption::NotDirectory,
        Some(nix::libc::ENXIO | nix::libc::ENODEV) => Corruption::NotRegular,
        _ => Corruption::Unreadable(text::error_text(e)),
    }
}

/// Opens `<rundir>/<unit>` without following a symlink.
pub(crate) fn open_unit(unit: &Unit) -> OpenUnit {
    match fs::open_dir(&unit.dir()) {
        Ok(fd) => OpenUnit::Dir(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => OpenUnit::Missing,
        // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR, and so
        // does a run directory path through a file: lstat tells them apart
        // (a typo in LIVENESS_RUNDIR reads as "missing").
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => {
            match std::fs::symlink_metadata(unit.dir()) {
                Ok(m) if m.file_type().is_symlink() => OpenUnit::Bad(Corruption::Symlink),
                Ok(_) => OpenUnit::Bad(Corruption::NotDirectory),
                Err(_) => OpenUnit::Missing,
            }
        }
        Err(e) => OpenUnit::Bad(corruption_of(&e)),
    }
}

/// Reads a whole state file of at most `limit` bytes. `Ok(None)` when it
/// does not exist.
pub(crate) fn read_file(
    dir: BorrowedFd<'_>,
    name: &'static str,
    limit: usize,
) -> Result<Option<Vec<u8>>, Bad> {
    let Some((mut file, size)) = open_regular(dir, name)? else {
        return Ok(None);
    };
    let mut buf = Vec::new();
    match fs::read_limited(&mut file, size, &mut buf, limit) {
        Ok(true) => Ok(Some(buf)),
        Ok(false) => Err(Bad::new(name, Corruption::TooLarge)),
        Err(e) => Err(Bad::new(name, corruption_of(&e))),
    }
}

/// Opens a state file that must be a regular file, with its size.
/// `Ok(None)` when it does not exist.
fn open_regular(
    dir: BorrowedFd<'_>,
    name: &'static str,
) -> Result<Option<(std::fs::File, u64)>, Bad> {
    let file = match fs::open_read_at(dir, name) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Bad::new(name, corruption_of(&e))),
    };
    let st = fs::fstat(&file).map_err(|e| Bad::new(name, corruption_of(&e)))?;
    if !fs::is_regular(&st) {
        return Err(Bad::new(name, Corruption::NotRegular));
    }
    Ok(Some((file, u64::try_from(st.st_size).unwrap_or(u64::MAX))))
}

/// Reads and parses an optional state file.
pub(crate) fn read_parsed<T>(
    dir: BorrowedFd<'_>,
    name: &'static str,
    parse: impl FnOnce(&[u8]) -> Result<T, Corruption>,
) -> Result<Option<T>, Bad> {
    match read_file(dir, name, format::NUMBER_FILE_LIMIT)? {
        None => Ok(None),
        Some(bytes) => parse(&bytes).map(Some).map_err(|why| Bad::new(name, why)),
    }
}

/// Whether a marker file (`ready`) is present: a regular file, not a link.
pub(crate) fn marker(dir: BorrowedFd<'_>, name: &'static str) -> Result<bool, Bad> {
    match fs::lstat_at(dir, name) {
        Ok(st) if fs::is_regular(&st) => Ok(true),
        Ok(st) if fs::is_symlink(&st) => Err(Bad::new(name, Corruption::Symlink)),
        Ok(_) => Err(Bad::new(name, Corruption::NotRegular)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Bad::new(name, corruption_of(&e))),
    }
}

/// The message file's first line, if there is a message. Only the first
/// 4 KiB are read; a long or multi-line message is still a message.
pub(crate) fn message(dir: BorrowedFd<'_>) -> Result<Option<String>, Bad> {
    use std::io::Read;
    let Some((file, _)) = open_regular(dir, format::MESSAGE)? else {
        return Ok(None);
    };
    let mut buf = Vec::with_capacity(128);
    file.take(format::MESSAGE_FILE_LIMIT as u64)
        .read_to_end(&mut buf)
        .map_err(|e| Bad::new(format::MESSAGE, corruption_of(&e)))?;
    let msg = format::parse_message(&buf);
    Ok((!msg.is_empty()).then_some(msg))
}

/// Who the state says owns the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub pid: u32,
    pub starttime: Option<u64>,
    pub pidns: Option<u64>,
}

/// Reads `pid`, `starttime` and `pidns`. `Ok(None)` when there is no `pid`
/// file (the unit is not loaded).
pub(crate) fn owner(dir: BorrowedFd<'_>) -> Result<Option<Owner>, Bad> {
    let Some(pid) = read_parsed(dir, format::PID, format::parse_pid)? else {
        return Ok(None);
    };
    let starttime = read_parsed(dir, format::STARTTIME, format::parse_u63)?;
    let pidns = read_parsed(dir, format::PIDNS, format::parse_u63)?;
    Ok(Some(Owner {
        pid,
        starttime,
        pidns,
    }))
}

/// Reads the owner and judges it ([`liveness`]). `Ok(None)` when the unit
/// is not loaded.
///
/// The owner's three files are replaced one by one when the owner changes
/// (a new incarnation, or `liveness run` handing the unit to its child).
/// Writers remove `starttime`, then write `pidns` and `pid`, then
/// `starttime`; `owner` reads `pid` first. So the only mixed reading is the
/// previous pid with the next start time, which looks like a reused pid. A
/// verdict other than "alive" is therefore checked by reading the three
/// files once more: when they changed in between, the new reading is judged
/// instead. The common case, a live owner, reads them once.
pub(crate) fn judged_owner(
    dir: BorrowedFd<'_>,
    lock: LockKnown,
) -> Result<Option<(Owner, Liveness)>, Bad> {
    let Some(first) = owner(dir)? else {
        return Ok(None);
    };
    let verdict = liveness(dir, &first, lock)?;
    if verdict == Liveness::Alive {
        return Ok(Some((first, verdict)));
    }
    match owner(dir)? {
        Some(again) if again != first => {
            let verdict = liveness(dir, &again, lock)?;
            Ok(Some((again, verdict)))
        }
        Some(_) => Ok(Some((first, verdict))),
        None => Ok(None),
    }
}

/// Whether the recorded owner is still the process that wrote the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Proven alive: by `/proc` in its PID namespace, or by its held lock.
    Alive,
    /// Proven gone (not running, a zombie, pid reused, lock free).
    Gone(String),
    /// Nothing can prove it alive from here: another PID namespace (or
    /// `/proc` unreadable) and no lock held. Never counted as alive.
    Unverifiable(String),
}

/// What the caller already knows about the `lock` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKnown {
    /// Nothing: test it (probes).
    Unknown,
    /// It was there and free a moment ago: the caller holds it now (a
    /// claim).
    Free,
    /// There was none: the caller created it and holds it now (a claim).
    Absent,
    /// Another process holds it (a claim that found it taken).
    Held,
}

/// What `/proc` proved about the owner's pid.
enum ProcProof {
    /// Running, not a zombie, and the recorded start time (if any) matches.
    Alive,
    /// `/proc` cannot judge it from here; why, to end "cannot verify pid N
    /// ..." with.
    Nothing(String),
}

/// Judges the owner: is `pid` still the process that claimed the unit?
///
/// Alive needs a positive proof (doc/state-format.md, *Verdicts*):
///
/// 1. When the owner lives in our PID namespace (or `pidns` is absent:
///    state of the original module), its `/proc/<pid>/stat` must exist,
///    not be a zombie, and show the recorded start time. A `/proc` that
///    cannot be read (not mounted, permission denied, our own namespace
///    unknown) proves nothing either way.
/// 2. A held `lock` proves the owner alive, a free one proves it dead: the
///    kernel drops the lock when its holder dies. Probes also call a
///    present-but-free lock "gone" when `/proc` says alive; a claim does
///    not (the caller holds the lock itself; `/proc` decides).
/// 3. Without a proof from `/proc` and without a lock file, the owner is
///    [`Liveness::Unverifiable`]: a `load --pid` unit read from another
///    PID namespace, or a forged `pidns`.
pub(crate) fn liveness(
    dir: BorrowedFd<'_>,
    owner: &Owner,
    lock: LockKnown,
) -> Result<Liveness, Bad> {
    let pid = owner.pid;
    let proof = match proc_view(owner) {
        Err(why) => ProcProof::Nothing(why),
        Ok(()) => match proc::read_stat(pid) {
            Ok(None) => return Ok(Liveness::Gone(format!("pid {pid} is not running"))),
            Ok(Some(st)) if st.exited() => {
                return Ok(Liveness::Gone(format!("pid {pid} has exited (zombie)")));
            }
            Ok(Some(st)) => match owner.starttime {
                Some(recorded) if st.starttime != recorded => {
                    return Ok(Liveness::Gone(format!(
                        "pid {pid} was reused (start time {}, recorded {recorded})",
                        st.starttime
                    )));
                }
                _ => ProcProof::Alive,
            },
            Err(e) => ProcProof::Nothing(format!("(/proc/{pid}/stat: {})", text::error_text(&e))),
        },
    };
    let state = match lock {
        LockKnown::Unknown => lock_state(dir)?,
        LockKnown::Free => LockState::Free,
        LockKnown::Absent => LockState::Absent,
        LockKnown::Held => LockState::Held,
    };
    let free = || Ok(Liveness::Gone("lock is free (the owner died)".into()));
    match (proof, state) {
        (_, LockState::Held) => Ok(Liveness::Alive),
        (ProcProof::Alive, LockState::Free) if lock == LockKnown::Unknown => free(),
        (ProcProof::Alive, _) => Ok(Liveness::Alive),
        (ProcProof::Nothing(_), LockState::Free) => free(),
        (ProcProof::Nothing(why), LockState::Absent) => Ok(Liveness::Unverifiable(format!(
            "cannot verify pid {pid} {why} and no lock is held"
        ))),
    }
}

/// `Ok` when `/proc` can judge the owner's pid: `/proc` is our namespace's,
/// and the owner's `pidns` is ours (or was not recorded). Otherwise
/// why not, as the middle of "cannot verify pid N ... and no lock is held".
fn proc_view(owner: &Owner) -> Result<(), String> {
    if !proc::proc_is_ours() {
        return Err(format!("({})", text::error_text(&proc::foreign_proc())));
    }
    match (owner.pidns, proc::own_pidns()) {
        (_, Err(e)) => Err(format!(
            "(our own PID namespace is unknown: {})",
            text::error_text(&e)
        )),
        (None, Ok(_)) => Ok(()),
        (Some(theirs), Ok(ours)) if theirs == ours => Ok(()),
        (Some(theirs), Ok(ours)) => Err(format!(
            "from this PID namespace (its pidns {theirs}, ours {ours})"
        )),
    }
}

/// The state of the `lock` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockState {
    Absent,
    Held,
    Free,
}

/// Tests the lock without waiting: a shared lock taken and dropped at once.
pub(crate) fn lock_state(dir: BorrowedFd<'_>) -> Result<LockState, Bad> {
    let file = match fs::open_read_at(dir, format::LOCK) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockState::Absent),
        Err(e) => return Err(Bad::new(format::LOCK, corruption_of(&e))),
    };
    let st = fs::fstat(file.as_fd()).map_err(|e| Bad::new(format::LOCK, corruption_of(&e)))?;
    if !fs::is_regular(&st) {
        return Err(Bad::new(format::LOCK, Corruption::NotRegular));
    }
    match file.try_lock_shared() {
        Ok(()) => Ok(LockState::Free),
        Err(std::fs::TryLockError::WouldBlock) => Ok(LockState::Held),
        Err(std::fs::TryLockError::Error(e)) => Err(Bad::new(format::LOCK, corruption_of(&e))),
    }
}
