//! The exact bytes of every state file: names, parsers and formatters.
//!
//! This module is pure (no I/O) and is the Rust half of
//! `doc/state-format.md`; `scripts/health.sh` is the shell half. Parsers are
//! strict: one decimal number without sign, spaces or leading zeros, and at
//! most one trailing newline. Anything else is corrupt, never healthy.

use std::fmt;

use crate::vocab::text::{self, NotDecimal};

/// `pid`: the owner's pid, decimal (compatible with the original module).
pub(crate) const PID: &str = "pid";
/// `error`: the current error code, decimal, 0 = healthy (compatible).
pub(crate) const ERROR: &str = "error";
/// `starttime`: field 22 of `/proc/<pid>/stat` of the owner.
pub(crate) const STARTTIME: &str = "starttime";
/// `pidns`: inode number of the owner's PID namespace.
pub(crate) const PIDNS: &str = "pidns";
/// `lock`: held with `flock(LOCK_EX)` by the owning process.
pub(crate) const LOCK: &str = "lock";
/// `ready`: present while the unit is ready for traffic.
pub(crate) const READY: &str = "ready";
/// `heartbeat`: `<deadline-seconds> <boottime-ms>`.
pub(crate) const HEARTBEAT: &str = "heartbeat";
/// `message`: one line, the human reason for the current error.
pub(crate) const MESSAGE: &str = "message";
/// `tombstone`: written by `liveness run` when its child is born and dies.
pub(crate) const TOMBSTONE: &str = "tombstone";

/// What an owner reports, in the order a reset removes it: `ready` and
/// `error` first, so that no probe sees a ready or healthy unit while it is
/// being reset. One list for every writer that clears a unit (`reset`, a
/// new incarnation, the supervisor when its child has ended).
pub(crate) const REPORT_FILES: [&str; 4] = [READY, ERROR, HEARTBEAT, MESSAGE];
/// The owner's identity, removed after its report and in this order: with
/// `pid` gone first, no reader pairs a pid with another process's start
/// time (see `read::owner`).
pub(crate) const IDENTITY_FILES: [&str; 3] = [PID, STARTTIME, PIDNS];

/// Prefix of the temporary files of an atomic write:
/// `.tmp.<writer-pid>.<sequence>.<name>`.
pub(crate) const TMP_PREFIX: &str = ".tmp.";

/// Largest pid, error code and deadline we accept: what a shell's arithmetic
/// and a C `int` agree on.
pub(crate) const MAX_INT: u64 = i32::MAX as u64;
/// Largest heartbeat deadline: one year, in seconds.
pub(crate) const MAX_DEADLINE_S: u64 = text::YEAR.as_secs();
/// Largest beat stamp: 15 decimal digits of milliseconds (31,000 years of
/// uptime), so `health.sh` can do the arithmetic in 64 bits.
pub(crate) const MAX_STAMP_MS: u64 = 999_999_999_999_999;
/// Largest start time or namespace inode: what fits a signed 64-bit integer.
pub(crate) const MAX_U63: u64 = i64::MAX as u64;
/// Longest message we write, in bytes ([`Health::MAX_MESSAGE`]).
///
/// [`Health::MAX_MESSAGE`]: crate::Health::MAX_MESSAGE
pub(crate) const MAX_MESSAGE: usize = 512;
/// Size limit of a numeric state file when reading.
pub(crate) const NUMBER_FILE_LIMIT: usize = 64;
/// How much of a message file a reader looks at (it uses the first line).
pub(crate) const MESSAGE_FILE_LIMIT: usize = 4096;

/// Why a state file cannot be trusted. The words are shared with
/// `health.sh`, which prints the same ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Corruption {
    /// The path is a symbolic link; we never follow them.
    Symlink,
    /// A directory, FIFO, socket or device where a regular file belongs.
    NotRegular,
    /// The unit directory itself is not a directory.
    NotDirectory,
    /// Zero bytes, or a lone newline.
    Empty,
    /// Anything but `[0-9]+` (a sign, a space, a leading zero, letters).
    NotDecimal,
    /// A decimal number beyond the field's range (or zero for a pid).
    OutOfRange,
    /// More than one line.
    ExtraLines,
    /// Larger than any valid value of this file.
    TooLarge,
    /// Not `<deadline> <stamp>` (heartbeat).
    NotHeartbeat,
    /// A beat stamp later than the reader's clock.
    FutureStamp,
    /// The reader may not open it.
    Unreadable(String),
    /// Not the tombstone format (the reason).
    NotTombstone(String),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Symlink => f.write_str("symlink"),
            Corruption::NotRegular => f.write_str("not a regular file"),
            Corruption::NotDirectory => f.write_str("not a directory"),
            Corruption::Empty => f.write_str("empty"),
            Corruption::NotDecimal => f.write_str("not a decimal number"),
            Corruption::OutOfRange => f.write_str("out of range"),
            Corruption::ExtraLines => f.write_str("more than one line"),
            Corruption::TooLarge => f.write_str("too large"),
            Corruption::NotHeartbeat => f.write_str("not '<deadline> <stamp>'"),
            Corruption::FutureStamp => f.write_str("beat stamp is in the future"),
            Corruption::Unreadable(why) => write!(f, "unreadable: {why}"),
            Corruption::NotTombstone(why) => f.write_str(why),
        }
    }
}

