//! Every unit under a run directory, at a glance.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format;
use crate::probe::{Mode, Probe, Report};
use crate::sys;
use crate::unit::{Unit, validate_unit_name};

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
/// let reports = liveness::status(dir.path())?;
/// assert_eq!(reports.len(), 1);
/// assert_eq!(reports[0].unit, "a");
/// assert!(reports[0].verdict.is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn status(rundir: &Path) -> Result<Vec<Report>> {
    let names = unit_names(rundir)?;
    let probe = Probe::new(Mode::Live);
    let mut reports = Vec::with_capacity(names.len());
    for name in names {
        let unit = Unit::new(name, rundir)?;
        reports.push(probe.check(&unit));
    }
    Ok(reports)
}

/// Names of the units under `rundir`, sorted.
pub(crate) fn unit_names(rundir: &Path) -> Result<Vec<String>> {
    let dir = match crate::trust::open_configured_dir(rundir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(rundir, e)),
    };
    let mut names = Vec::new();
    for entry in sys::list_dir(dir.as_fd()).map_err(|e| Error::io(rundir, e))? {
        let Some(name) = entry.to_str() else { continue };
        if validate_unit_name(name).is_err() {
            continue;
        }
        let Ok(sub) = sys::open_dir_at(dir.as_fd(), name) else {
            continue;
        };
        if UNIT_FILES
            .iter()
            .any(|f| sys::lstat_at(sub.as_fd(), f).is_ok())
        {
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
/// let table = liveness::status_table(&[]);
/// assert!(table.starts_with("UNIT"));
/// ```
pub fn status_table(reports: &[Report]) -> String {
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
                    .map_or_else(dash, |a| format!("{:.1}s", a.as_secs_f64())),
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
/// assert_eq!(liveness::status_json(&[]), "[]");
/// ```
pub fn status_json(reports: &[Report]) -> String {
    crate::json::array(reports.iter().map(Report::to_json))
}
