//! The tombstone: when a supervised child was born, when it died and how.
//!
//! `liveness run` writes `<rundir>/<unit>/tombstone` when the child starts
//! (`Born` only) and rewrites it when the child ends (`Died` and either
//! `ExitCode` alone or `ExitCode`, `Signal` and `SignalNumber`). The keys are
//! kubexit's, so kubexit-style tools (and any YAML parser) read it:
//!
//! ```text
//! Schema: 1
//! Born: "2026-11-23T12:00:00.123Z"
//! Died: "2026-11-23T12:00:05.456Z"
//! ExitCode: 137
//! Signal: SIGKILL
//! SignalNumber: 9
//! ```
//!
//! A child that never started (its birth dependencies were not ready, the
//! command was not found or not executable, the supervisor failed) gets a
//! tombstone without `Born`, with the reason:
//!
//! ```text
//! Schema: 1
//! Died: "2026-11-23T12:00:05.456Z"
//! ExitCode: 127
//! Reason: "nosuchcmd: No such file or directory"
//! ```
//!
//! The parser is strict: exactly these lines, in this order, or the file is
//! corrupt. kubexit's own files are read leniently by `crate::state::kubexit`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::state::format;
use crate::state::read::{self, OpenUnit};
use crate::state::unit::Unit;
use crate::vocab::text;

/// The schema version this crate writes and reads.
const SCHEMA: u32 = 1;
/// A tombstone is a few short lines.
pub(crate) const LIMIT: usize = 2048;
/// The longest `Reason`, in bytes before escaping.
pub(crate) const MAX_REASON: usize = 512;

/// A supervised child's birth and, once it has ended, its death.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use liveness::Tombstone;
///
/// let t = Tombstone::parse(
///     b"Schema: 1\nBorn: \"2026-11-23T12:00:00.123Z\"\n\
///       Died: \"2026-11-23T12:00:05.456Z\"\nExitCode: 137\n\
///       Signal: SIGKILL\nSignalNumber: 9\n",
/// )?;
/// assert_eq!(t.born, Some(UNIX_EPOCH + Duration::from_millis(1_795_435_200_123)));
/// assert_eq!(t.exit_code, Some(137));
/// assert_eq!(t.signal, Some(9));
/// assert_eq!(Tombstone::parse(&t.to_bytes())?, t);
/// # Ok::<(), liveness::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tombstone {
    /// When the child was started (millisecond precision); `None` when it
    /// never started.
    pub born: Option<SystemTime>,
    /// When it ended; `None` while it runs.
    pub died: Option<SystemTime>,
    /// Its exit status: the exit code, or 128 + N when signal N killed it;
    /// `None` while it runs. kubexit writes -1 for a signal death and for a
    /// child that never started; this crate writes 0 to 255 only.
    pub exit_code: Option<i32>,
    /// The number of the signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Why the child never started (one line), if it did not.
    pub reason: Option<String>,
}

impl Tombstone {
    /// A tombstone for a child born at `born`, still running.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = liveness::Tombstone::born(std::time::SystemTime::now());
    /// assert!(t.died.is_none());
    /// ```
    pub fn born(born: SystemTime) -> Tombstone {
        Tombstone {
            born: Some(truncate_ms(born)),
            died: None,
            exit_code: None,
            signal: None,
            reason: None,
        }
    }

    /// The tombstone of a child that never started: it "died" at `died`
    /// with status `code` (124 birth timeout, 126 not executable, 127 not
    /// found, ...) for `reason` (one line; control characters become
    /// spaces, cut at 512 bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let t = liveness::Tombstone::never_started(std::time::UNIX_EPOCH, 127, "x: not found");
    /// assert_eq!(t.born, None);
    /// assert_eq!(t.exit_code, Some(127));
    /// assert_eq!(t.reason.as_deref(), Some("x: not found"));
    /// ```
    pub fn never_started(died: SystemTime, code: u8, reason: &str) -> Tombstone {
        let mut line: String = reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut end = line.len().min(MAX_REASON);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        Tombstone {
            born: None,
            died: Some(truncate_ms(died)),
            exit_code: Some(i32::from(code)),
            signal: None,
            reason: Some(line),
        }
    }

