//! The binary's exit codes: one table for every command, documented in
//! `doc/exit-codes.md` and in `--help`, and shared with `scripts/health.sh`.

use liveness::{ErrorKind, Verdict};

/// Why `liveness` exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: success; the unit passes.
    Ok,
    /// 1: the unit reported a non-zero error code.
    Unhealthy,
    /// 2: bad command line or invalid value; nothing was done.
    Usage,
    /// 3: no state: the unit was never loaded, or was reset.
    NoState,
    /// 4: the owner is gone (not running, pid reused, lock free), or
    /// nothing can prove it alive from here (owner unverifiable).
    OwnerGone,
    /// 5: the heartbeat is older than its deadline.
    Stale,
    /// 6: still starting, or not ready.
    NotReady,
    /// 7: corrupt state (unparsable, symlink, not a regular file).
    Corrupt,
    /// 8: the command's own deadline passed (`probe --timeout`).
    Timeout,
    /// 9: a sanity check failed (`load --check`); nothing was written.
    CheckFailed,
    /// 10: the unit is owned by another live process.
    Busy,
    /// 11: the system refused (read-only or full file system, permissions).
    Io,
    /// 12: the unit's supervised child has exited (its tombstone says how).
    Exited,
    /// `liveness run`: the child's status, passed through (after
    /// `--exit-code-map`): its exit code, 128+N for signal N, 127 not found,
    /// 126 not executable.
    Child(u8),
    /// 123, `liveness run`: the unit is owned by another live process.
    RunBusy,
    /// 124, `liveness run`: the birth dependencies were not ready in time.
    BirthTimeout,
    /// 125, `liveness run` itself failed (usage, I/O, fork).
    RunFailed,
    /// A probe verdict this table does not name yet (the library's
    /// `Verdict` is non-exhaustive): the library's own code for it, which
    /// is never 0 for a failing verdict.
    OtherVerdict(u8),
}

impl ExitCode {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Unhealthy => 1,
            ExitCode::Usage => 2,
            ExitCode::NoState => 3,
            ExitCode::OwnerGone => 4,
            ExitCode::Stale => 5,
            ExitCode::NotReady => 6,
            ExitCode::Corrupt => 7,
            ExitCode::Timeout => 8,
            ExitCode::CheckFailed => 9,
            ExitCode::Busy => 10,
            ExitCode::Io => 11,
            ExitCode::Exited => 12,
            ExitCode::Child(c) => c,
            ExitCode::RunBusy => 123,
            ExitCode::BirthTimeout => 124,
            ExitCode::RunFailed => 125,
            ExitCode::OtherVerdict(c) => c,
        }
    }

    /// The code `liveness run` exits with when it fails itself.
    pub fn of_run_failure(kind: ErrorKind) -> ExitCode {
        match kind {
            ErrorKind::Busy => ExitCode::RunBusy,
            ErrorKind::Timeout => ExitCode::BirthTimeout,
            _ => ExitCode::RunFailed,
        }
    }
}

impl From<Verdict> for ExitCode {
    fn from(v: Verdict) -> ExitCode {
        match v {
            Verdict::Ok => ExitCode::Ok,
            Verdict::Unhealthy => ExitCode::Unhealthy,
            Verdict::NoState => ExitCode::NoState,
            Verdict::OwnerGone | Verdict::Unverifiable => ExitCode::OwnerGone,
            Verdict::Stale => ExitCode::Stale,
            Verdict::Starting | Verdict::NotReady => ExitCode::NotReady,
            Verdict::Corrupt => ExitCode::Corrupt,
            Verdict::Exited => ExitCode::Exited,
            // Rust requires this arm (`Verdict` is non-exhaustive): a
            // verdict added to the library before it is named above keeps
            // the library's own code, never a passing one.
            other => ExitCode::OtherVerdict(other.exit_code()),
        }
    }
}

