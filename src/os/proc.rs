//! Process identity from `/proc`: start time, state and PID namespace.
//!
//! A pid alone does not identify a process: pids are recycled, and in a
//! container the owner is often pid 1 or another small number that the next
//! incarnation gets again. A pid plus its start time (field 22 of
//! `/proc/<pid>/stat`, clock ticks since boot) does.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Mutex;

/// What `/proc/<pid>/stat` tells us about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Field 3: `R`, `S`, `D`, `Z`, ...
    pub state: u8,
    /// Field 22: start time in clock ticks since boot.
    pub starttime: u64,
}

impl ProcStat {
    /// A zombie (`Z`) or dead (`X`) task has exited; only its pid is left.
    pub fn exited(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses a `/proc/<pid>/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after the *last* `)`.
pub(crate) fn parse_stat(line: &[u8]) -> Option<ProcStat> {
    let close = line.iter().rposition(|&b| b == b')')?;
    let mut fields = line[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    let state = *fields.next()?.first()?;
    // Field 3 was `state`; field 22 is 19 further on.
    let start = fields.nth(18)?;
    let starttime = std::str::from_utf8(start).ok()?.trim().parse().ok()?;
    Some(ProcStat { state, starttime })
}

/// Reads `/proc/<pid>/stat`. `Ok(None)` when there is no such process.
pub(crate) fn read_stat(pid: u32) -> io::Result<Option<ProcStat>> {
    read_stat_path(&format!("/proc/{pid}/stat"))
}

fn read_stat_path(path: &str) -> io::Result<Option<ProcStat>> {
    let mut buf = [0u8; 1024];
    let n = match File::open(path) {
        Ok(mut f) => f.read(&mut buf)?,
        Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ENOENT | nix::libc::ESRCH)) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    parse_stat(&buf[..n])
        .map(Some)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: unparsable")))
}

/// Per-process facts, cached with the pid they were read for (a forked child
/// must not reuse its parent's start time).
static OWN: Mutex<Option<(u32, u64)>> = Mutex::new(None);

/// Start time of the calling process.
pub(crate) fn own_starttime() -> io::Result<u64> {
    let pid = std::process::id();
    let mut own = OWN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((p, st)) = *own
        && p == pid
    {
        return Ok(st);
    }
    let st = read_stat_path("/proc/self/stat")?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "/proc/self/stat: missing"))?
        .starttime;
    *own = Some((pid, st));
    Ok(st)
}

/// Start time of `pid`, or `None` when it is not running (or has exited).
pub(crate) fn starttime_of(pid: u32) -> io::Result<Option<u64>> {
    Ok(read_stat(pid)?.filter(|s| !s.exited()).map(|s| s.starttime))
}

/// The real and effective uids of `pid` (the `Uid:` line of
/// `/proc/<pid>/status`). `Ok(None)` when there is no such process.
pub(crate) fn uids(pid: u32) -> io::Result<Option<[u32; 2]>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(t) => t,
        Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ENOENT | nix::libc::ESRCH)) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    parse_uids(&text).map(Some).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status: no Uid line"),
        )
    })
}

/// The first two fields of the `Uid:` line of a `/proc/<pid>/status` text.
fn parse_uids(status: &str) -> Option<[u32; 2]> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut fields = line.split_whitespace().map(str::parse::<u32>);
    Some([fields.next()?.ok()?, fields.next()?.ok()?])
}

/// Inode number of the caller's PID namespace (`/proc/self/ns/pid` reads
/// `pid:[4026531836]`).
///
/// Read once per process: a process never changes PID namespace, but a
/// child forked after `unshare(CLONE_NEWPID)` lives in a new one, so the
/// cached value is kept with the pid that read it.
pub(crate) fn own_pidns() -> io::Result<u64> {
    static CACHE: Mutex<Option<(u32, u64)>> = Mutex::new(None);
    let me = std::process::id();
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((pid, ns)) = *cache
        && pid == me
    {
        return Ok(ns);
    }
    let ns = pidns_of("/proc/self/ns/pid")?;
    *cache = Some((me, ns));
    Ok(ns)
}

/// Whether the `/proc` mounted here numbers processes as our PID namespace
/// does (`/proc/self` names our own pid): without it, `/proc/<pid>` is
/// another process than our `pid`, or nothing. Cached like
/// [`own_pidns`].
pub(crate) fn proc_is_ours() -> bool {
    static CACHE: Mutex<Option<(u32, bool)>> = Mutex::new(None);
    let me = std::process::id();
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((pid, ours)) = *cache
        && pid == me
    {
        return ours;
    }
    let ours =
        std::fs::read_link("/proc/self").is_ok_and(|own| own.to_str() == Some(&me.to_string()));
    *cache = Some((me, ours));
    ours
}

/// The error for a `/proc` that is not our PID namespace's (or is missing).
pub(crate) fn foreign_proc() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "/proc is not mounted, or is another PID namespace's",
    )
}

fn pidns_of(link: &str) -> io::Result<u64> {
    let target = std::fs::read_link(link)?;
    let s = target.to_string_lossy();
    s.strip_prefix("pid:[")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{link}: {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields are counted after the last `)`, so a command name with spaces
    /// and parentheses cannot shift them.
    #[test]
    fn stat_parser_survives_hostile_command_names() {
        let line = b"2333 (a) b) (c) S 2332 2333 1039 0 -1 4194368 119 68 0 0 0 0 0 0 20 0 1 0 504101 4730880 450\n";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                state: b'S',
                starttime: 504_101
            })
        );
        assert_eq!(parse_stat(b"1 (x) S 0 1"), None);
        assert_eq!(parse_stat(b"garbage"), None);
    }

    /// Our own start time matches what /proc/<our pid>/stat says.
    #[test]
    fn own_starttime_matches_proc() {
        let own = own_starttime().unwrap();
        let by_pid = starttime_of(std::process::id()).unwrap();
        assert_eq!(Some(own), by_pid);
    }

    /// A pid that cannot exist reads as "not running", not as an error.
    #[test]
    fn missing_pid_is_none() {
        assert_eq!(read_stat(i32::MAX as u32).unwrap(), None);
    }

    /// The PID namespace inode is readable and non-zero.
    #[test]
    fn own_pidns_is_an_inode() {
        assert!(own_pidns().unwrap() > 0);
    }

    /// The real and effective uids are the first two fields of `Uid:`.
    #[test]
    fn uids_are_parsed_from_status() {
        let text = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n";
        assert_eq!(parse_uids(text), Some([1000, 0]));
        assert_eq!(parse_uids("Name:\tx\n"), None);
        let own = uids(std::process::id()).unwrap().unwrap();
        assert_eq!(own[1], nix::unistd::geteuid().as_raw());
        assert_eq!(uids(i32::MAX as u32).unwrap(), None);
    }

    /// Zombies count as exited.
    #[test]
    fn zombie_has_exited() {
        assert!(
            ProcStat {
                state: b'Z',
                starttime: 1
            }
            .exited()
        );
        assert!(
            !ProcStat {
                state: b'S',
                starttime: 1
            }
            .exited()
        );
    }
}

/// Pids whose parent (field 4 of `/proc/<pid>/stat`) is `ppid`: the
/// supervisor's children, including orphans re-parented to it.
///
/// `None` when `/proc` is not our PID namespace's (a new namespace without
/// `--mount-proc`): its pids would name other processes.
pub(crate) fn children_of(ppid: u32) -> Option<Vec<u32>> {
    if !proc_is_ours() {
        return None;
    }
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let mut buf = [0u8; 1024];
        let n = match File::open(format!("/proc/{pid}/stat")).and_then(|mut f| f.read(&mut buf)) {
            Ok(n) => n,
            Err(_) => continue,
        };
        if parse_ppid(&buf[..n]) == Some(ppid) {
            out.push(pid);
        }
    }
    Some(out)
}

/// Field 4 of a `/proc/<pid>/stat` line.
fn parse_ppid(line: &[u8]) -> Option<u32> {
    let close = line.iter().rposition(|&b| b == b')')?;
    let mut fields = line[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    let ppid = fields.nth(1)?;
    std::str::from_utf8(ppid).ok()?.parse().ok()
}

#[cfg(test)]
mod children_tests {
    use super::*;

    /// The parent pid is field 4, counted after the last `)`.
    #[test]
    fn ppid_is_field_four() {
        assert_eq!(parse_ppid(b"12 (a) b) S 7 12 12 0"), Some(7));
        assert_eq!(parse_ppid(b"12 (x"), None);
    }

    /// A spawned child is listed among our children until reaped.
    #[test]
    fn children_of_lists_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(
            children_of(std::process::id())
                .unwrap()
                .contains(&child.id())
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            !children_of(std::process::id())
                .unwrap()
                .contains(&child.id())
        );
    }
}
