//! kubexit's tombstone files: `<graveyard>/<name>`, one file per
//! container, written by kubexit (github.com/karlkfi/kubexit,
//! `pkg/tombstone/tombstone.go`) and, for kubexit's watchers, by
//! `liveness run` when its unit has a graveyard (see [`Unit::graveyard`]).
//!
//! kubexit writes them with `sigs.k8s.io/yaml` (JSON turned into YAML) and
//! reads them with a case-insensitive decoder that ignores unknown keys.
//! Its files differ from ours: times in RFC 3339 with up to nine
//! fractional digits (trailing zeros trimmed, none at all on a whole
//! second) and the local offset (`+01:00`) when `TZ` is set; `ExitCode: -1`
//! for a signal death and for a child that never started (then without
//! `Born`); no `Schema`. They are also written in place (truncate, then
//! write), so a reader can find one empty. This module reads them
//! leniently; we write ours strictly, in our own format, which kubexit's
//! decoder reads (it needs `Died`; it ignores `Schema`, `Signal`,
//! `SignalNumber` and `Reason`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::os::fs;
use crate::state::tombstone::{self, Tombstone};
use crate::state::unit::Unit;
use crate::vocab::text;

/// What reading `<graveyard>/<name>` found.
#[derive(Debug)]
pub(crate) enum Found {
    /// No such file, or one still empty (kubexit has created it and not
    /// written it yet), or a directory (a unit directory of an older
    /// layout): no tombstone.
    Nothing,
    /// A tombstone.
    Tombstone(Tombstone),
}

/// Reads `unit`'s kubexit tombstone file, if the unit has a graveyard.
///
/// The file must be *trusted* (owned by us or by root, not writable by
/// group or others, one link): an actor never stops a child on a file
/// anyone could have written.
///
/// # Errors
///
/// One line naming the file: not a regular file, untrusted, unreadable,
/// or not a tombstone.
pub(crate) fn read(unit: &Unit) -> Result<Found, String> {
    let Some(graveyard) = unit.graveyard() else {
        return Ok(Found::Nothing);
    };
    let path = graveyard.join(unit.name());
    let shown = path.display();
    let dir = match fs::open_dir(graveyard) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(format!("{}: {}", graveyard.display(), text::error_text(&e))),
    };
    let mut file = match fs::open_read_at(dir.as_fd(), unit.name()) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(format!("{shown}: {}", text::error_text(&e))),
    };
    let st = fs::fstat(&file).map_err(|e| format!("{shown}: {}", text::error_text(&e)))?;
    if fs::is_dir(&st) {
        return Ok(Found::Nothing);
    }
    if !fs::is_regular(&st) {
        return Err(format!("{shown}: not a regular file"));
    }
    crate::state::trust::actor_file(&path, &st, &[])?;
    let mut buf = Vec::new();
    let size = u64::try_from(st.st_size).unwrap_or(u64::MAX);
    match fs::read_limited(&mut file, size, &mut buf, tombstone::LIMIT) {
        Ok(true) => {}
        Ok(false) => return Err(format!("{shown}: larger than {} bytes", tombstone::LIMIT)),
        Err(e) => return Err(format!("{shown}: {}", text::error_text(&e))),
    }
    match parse(&buf) {
        Ok(Some(t)) => Ok(Found::Tombstone(t)),
        Ok(None) => Ok(Found::Nothing),
        Err(why) => Err(format!("{shown}: {why}")),
    }
}

/// Parses a kubexit tombstone leniently: `Key: value` lines, keys matched
/// without regard to case, unknown keys ignored, values quoted or not.
/// `Ok(None)` for an empty file.
///
/// # Errors
///
/// Why the bytes are not a tombstone: not UTF-8, a line that is not
/// `Key: value`, a time or code that does not parse, neither `Born` nor
/// `Died`.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<Tombstone>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut t = Tombstone::born(UNIX_EPOCH);
    t.born = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') || line == "---" {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not a 'Key: value' line: {:?}", cut(line)))?;
        let value = unquote(value.trim());
        let time = |v: &str| parse_time(v).ok_or_else(|| format!("bad time {:?}", cut(v)));
        match key.trim().to_ascii_lowercase().as_str() {
            "born" => t.born = Some(time(value)?),
            "died" => t.died = Some(time(value)?),
            "exitcode" => {
                t.exit_code = Some(
                    value
                        .parse::<i32>()
                        .map_err(|_| format!("bad ExitCode {:?}", cut(value)))?,
                );
            }
            _ => {}
        }
    }
    if t.born.is_none() && t.died.is_none() {
        return Err("neither Born nor Died".into());
    }
    Ok(Some(t))
}