    /// This tombstone, completed with the child's death: `signal` is the
    /// signal that killed it (the exit code is then 128 + signal).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::SystemTime;
    /// let t = liveness::Tombstone::born(SystemTime::now()).died(SystemTime::now(), 0, Some(15));
    /// assert_eq!(t.exit_code, Some(143));
    /// ```
    pub fn died(mut self, died: SystemTime, code: u8, signal: Option<i32>) -> Tombstone {
        self.died = Some(truncate_ms(died));
        self.exit_code = Some(match signal {
            Some(n) => (128 + n).min(255),
            None => i32::from(code),
        });
        self.signal = signal;
        self
    }

    /// Reads the tombstone of `unit`: `Ok(None)` when there is none.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Corrupt`] when the file or the unit directory cannot be
    /// trusted (a symlink, not a regular file, not the format above).
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let unit = liveness::Unit::new("job", dir.path())?;
    /// assert_eq!(liveness::Tombstone::read(&unit)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(unit: &Unit) -> Result<Option<Tombstone>> {
        let dir = match read::open_unit(unit) {
            OpenUnit::Missing => return Ok(None),
            OpenUnit::Bad(why) => {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    unit.dir().display().to_string(),
                    why.to_string(),
                ));
            }
            OpenUnit::Dir(fd) => fd,
        };
        use std::os::fd::AsFd;
        read_at(dir.as_fd()).map_err(|bad| {
            Error::new(
                ErrorKind::Corrupt,
                unit.file(format::TOMBSTONE).display().to_string(),
                bad.why.to_string(),
            )
        })
    }

    /// Parses a tombstone's bytes (the exact format above).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Corrupt`] when the bytes are not exactly that format.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = liveness::Tombstone::parse(b"Schema: 1\nBorn: \"1970-01-01T00:00:00.000Z\"\n")?;
    /// assert_eq!(t.born, Some(std::time::UNIX_EPOCH));
    /// assert!(liveness::Tombstone::parse(b"Born: yesterday\n").is_err());
    /// # Ok::<(), liveness::Error>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Tombstone> {
        parse_strict(bytes).map_err(|why| Error::new(ErrorKind::Corrupt, "tombstone", why))
    }

    /// The exact bytes of the file.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = liveness::Tombstone::born(std::time::UNIX_EPOCH);
    /// assert_eq!(t.to_bytes(), b"Schema: 1\nBorn: \"1970-01-01T00:00:00.000Z\"\n");
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("Schema: {SCHEMA}\n");
        if let Some(born) = self.born {
            s.push_str(&format!("Born: \"{}\"\n", rfc3339(born)));
        }
        if let Some(died) = self.died {
            s.push_str(&format!("Died: \"{}\"\n", rfc3339(died)));
            s.push_str(&format!(
                "ExitCode: {}\n",
                self.exit_code.unwrap_or(0).clamp(0, 255)
            ));
            if let Some(n) = self.signal {
                s.push_str(&format!(
                    "Signal: {}\nSignalNumber: {n}\n",
                    text::signal_name(n)
                ));
            }
            if let Some(r) = &self.reason {
                s.push_str(&format!("Reason: {}\n", quote(r)));
            }
        }
        s.into_bytes()
    }

    /// How it ended, as the `exited` verdict says it: `code 3 at
    /// 2026-11-30T05:00:00.123Z` or `killed by SIGTERM at ...`; `None`
    /// while it runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// let t = liveness::Tombstone::born(UNIX_EPOCH).died(UNIX_EPOCH, 0, Some(15));
    /// assert_eq!(t.ending().as_deref(), Some("killed by SIGTERM at 1970-01-01T00:00:00.000Z"));
    /// ```
    pub fn ending(&self) -> Option<String> {
        let died = rfc3339(self.died?);
        Some(match (self.signal, self.exit_code) {
            (Some(n), _) => format!("killed by {} at {died}", text::signal_name(n)),
            (None, Some(c)) => format!("code {c} at {died}"),
            (None, None) => format!("at {died}"),
        })
    }
}