/// The single line of a state file: its bytes without the one optional
/// trailing newline.
pub(crate) fn one_line(bytes: &[u8]) -> Result<&[u8], Corruption> {
    if bytes.is_empty() {
        return Err(Corruption::Empty);
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.contains(&b'\n') {
        return Err(Corruption::ExtraLines);
    }
    Ok(body)
}

/// A decimal number `0..=max` in canonical form ([`text::decimal`]: digits
/// only, no leading zero), its refusal in the words of a corrupt file.
pub(crate) fn decimal(body: &[u8], max: u64) -> Result<u64, Corruption> {
    text::decimal(body, max).map_err(|e| match e {
        NotDecimal::Empty => Corruption::Empty,
        NotDecimal::NotDigits => Corruption::NotDecimal,
        NotDecimal::OutOfRange => Corruption::OutOfRange,
    })
}

/// Parses a `pid` file: `1..=2147483647`.
pub(crate) fn parse_pid(bytes: &[u8]) -> Result<u32, Corruption> {
    match decimal(one_line(bytes)?, MAX_INT)? {
        0 => Err(Corruption::OutOfRange),
        // MAX_INT fits u32.
        pid => Ok(pid as u32),
    }
}

/// Parses an `error` file: `0..=2147483647`.
pub(crate) fn parse_error(bytes: &[u8]) -> Result<u32, Corruption> {
    decimal(one_line(bytes)?, MAX_INT).map(|v| v as u32)
}

/// Parses a `starttime` or `pidns` file.
pub(crate) fn parse_u63(bytes: &[u8]) -> Result<u64, Corruption> {
    decimal(one_line(bytes)?, MAX_U63)
}

/// A parsed `heartbeat` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Heartbeat {
    /// The deadline the writer declared, in seconds.
    pub deadline_s: u64,
    /// `CLOCK_BOOTTIME` of the last beat, in milliseconds.
    pub stamp_ms: u64,
}

/// Parses a `heartbeat` file: `<deadline-seconds> <boottime-ms>`.
pub(crate) fn parse_heartbeat(bytes: &[u8]) -> Result<Heartbeat, Corruption> {
    let body = one_line(bytes)?;
    let Some(space) = body.iter().position(|&b| b == b' ') else {
        return Err(Corruption::NotHeartbeat);
    };
    let (d, s) = (&body[..space], &body[space + 1..]);
    if d.is_empty() || s.is_empty() {
        return Err(Corruption::NotHeartbeat);
    }
    let deadline_s = decimal(d, MAX_DEADLINE_S)?;
    if deadline_s == 0 {
        return Err(Corruption::OutOfRange);
    }
    let stamp_ms = decimal(s, MAX_STAMP_MS)?;
    Ok(Heartbeat {
        deadline_s,
        stamp_ms,
    })
}

