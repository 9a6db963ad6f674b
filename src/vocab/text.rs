//! The words of every input and every message, defined once: canonical
//! decimal numbers, durations, signal names and operating-system errors.
//!
//! The library reads them from state files and environment variables and
//! writes them in its lines; the `liveness` binary reads them from its
//! command line and writes them in its own lines. Both use these functions,
//! so a flag, a variable and a state file never disagree about what `30`,
//! `05` or `1m30s` means, and a message never prints a duration or a signal
//! two ways. Not part of the library's API (hidden from its documentation):
//! the binary can only reach public items.

use std::io;
use std::time::Duration;

/// One year: the longest heartbeat deadline, grace period, timeout or
/// budget anything accepts.
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::text::YEAR.as_secs(), 365 * 24 * 3600);
/// ```
pub const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why bytes are not a canonical decimal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDecimal {
    /// Nothing at all.
    Empty,
    /// Anything but `[0-9]+`, or a leading zero: a sign, a space, `0x10`,
    /// `05`.
    NotDigits,
    /// Digits, but more than the maximum.
    OutOfRange,
}

/// The one parser of decimal numbers: digits only, no sign, no space, no
/// leading zero (`0` itself excepted), at most `max`. State files, flags
/// and environment variables all go through it.
///
/// # Errors
///
/// [`NotDecimal`], saying which rule the bytes break.
///
/// # Examples
///
/// ```
/// use liveness::text::{NotDecimal, decimal};
/// assert_eq!(decimal(b"42", 100), Ok(42));
/// assert_eq!(decimal(b"042", 100), Err(NotDecimal::NotDigits));
/// assert_eq!(decimal(b"101", 100), Err(NotDecimal::OutOfRange));
/// ```
pub fn decimal(bytes: &[u8], max: u64) -> Result<u64, NotDecimal> {
    if bytes.is_empty() {
        return Err(NotDecimal::Empty);
    }
    if !bytes.iter().all(u8::is_ascii_digit) || (bytes.len() > 1 && bytes[0] == b'0') {
        return Err(NotDecimal::NotDigits);
    }
    if bytes.len() > 19 {
        return Err(NotDecimal::OutOfRange);
    }
    let value = bytes
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    if value > max {
        return Err(NotDecimal::OutOfRange);
    }
    Ok(value)
}

/// A canonical decimal number ([`decimal`]) from `min` to `max`, as a flag
/// or an environment variable gives it; `None` for anything else.
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::text::number("8081", 1, 65535), Some(8081));
/// assert_eq!(liveness::text::number("0", 1, 65535), None);
/// assert_eq!(liveness::text::number("+80", 1, 65535), None);
/// ```
pub fn number(text: &str, min: u64, max: u64) -> Option<u64> {
    decimal(text.as_bytes(), max).ok().filter(|n| *n >= min)
}

/// A duration as users write it: a canonical decimal number of `bare`
/// (seconds for most options; milliseconds where an option always took
/// them), or Go's form, as kubexit's variables and Go programs write
/// durations: one or more numbers, each with an optional fraction and a
/// unit (`ns`, `us` or `µs`, `ms`, `s`, `m`, `h`): `30s`, `1.5s`, `1m30s`,
/// `500ms`, `2h`. At most a [`YEAR`]; no sign. `None` for anything else.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use liveness::text::duration;
/// let s = Duration::from_secs(1);
/// assert_eq!(duration("90", s), Some(Duration::from_secs(90)));
/// assert_eq!(duration("1m30s", s), Some(Duration::from_secs(90)));
/// assert_eq!(duration("1.5s", s), Some(Duration::from_millis(1500)));
/// assert_eq!(duration("800", Duration::from_millis(1)), Some(Duration::from_millis(800)));
/// assert_eq!(duration("soon", s), None);
/// ```
pub fn duration(text: &str, bare: Duration) -> Option<Duration> {
    let nanos = match number(text, 0, u64::MAX) {
        Some(n) => u128::from(n).checked_mul(bare.as_nanos())?,
        None => go_duration_nanos(text)?,
    };
    (nanos <= YEAR.as_nanos())
        .then(|| Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
}

/// Go's `time.ParseDuration` without a sign, in nanoseconds (fractions
/// of a nanosecond dropped); `None` on overflow.
fn go_duration_nanos(text: &str) -> Option<u128> {
    if text.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => a.split_at(a.bytes().take_while(u8::is_ascii_digit).count()),
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut part = int.checked_mul(unit)?;
        if !frac.is_empty() {
            // Eighteen digits are far below a nanosecond of an hour.
            let frac = &frac[..frac.len().min(18)];
            let scale = 10u128.pow(frac.len() as u32);
            part = part.checked_add(frac.parse::<u128>().ok()? * unit / scale)?;
        }
        total = total.checked_add(part)?;
        rest = next;
    }
    Some(total)
}