/// The strict parser behind [`Tombstone::parse`]: the reason on failure.
fn parse_strict(bytes: &[u8]) -> std::result::Result<Tombstone, String> {
    let bad = |why: &str| why.to_owned();
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| bad("no final newline"))?;
    let lines: Vec<&str> = body.split('\n').collect();
    let mut at = 0;
    let mut field = |key: &str| -> Option<&str> {
        let value = lines.get(at)?.strip_prefix(key)?;
        at += 1;
        Some(value)
    };
    let schema = field("Schema: ").ok_or_else(|| bad("no Schema line"))?;
    if schema != SCHEMA.to_string() {
        return Err(bad(&format!("unknown schema {schema:?}")));
    }
    let born = field("Born: ")
        .map(|b| parse_quoted_time(b).ok_or_else(|| bad("bad Born line")))
        .transpose()?;
    let mut t = Tombstone {
        born,
        died: None,
        exit_code: None,
        signal: None,
        reason: None,
    };
    let Some(died) = field("Died: ") else {
        return if t.born.is_some() && lines.len() == 2 {
            Ok(t)
        } else {
            Err(bad("unexpected line"))
        };
    };
    t.died = Some(parse_quoted_time(died).ok_or_else(|| bad("bad Died line"))?);
    let code = field("ExitCode: ")
        .and_then(|c| format::decimal(c.as_bytes(), 255).ok())
        .ok_or_else(|| bad("bad ExitCode line"))?;
    t.exit_code = Some(code as i32);
    if let Some(name) = field("Signal: ") {
        let n = field("SignalNumber: ")
            .and_then(|c| format::decimal(c.as_bytes(), 127).ok())
            .ok_or_else(|| bad("bad SignalNumber line"))? as i32;
        if text::signal_name(n) != name || code != 128 + n as u64 {
            return Err(bad("Signal, SignalNumber and ExitCode disagree"));
        }
        t.signal = Some(n);
    }
    if let Some(reason) = field("Reason: ") {
        t.reason = Some(unquote(reason).ok_or_else(|| bad("bad Reason line"))?);
    }
    // Born, or a Reason for never starting; never both, and a child
    // that never started was not killed by a signal.
    if t.born.is_some() == t.reason.is_some() || (t.reason.is_some() && t.signal.is_some()) {
        return Err(bad("Born and Reason: exactly one of them"));
    }
    if lines.len() != at {
        return Err(bad("unexpected line"));
    }
    Ok(t)
}

/// Reads the unit's own `tombstone` (strict format) from its open
/// directory: `Ok(None)` when there is none.
pub(crate) fn read_at(
    dir: std::os::fd::BorrowedFd<'_>,
) -> std::result::Result<Option<Tombstone>, read::Bad> {
    match read::read_file(dir, format::TOMBSTONE, LIMIT)? {
        None => Ok(None),
        Some(b) => parse_strict(&b).map(Some).map_err(|why| {
            read::Bad::new(format::TOMBSTONE, format::Corruption::NotTombstone(why))
        }),
    }
}

/// `"text"` with `"` and `\` escaped: a YAML double-quoted scalar that
/// kubexit's decoder and ours read back as `text` (which holds no control
/// characters).
fn quote(text: &str) -> String {
    let mut q = String::with_capacity(text.len() + 2);
    q.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// The inverse of [`quote`], strict: `None` for anything it never writes.
fn unquote(q: &str) -> Option<String> {
    let inner = q.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                e @ ('"' | '\\') => out.push(e),
                _ => return None,
            },
            '"' => return None,
            c if c.is_control() => return None,
            c => out.push(c),
        }
    }
    (out.len() <= MAX_REASON).then_some(out)
}