fn cut(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A YAML scalar without its quotes (double or single).
fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// RFC 3339 as Go writes it: `2026-11-30T04:43:54.197452445Z`, with 0 to 9
/// fractional digits and `Z` or an offset `±hh:mm` (`t`, `z` and a space
/// for `T` accepted too).
pub(crate) fn parse_time(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        (!part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut at = 19;
    let mut nanos = 0u32;
    if b[at] == b'.' {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let frac: u32 = s[at + 1..at + 1 + digits].parse().ok()?;
        nanos = frac * 10u32.pow(9 - digits as u32);
        at += 1 + digits;
    }
    let offset_s: i64 = match &s[at..] {
        "Z" | "z" => 0,
        off if off.len() == 6 && matches!(&off[..1], "+" | "-") && &off[3..4] == ":" => {
            let oh = num(at + 1..at + 3)?;
            let om = num(at + 4..at + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if &off[..1] == "-" { -o } else { o }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = tombstone::days_from_civil(y, mo as u32, d as u32);
    if tombstone::civil_from_days(days) != (y, mo as u32, d as u32) {
        return None;
    }
    let secs = ((days * 24 + h) * 60 + mi) * 60 + sec - offset_s;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// The graveyard of `unit`, opened (created, 0755, if needed): where
/// `liveness run` mirrors the tombstone. `None` without a graveyard.
pub(crate) fn open_graveyard(unit: &Unit) -> Option<io::Result<OwnedFd>> {
    let g = unit.graveyard()?;
    Some(open_or_create(g))
}

fn open_or_create(g: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(fs::DIR_MODE)
        .create(g)?;
    fs::open_dir(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64, ns: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(s, ns)
    }

    /// Go's RFC 3339 as kubexit writes it: nanoseconds, trimmed fractions,
    /// none on a whole second, `Z` or an offset; all name one instant.
    #[test]
    fn go_times() {
        let t = 1_796_013_834; // 2026-11-30T04:43:54Z
        assert_eq!(
            parse_time("2026-11-30T04:43:54.197452445Z"),
            Some(at(t, 197_452_445))
        );
        assert_eq!(
            parse_time("2026-11-30T04:43:54.2Z"),
            Some(at(t, 200_000_000))
        );
        assert_eq!(parse_time("2026-11-30T04:43:54Z"), Some(at(t, 0)));
        assert_eq!(parse_time("2026-11-30T05:43:54+01:00"), Some(at(t, 0)));
        assert_eq!(
            parse_time("2026-11-29T23:43:54.5-05:00"),
            Some(at(t, 500_000_000))
        );
        for bad in [
            "2026-11-30",
            "2026-11-30T04:43:54",
            "2026-11-30T04:43:54.Z",
            "2026-11-30T04:43:54.1234567890Z",
            "2026-02-30T04:43:54Z",
            "2026-11-30T04:43:54+0100",
            "yesterday",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    /// Lenient: any case, quotes or none, unknown keys ignored, no Schema,
    /// no Born, ExitCode -1; an empty file is "not written yet"; a line
    /// that is not `Key: value` or a file with neither time is an error.
    #[test]
    fn lenient_parse() {
        let t = parse(b"died: 2026-11-30T04:43:54Z\nexitcode: -1\nOther: x\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.born, t.died, t.exit_code),
            (None, Some(at(1_796_013_834, 0)), Some(-1))
        );
        assert_eq!(parse(b"").unwrap(), None);
        assert_eq!(parse(b"\n").unwrap(), None);
        assert!(parse(b"ExitCode: 1\n").is_err());
        assert!(parse(b"garbage\n").is_err());
        assert!(parse(b"Died: \"2026-11-30T04:43:54Z\"\nExitCode: one\n").is_err());
        // Our own strict format is read too.
        let ours = Tombstone::born(at(1, 0)).died(at(2, 0), 3, None);
        let back = parse(&ours.to_bytes()).unwrap().unwrap();
        assert_eq!(
            (back.born, back.died, back.exit_code),
            (ours.born, ours.died, Some(3))
        );
    }
}