/// A duration as every message shows it: `30 s`, `1.5 s`, `0.25 s`.
/// Measured ages (a heartbeat's) are shown by [`age_text`] instead.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// assert_eq!(liveness::text::duration_text(Duration::from_secs(30)), "30 s");
/// assert_eq!(liveness::text::duration_text(Duration::from_millis(1500)), "1.5 s");
/// ```
pub fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// A measured age in seconds with one decimal, truncated, as `health.sh`
/// computes it with integer arithmetic: `31.2` for 31,299 ms, `30` for a
/// whole number of seconds. Both probes and `liveness status` print ages
/// this way, so no two of them show one unit's age differently.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// assert_eq!(liveness::text::age_text(Duration::from_millis(31_299)), "31.2");
/// assert_eq!(liveness::text::age_text(Duration::from_secs(30)), "30");
/// ```
pub fn age_text(age: Duration) -> String {
    let ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
    if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{}", ms / 1000, ms % 1000 / 100)
    }
}

/// A signal's name: `SIGTERM`; `SIGRTMIN+N` for a real-time signal;
/// `SIG<n>` for a number that names none.
///
/// # Examples
///
/// ```
/// assert_eq!(liveness::text::signal_name(15), "SIGTERM");
/// ```
pub fn signal_name(n: i32) -> String {
    match nix::sys::signal::Signal::try_from(n) {
        Ok(s) => s.as_str().to_owned(),
        Err(_) => {
            let min = nix::libc::SIGRTMIN();
            if n >= min {
                format!("SIGRTMIN+{}", n - min)
            } else {
                format!("SIG{n}")
            }
        }
    }
}

/// The text of an operating-system error without Rust's ` (os error N)`
/// suffix, for one-line messages.
///
/// # Examples
///
/// ```
/// let e = std::io::Error::from_raw_os_error(32);
/// assert_eq!(liveness::text::error_text(&e), "Broken pipe");
/// ```
pub fn error_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only canonical decimals pass, and each refusal says which rule.
    #[test]
    fn decimals_are_canonical() {
        assert_eq!(decimal(b"0", 0), Ok(0));
        assert_eq!(decimal(b"", 9), Err(NotDecimal::Empty));
        for bad in [&b"-1"[..], b"+1", b" 1", b"1 ", b"01", b"0x1", b"1.0"] {
            assert_eq!(decimal(bad, 9), Err(NotDecimal::NotDigits), "{bad:?}");
        }
        assert_eq!(
            decimal(b"99999999999999999999", u64::MAX),
            Err(NotDecimal::OutOfRange)
        );
        assert_eq!(number("5", 6, 9), None, "below the minimum");
    }

    /// Durations: a bare number of the option's unit, or Go's forms
    /// (fractions included), each at most a year; nothing else.
    #[test]
    fn durations() {
        let s = Duration::from_secs(1);
        for (v, ms) in [
            ("30", 30_000),
            ("30s", 30_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("2h", 7_200_000),
            ("0s", 0),
            ("0", 0),
            ("1.5s", 1_500),
            (".5s", 500),
            ("5.s", 5_000),
            ("1.5h", 5_400_000),
            ("1h0.25m", 3_615_000),
            ("1500000us", 1_500),
            ("1500000µs", 1_500),
            ("05s", 5_000),
        ] {
            assert_eq!(duration(v, s), Some(Duration::from_millis(ms)), "{v}");
        }
        assert_eq!(duration("1ns", s), Some(Duration::from_nanos(1)));
        assert_eq!(
            duration("800", Duration::from_millis(1)),
            Some(Duration::from_millis(800))
        );
        for v in [
            "",
            "s",
            ".s",
            "1.5",
            "-1s",
            "+1s",
            "10d",
            "1s2",
            "99999999999h",
            "05",
            "1 s",
            "1S",
        ] {
            assert_eq!(duration(v, s), None, "{v}");
        }
        assert_eq!(duration("31536000", s), Some(YEAR));
        assert_eq!(duration("8760h", s), Some(YEAR));
        assert_eq!(duration("31536001", s), None);
        assert_eq!(duration("8760h1ns", s), None);
    }

    /// Real-time signals are named from SIGRTMIN, as `kill -l` does.
    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), "SIGKILL");
        let rt = nix::libc::SIGRTMIN() + 2;
        assert_eq!(signal_name(rt), "SIGRTMIN+2");
    }

    /// Ages print like health.sh prints them: truncated tenths.
    #[test]
    fn ages_are_truncated_tenths() {
        let ms = Duration::from_millis;
        assert_eq!(age_text(ms(31_299)), "31.2");
        assert_eq!(age_text(ms(30_000)), "30");
        assert_eq!(age_text(ms(50)), "0.0");
        assert_eq!(age_text(ms(1_050)), "1.0");
    }
}