/// The first line of a `message` file, lossily decoded, with control
/// characters replaced by `?`.
pub(crate) fn parse_message(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `<n>\n`.
pub(crate) fn format_number(n: u64) -> Vec<u8> {
    format!("{n}\n").into_bytes()
}

/// `<deadline-seconds> <boottime-ms>\n`.
pub(crate) fn format_heartbeat(hb: Heartbeat) -> Vec<u8> {
    format!("{} {}\n", hb.deadline_s, hb.stamp_ms).into_bytes()
}

/// One line of at most [`MAX_MESSAGE`] bytes: control characters (newlines
/// included) become spaces, surrounding whitespace is trimmed, and a long
/// message is cut at a character boundary. Returns `None` when nothing is
/// left.
pub(crate) fn sanitize_message(msg: &str) -> Option<String> {
    let flat: String = msg
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = flat.trim();
    if trimmed.is_empty() {
        return None;
    }
    let mut end = trimmed.len().min(MAX_MESSAGE);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    Some(trimmed[..end].trim_end().to_owned())
}

/// `<message>\n`.
pub(crate) fn format_message(msg: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(msg.len() + 1);
    v.extend_from_slice(msg.as_bytes());
    v.push(b'\n');
    v
}

/// Whether `name` is a temporary file of an atomic write, and if so the pid of
/// the process that made it.
pub(crate) fn tmp_writer_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TMP_PREFIX)?;
    let pid = rest.split('.').next()?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid file accepts exactly `[1-9][0-9]*` up to i32::MAX, with or
    /// without one trailing newline (the original module writes none).
    #[test]
    fn pid_parser_is_strict() {
        assert_eq!(parse_pid(b"42"), Ok(42));
        assert_eq!(parse_pid(b"42\n"), Ok(42));
        assert_eq!(parse_pid(b"2147483647\n"), Ok(2_147_483_647));
        assert_eq!(parse_pid(b""), Err(Corruption::Empty));
        assert_eq!(parse_pid(b"\n"), Err(Corruption::Empty));
        assert_eq!(parse_pid(b"0"), Err(Corruption::OutOfRange));
        assert_eq!(parse_pid(b"2147483648"), Err(Corruption::OutOfRange));
        assert_eq!(
            parse_pid(b"99999999999999999999999"),
            Err(Corruption::OutOfRange)
        );
        for bad in [
            &b"self"[..],
            b"-5",
            b"+5",
            b" 5",
            b"5 ",
            b"05",
            b"0x10",
            b"5\r\n",
            b"\xff\xfe",
            b"1 2",
            b"*",
            b"..",
        ] {
            assert_eq!(parse_pid(bad), Err(Corruption::NotDecimal), "{bad:?}");
        }
        assert_eq!(parse_pid(b"1\n2"), Err(Corruption::ExtraLines));
        assert_eq!(parse_pid(b"1\n\n"), Err(Corruption::ExtraLines));
        assert_eq!(parse_pid(b"\n1"), Err(Corruption::ExtraLines));
    }

    /// The error file rejects what the original probe let through: garbage,
    /// negative numbers, hex, huge numbers, Python's `True`.
    #[test]
    fn error_parser_rejects_what_the_original_accepted() {
        assert_eq!(parse_error(b"0"), Ok(0));
        assert_eq!(parse_error(b"0\n"), Ok(0));
        assert_eq!(parse_error(b"3\n"), Ok(3));
        assert_eq!(parse_error(b"garbage"), Err(Corruption::NotDecimal));
        assert_eq!(parse_error(b"-5"), Err(Corruption::NotDecimal));
        assert_eq!(parse_error(b"True"), Err(Corruption::NotDecimal));
        assert_eq!(parse_error(b"0x10"), Err(Corruption::NotDecimal));
        assert_eq!(parse_error(b"00"), Err(Corruption::NotDecimal));
        assert_eq!(parse_error(b"  0"), Err(Corruption::NotDecimal));
        assert_eq!(
            parse_error(b"99999999999999999999"),
            Err(Corruption::OutOfRange)
        );
    }

    /// A heartbeat is exactly `<deadline> <stamp>`, deadline 1..=1 year.
    #[test]
    fn heartbeat_parser() {
        assert_eq!(
            parse_heartbeat(b"30 123456\n"),
            Ok(Heartbeat {
                deadline_s: 30,
                stamp_ms: 123_456
            })
        );
        assert_eq!(parse_heartbeat(b"30\n"), Err(Corruption::NotHeartbeat));
        assert_eq!(parse_heartbeat(b"30 \n"), Err(Corruption::NotHeartbeat));
        assert_eq!(parse_heartbeat(b" 30\n"), Err(Corruption::NotHeartbeat));
        assert_eq!(parse_heartbeat(b"30  5\n"), Err(Corruption::NotDecimal));
        assert_eq!(parse_heartbeat(b"0 5\n"), Err(Corruption::OutOfRange));
        assert_eq!(parse_heartbeat(b"30 5 6\n"), Err(Corruption::NotDecimal));
        assert_eq!(
            parse_heartbeat(b"30 1000000000000000\n"),
            Err(Corruption::OutOfRange)
        );
        let hb = Heartbeat {
            deadline_s: 5,
            stamp_ms: 77,
        };
        assert_eq!(parse_heartbeat(&format_heartbeat(hb)), Ok(hb));
    }

    /// Messages are one line, without control characters, at most 512 bytes,
    /// cut at a character boundary.
    #[test]
    fn message_sanitizing() {
        assert_eq!(sanitize_message("  db\ndown\t "), Some("db down".into()));
        assert_eq!(sanitize_message(" \n\t"), None);
        let long = "é".repeat(400);
        let cut = sanitize_message(&long).unwrap();
        assert!(cut.len() <= MAX_MESSAGE);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(parse_message(b"a\x07b\nsecond"), "a?b");
        assert_eq!(parse_message(b"\xffok"), "\u{fffd}ok");
    }

    /// Writers and readers agree on every numeric file.
    #[test]
    fn formats_round_trip() {
        for n in [0u64, 1, 42, MAX_INT] {
            assert_eq!(parse_error(&format_number(n)), Ok(n as u32));
        }
        assert_eq!(parse_u63(&format_number(MAX_U63)), Ok(MAX_U63));
        assert_eq!(format_message("x"), b"x\n");
    }

    /// Temporary files name their writer, so `load` can tell a crashed
    /// writer's leftovers from a live writer's work.
    #[test]
    fn tmp_names_carry_the_writer_pid() {
        assert_eq!(tmp_writer_pid(".tmp.123.7.error"), Some(123));
        assert_eq!(tmp_writer_pid(".tmp.x.7.error"), None);
        assert_eq!(tmp_writer_pid("error"), None);
    }
}