impl From<ErrorKind> for ExitCode {
    fn from(k: ErrorKind) -> ExitCode {
        match k {
            ErrorKind::InvalidUnit | ErrorKind::InvalidInput => ExitCode::Usage,
            ErrorKind::CheckFailed => ExitCode::CheckFailed,
            ErrorKind::Busy => ExitCode::Busy,
            ErrorKind::NotLoaded => ExitCode::NoState,
            ErrorKind::Corrupt => ExitCode::Corrupt,
            ErrorKind::Timeout => ExitCode::Timeout,
            ErrorKind::OwnerGone => ExitCode::OwnerGone,
            _ => ExitCode::Io,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> std::process::ExitCode {
        std::process::ExitCode::from(c.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether two of `codes` are equal.
    fn has_duplicates(codes: &[u8]) -> bool {
        let mut sorted = codes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.len() != codes.len()
    }

    /// The numeric table is the documented one, without duplicates.
    #[test]
    fn codes_are_the_documented_table() {
        // Negative control: a duplicate that is not next to its twin is
        // found (a `dedup` without sorting would miss it).
        assert!(has_duplicates(&[0, 1, 0]));
        assert!(!has_duplicates(&[0, 1, 2]));
        let all = [
            (ExitCode::Ok, 0),
            (ExitCode::Unhealthy, 1),
            (ExitCode::Usage, 2),
            (ExitCode::NoState, 3),
            (ExitCode::OwnerGone, 4),
            (ExitCode::Stale, 5),
            (ExitCode::NotReady, 6),
            (ExitCode::Corrupt, 7),
            (ExitCode::Timeout, 8),
            (ExitCode::CheckFailed, 9),
            (ExitCode::Busy, 10),
            (ExitCode::Io, 11),
            (ExitCode::Exited, 12),
            (ExitCode::RunBusy, 123),
            (ExitCode::BirthTimeout, 124),
            (ExitCode::RunFailed, 125),
        ];
        for (c, n) in all {
            assert_eq!(c.code(), n, "{c:?}");
        }
        let codes: Vec<u8> = all.iter().map(|(c, _)| c.code()).collect();
        assert!(!has_duplicates(&codes), "{codes:?}");
    }

    /// `liveness run` passes the child's status through and has its own
    /// three codes, 123 to 125, for its own failures.
    #[test]
    fn run_codes() {
        for c in [0u8, 1, 2, 126, 127, 128, 143, 255] {
            assert_eq!(ExitCode::Child(c).code(), c);
        }
        assert_eq!(ExitCode::of_run_failure(ErrorKind::Busy).code(), 123);
        assert_eq!(ExitCode::of_run_failure(ErrorKind::Timeout).code(), 124);
        assert_eq!(ExitCode::of_run_failure(ErrorKind::Io).code(), 125);
        assert_eq!(
            ExitCode::of_run_failure(ErrorKind::InvalidInput).code(),
            125
        );
    }

    /// Every probe verdict maps to the exit code the library documents.
    #[test]
    fn verdicts_map_to_their_codes() {
        for v in [
            Verdict::Ok,
            Verdict::Unhealthy,
            Verdict::NoState,
            Verdict::OwnerGone,
            Verdict::Unverifiable,
            Verdict::Stale,
            Verdict::Starting,
            Verdict::NotReady,
            Verdict::Corrupt,
            Verdict::Exited,
        ] {
            let c = ExitCode::from(v);
            assert_eq!(c.code(), v.exit_code(), "{v:?}");
            assert!(
                !matches!(c, ExitCode::OtherVerdict(_)),
                "{v:?} is named in the table"
            );
        }
        assert_eq!(ExitCode::from(Verdict::Unverifiable), ExitCode::OwnerGone);
    }

    /// Library errors map to distinct codes: usage, check, busy, no state,
    /// corrupt, system.
    #[test]
    fn error_kinds_map_to_codes() {
        assert_eq!(ExitCode::from(ErrorKind::InvalidUnit), ExitCode::Usage);
        assert_eq!(ExitCode::from(ErrorKind::InvalidInput), ExitCode::Usage);
        assert_eq!(
            ExitCode::from(ErrorKind::CheckFailed),
            ExitCode::CheckFailed
        );
        assert_eq!(ExitCode::from(ErrorKind::Busy), ExitCode::Busy);
        assert_eq!(ExitCode::from(ErrorKind::NotLoaded), ExitCode::NoState);
        assert_eq!(ExitCode::from(ErrorKind::Corrupt), ExitCode::Corrupt);
        assert_eq!(ExitCode::from(ErrorKind::Io), ExitCode::Io);
        assert_eq!(ExitCode::from(ErrorKind::Timeout), ExitCode::Timeout);
        assert_eq!(ExitCode::from(ErrorKind::OwnerGone), ExitCode::OwnerGone);
    }
}