fn truncate_ms(t: SystemTime) -> SystemTime {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01 (`days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 in UTC with milliseconds: `2026-11-23T12:00:00.123Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses exactly what [`rfc3339`] writes, in double quotes.
fn parse_quoted_time(s: &str) -> Option<SystemTime> {
    let s = s.strip_prefix('"')?.strip_suffix('"')?;
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if y < 1970
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    if civil_from_days(days) != (y, mo as u32, d as u32) {
        return None; // 31 February
    }
    let total = ((days * 24 + h) * 60 + mi) * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_millis((total * 1000 + ms) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// RFC 3339 formatting matches known instants (epoch, leap day, Y2038+).
    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400_000)), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(at(1_795_435_200_123)), "2026-11-23T12:00:00.123Z");
        assert_eq!(rfc3339(at(4_102_444_799_999)), "2099-12-31T23:59:59.999Z");
    }

    /// Every day for 200 years formats and parses back to itself.
    #[test]
    fn rfc3339_round_trips_every_day() {
        for day in 0..(200 * 366) {
            let t = at(day * 86_400_000 + 45_296_789);
            let s = format!("\"{}\"", rfc3339(t));
            assert_eq!(parse_quoted_time(&s), Some(t), "{s}");
        }
    }

    /// Impossible dates and sloppy spellings are refused.
    #[test]
    fn time_parser_is_strict() {
        for s in [
            "\"2026-02-30T00:00:00.000Z\"",
            "\"2026-13-01T00:00:00.000Z\"",
            "\"2026-01-01T24:00:00.000Z\"",
            "\"2026-01-01 00:00:00.000Z\"",
            "\"2026-01-01T00:00:00Z\"",
            "\"2026-01-01T00:00:00.000+00:00\"",
            "2026-01-01T00:00:00.000Z",
            "\"+026-01-01T00:00:00.000Z\"",
        ] {
            assert_eq!(parse_quoted_time(s), None, "{s}");
        }
    }

    /// The bytes are exactly the documented ones, for a running child, an
    /// exit code and a signal.
    #[test]
    fn exact_bytes() {
        let t = Tombstone::born(at(1_795_435_200_123));
        assert_eq!(
            t.to_bytes(),
            b"Schema: 1\nBorn: \"2026-11-23T12:00:00.123Z\"\n"
        );
        let d = t.clone().died(at(1_795_435_205_456), 3, None);
        assert_eq!(
            String::from_utf8(d.to_bytes()).unwrap(),
            "Schema: 1\nBorn: \"2026-11-23T12:00:00.123Z\"\n\
             Died: \"2026-11-23T12:00:05.456Z\"\nExitCode: 3\n"
        );
        let k = t.died(at(1_795_435_205_456), 0, Some(9));
        assert_eq!(
            String::from_utf8(k.to_bytes()).unwrap(),
            "Schema: 1\nBorn: \"2026-11-23T12:00:00.123Z\"\n\
             Died: \"2026-11-23T12:00:05.456Z\"\nExitCode: 137\n\
             Signal: SIGKILL\nSignalNumber: 9\n"
        );
        for x in [&d, &k] {
            assert_eq!(&Tombstone::parse(&x.to_bytes()).unwrap(), x);
        }
    }

    /// Anything else is corrupt: wrong schema, extra lines, disagreeing
    /// signal fields, a missing newline.
    #[test]
    fn parser_refuses_variants() {
        for bad in [
            &b""[..],
            b"Schema: 2\nBorn: \"1970-01-01T00:00:00.000Z\"\n",
            b"Schema: 1\nBorn: \"1970-01-01T00:00:00.000Z\"",
            b"Schema: 1\nBorn: \"1970-01-01T00:00:00.000Z\"\nExtra: 1\n",
            b"Schema: 1\nBorn: \"1970-01-01T00:00:00.000Z\"\nDied: \"1970-01-01T00:00:00.000Z\"\n",
            b"Schema: 1\nBorn: \"1970-01-01T00:00:00.000Z\"\nDied: \"1970-01-01T00:00:00.000Z\"\nExitCode: 01\n",
            b"Schema: 1\nBorn: \"1970-01-01T00:00:00.000Z\"\nDied: \"1970-01-01T00:00:00.000Z\"\nExitCode: 137\nSignal: SIGTERM\nSignalNumber: 9\n",
            b"Schema: 1\nBorn: \"1970-01-01T00:00:00.000Z\"\nDied: \"1970-01-01T00:00:00.000Z\"\nExitCode: 1\nSignal: SIGKILL\nSignalNumber: 9\n",
        ] {
            assert!(Tombstone::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
