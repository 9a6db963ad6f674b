//! Every unit under a run directory, at a glance: what `liveness status`
//! shows, as a table or as JSON.
//!
//! # Examples
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let h = liveness::Health::builder().unit("api").rundir(dir.path()).build()?;
//! h.load()?;
//! h.set(0)?;
//! let reports = liveness::status::scan(dir.path())?;
//! print!("{}", liveness::status::table(&reports));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use crate::error::{Error, Result};
use crate::os::fs;
use crate::probe::{Mode, Probe, Report};
use crate::state::format;
use crate::state::unit::Unit;
use crate::vocab::text;

/// Files whose presence makes a directory a unit: `/run` holds plenty of
/// directories that are not ours.
const UNIT_FILES: [&str; 4] = [format::PID, format::ERROR, format::LOCK, format::TOMBSTONE];

/// Reports on every unit under `rundir`, sorted by name: each directory with
/// a valid unit name that holds a `pid`, `error`, `lock` or `tombstone`
/// file, judged as a liveness probe would judge it.
///
/// # Errors
///
/// [`ErrorKind::Io`](crate::ErrorKind::Io) when `rundir` exists but cannot
/// be listed. A missing `rundir` has no units.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let h = liveness::Health::builder().unit("a").rundir(dir.path()).build()?;
/// h.load()?;
/// h.set(0)?;
/// let reports = liveness::status::scan(dir.path())?;
/// assert_eq!(reports.len(), 1);
/// assert_eq!(reports[0].unit, "a");
/// assert!(reports[0].verdict.is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn scan(rundir: &Path) -> Result<Vec<Report>> {
    judge(rundir, 1)
}

/// As [`scan`], judging the units on as many threads as the process may
/// use CPUs, each thread taking at least [`UNITS_PER_THREAD`] units: what
/// `liveness status` does. Reading a unit is system calls, which run side
/// by side on several CPUs; 1,000 units are judged about twice as fast on
/// two. Falls back on the calling thread alone when a thread cannot be
/// started.
///
/// # Errors
///
/// As [`scan`].
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let mut owners = Vec::new();
/// for name in ["a", "b"] {
///     let h = liveness::Health::builder().unit(name).rundir(dir.path()).build()?;
///     h.load()?;
///     h.set(0)?;
///     owners.push(h);
/// }
/// let reports = liveness::status::scan_parallel(dir.path())?;
/// assert_eq!(reports, liveness::status::scan(dir.path())?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn scan_parallel(rundir: &Path) -> Result<Vec<Report>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    judge(rundir, threads)
}

/// The fewest units a thread of [`scan_parallel`] judges: below that,
/// starting the thread costs more than it saves.
///
/// # Examples
///
/// ```
/// assert!(liveness::status::UNITS_PER_THREAD >= 1);
/// ```
pub const UNITS_PER_THREAD: usize = 64;

/// Judges every unit under `rundir` on up to `threads` threads, in order.
fn judge(rundir: &Path, threads: usize) -> Result<Vec<Report>> {
    let units = unit_names(rundir)?
        .into_iter()
        .map(|name| Unit::new(name, rundir))
        .collect::<Result<Vec<_>>>()?;
    let probe = Probe::new(Mode::Live);
    let check = |chunk: &[Unit]| chunk.iter().map(|u| probe.check(u)).collect::<Vec<_>>();
    let threads = threads.min(units.len() / UNITS_PER_THREAD).max(1);
    if threads == 1 {
        return Ok(check(&units));
    }
    let per_thread = units.len().div_ceil(threads);
    Ok(std::thread::scope(|scope| {
        let mut chunks = units.chunks(per_thread);
        let first = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks
            .map(|chunk| {
                let started = std::thread::Builder::new()
                    .name("liveness-status".into())
                    .spawn_scoped(scope, move || check(chunk));
                (chunk, started)
            })
            .collect();
        let mut reports = check(first);
        for (chunk, started) in others {
            match started.map(|t| t.join()) {
                Ok(Ok(done)) => reports.extend(done),
                // Not started (or it panicked): judge the chunk here.
                _ => reports.extend(check(chunk)),
            }
        }
        reports
    }))
}

/// Names of the units under `rundir`, sorted.
pub(crate) fn unit_names(rundir: &Path) -> Result<Vec<String>> {
    let dir = match crate::state::trust::open_configured_dir(rundir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(rundir, e)),
    };
    let mut names = Vec::new();
    let mut path = String::new();
    for (entry, is_dir) in fs::list_dir_kinds(dir.as_fd()).map_err(|e| Error::io(rundir, e))? {
        let Some(name) = entry.to_str() else { continue };
        if Unit::validate_name(name).is_err() {
            continue;
        }
        let is_unit = match is_dir {
            // One `stat` through the entry per file looked for, rather than
            // opening the directory: the probe that follows opens it (and
            // calls a unit directory swapped for a symlink meanwhile
            // corrupt).
            Some(true) => UNIT_FILES.iter().any(|f| {
                path.clear();
                path.push_str(name);
                path.push('/');
                path.push_str(f);
                fs::lstat_at(dir.as_fd(), &path).is_ok()
            }),
            Some(false) => false,
            // The file system does not say: open it, refusing a symlink.
            None => fs::open_dir_at(dir.as_fd(), name).is_ok_and(|sub| {
                UNIT_FILES
                    .iter()
                    .any(|f| fs::lstat_at(sub.as_fd(), f).is_ok())
            }),
        };
        if is_unit {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Renders reports as the `liveness status` table.
///
/// # Examples
///
/// ```
/// let table = liveness::status::table(&[]);
/// assert!(table.starts_with("UNIT"));
/// ```
pub fn table(reports: &[Report]) -> String {
    let rows: Vec<[String; 8]> = reports
        .iter()
        .map(|r| {
            let dash = || "-".to_owned();
            [
                r.unit.clone(),
                r.verdict.as_str().to_owned(),
                r.pid.map_or_else(dash, |p| p.to_string()),
                match r.verdict {
                    crate::Verdict::NoState => dash(),
                    crate::Verdict::OwnerGone => "no".to_owned(),
                    crate::Verdict::Unverifiable => "?".to_owned(),
                    _ if r.pid.is_some() => "yes".to_owned(),
                    _ => dash(),
                },
                r.error.map_or_else(dash, |e| e.to_string()),
                r.ready
                    .map_or_else(dash, |b| if b { "yes" } else { "no" }.to_owned()),
                r.heartbeat_age
                    .map_or_else(dash, |a| format!("{}s", text::age_text(a))),
                if r.verdict.is_ok() {
                    r.message.clone().unwrap_or_default()
                } else {
                    r.reason.clone()
                },
            ]
        })
        .collect();
    let header = [
        "UNIT",
        "VERDICT",
        "PID",
        "ALIVE",
        "ERROR",
        "READY",
        "HEARTBEAT",
        "MESSAGE",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == header.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Renders reports as one JSON array.
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::status::json(&[]), "[]");
/// ```
pub fn json(reports: &[Report]) -> String {
    crate::probe::json::array(reports.iter().map(Report::to_json))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a unit by hand: `pid` (this process) and `error`.
    fn unit(rundir: &Path, name: &str, error: Option<u32>) {
        let dir = rundir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pid"), format!("{}\n", std::process::id())).unwrap();
        if let Some(e) = error {
            std::fs::write(dir.join("error"), format!("{e}\n")).unwrap();
        }
    }

    /// `scan_parallel` says exactly what `scan` says, in the same
    /// order, on enough units to use several threads.
    #[test]
    fn parallel_status_is_status() {
        let dir = tempfile::tempdir().unwrap();
        let n = UNITS_PER_THREAD * 4 + 3;
        for i in 0..n {
            unit(
                dir.path(),
                &format!("u{i:04}"),
                [None, Some(0), Some(3)][i % 3],
            );
        }
        let one = scan(dir.path()).unwrap();
        assert_eq!(one.len(), n);
        assert!(one.windows(2).all(|w| w[0].unit < w[1].unit), "sorted");
        let verdicts: std::collections::HashSet<_> = one.iter().map(|r| r.verdict).collect();
        assert_eq!(verdicts.len(), 3, "three different verdicts: {verdicts:?}");
        assert_eq!(judge(dir.path(), 4).unwrap(), one);
        assert_eq!(scan_parallel(dir.path()).unwrap(), one);
    }

    /// Only directories with a valid name holding a unit file are units: a
    /// symlink to a unit, a plain file, an empty or foreign directory and
    /// an invalid name are not listed.
    #[test]
    fn only_unit_directories_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        unit(d, "real", Some(0));
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        std::fs::write(d.join("file"), b"").unwrap();
        std::fs::create_dir(d.join("empty")).unwrap();
        std::fs::create_dir(d.join("foreign")).unwrap();
        std::fs::write(d.join("foreign/other"), b"").unwrap();
        std::fs::create_dir(d.join("with space")).unwrap();
        std::fs::write(d.join("with space/pid"), b"1\n").unwrap();
        for (name, file) in [("by-lock", "lock"), ("by-tombstone", "tombstone")] {
            std::fs::create_dir(d.join(name)).unwrap();
            std::fs::write(d.join(name).join(file), b"").unwrap();
        }
        assert_eq!(unit_names(d).unwrap(), ["by-lock", "by-tombstone", "real"]);
        assert!(unit_names(&d.join("missing")).unwrap().is_empty());
    }
}
