//! Huge and sparse files (issue #9 §4): a state file may be a 2 GiB hole (no
//! disk used) or a line of megabytes. `liveness probe` reads at most what
//! the contract allows; `health.sh` reads what the shells allow, under a
//! CPU-time limit of 1 s (`ulimit -t`). Each case must end within the
//! harness's limit, never say healthy, keep the shell's peak RSS small, and
//! give either `liveness probe`'s own line or — where the shell can only be
//! cut off — death by SIGXCPU (a shell reports 152) with nothing on stdout.
//! bash, whose `read -n` stops at a length, must give the probe's line for
//! every case without NUL bytes (NULs do not count towards `-n`).

use std::io::Write;

use crate::bounded::{self, Outcome};
use crate::common::{self, Rundir};
use crate::{Base, Fixture};

/// 2 GiB: a hole on any file system with sparse files.
const HOLE: u64 = 2 << 30;
/// A line far beyond what a shell reads in 1 s of CPU one byte per call.
const LINE: usize = 16 << 20;

/// What a file is made of.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// A 2 GiB hole: NUL bytes only.
    Hole,
    /// A valid value and its newline, then a 2 GiB hole.
    ValidThenHole,
    /// 16 MiB of digits, no newline.
    Line,
    /// A valid value and its newline, then 16 MiB of digits.
    ValidThenLine,
}

impl Shape {
    fn has_nul(self) -> bool {
        matches!(self, Shape::Hole | Shape::ValidThenHole)
    }
}

fn make(path: &std::path::Path, valid: &[u8], shape: Shape) {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::File::create(path).unwrap();
    match shape {
        Shape::Hole => f.set_len(HOLE).unwrap(),
        Shape::ValidThenHole => {
            f.write_all(valid).unwrap();
            f.set_len(HOLE).unwrap();
        }
        Shape::Line => f.write_all(&vec![b'7'; LINE]).unwrap(),
        Shape::ValidThenLine => {
            f.write_all(valid).unwrap();
            f.write_all(&vec![b'7'; LINE]).unwrap();
        }
    }
}

struct Case {
    file: &'static str,
    shape: Shape,
    /// `liveness probe`'s exit code.
    code: i32,
}

/// Peak RSS a shell may reach, in KiB: far above dash's 2 MiB, far below
/// what reading a whole huge line costs bash (hundreds of MiB).
const MAX_RSS_KIB: u64 = 64 * 1024;

/// Each huge or sparse state file ends every probe promptly and unhealthy:
/// `liveness probe` says "too large" (or shows the first 4 KiB of a
/// message); `health.sh` says the same or is cut off by SIGXCPU, with a
/// small peak RSS; bash says the same for files without NUL bytes. The
/// valid-file rows are the negative control.
#[test]
fn huge_and_sparse_files_end_every_probe() {
    let shells = common::shells("huge_and_sparse_files_end_every_probe");
    use Shape::*;
    let cases = [
        Case {
            file: "pid",
            shape: Hole,
            code: 7,
        },
        Case {
            file: "pid",
            shape: ValidThenHole,
            code: 7,
        },
        Case {
            file: "pid",
            shape: Line,
            code: 7,
        },
        Case {
            file: "pid",
            shape: ValidThenLine,
            code: 7,
        },
        Case {
            file: "starttime",
            shape: ValidThenLine,
            code: 7,
        },
        Case {
            file: "pidns",
            shape: Hole,
            code: 7,
        },
        Case {
            file: "heartbeat",
            shape: Line,
            code: 7,
        },
        Case {
            file: "error",
            shape: ValidThenHole,
            code: 7,
        },
        Case {
            file: "error",
            shape: ValidThenLine,
            code: 7,
        },
        Case {
            file: "message",
            shape: Hole,
            code: 1,
        },
        Case {
            file: "message",
            shape: Line,
            code: 1,
        },
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let f = Fixture::new(Base::Library);
        let valid = match c.file {
            "message" => {
                f.write("error", b"3\n");
                b"database unreachable\n".to_vec()
            }
            "heartbeat" => b"30 1\n".to_vec(),
            _ => std::fs::read(f.path(c.file)).unwrap(),
        };
        let what = format!("{} {:?}", c.file, c.shape);
        // Negative control: the same unit before the file is blown up.
        let healthy = if c.file == "message" { 1 } else { 0 };
        assert_eq!(
            bounded::probe(f.rd.path(), "u", &[]).code(),
            Some(healthy),
            "{what}: before"
        );
        make(&f.path(c.file), &valid, c.shape);
        let rust = bounded::probe(f.rd.path(), "u", &[]);
        if rust.code() != Some(c.code) {
            failures.push(format!("{what}: liveness probe: {}", rust.describe()));
            continue;
        }
        if c.code == 7 && !rust.stderr().contains(": too large") {
            failures.push(format!("{what}: liveness probe: {}", rust.describe()));
        }
        for s in &shells {
            let out = bounded::health_sh(s, f.rd.path(), "u", &[]);
            let ok = match &out {
                Outcome::Hung { .. } => false,
                Outcome::Done(r, rss) => {
                    if *rss > MAX_RSS_KIB {
                        failures.push(format!("{what}: {}: peak RSS {rss} KiB", s.name));
                    }
                    let same = r.code == c.code && r.stderr == rust.stderr();
                    let cut = r.code == 128 + 24 && r.stdout.is_empty();
                    if s.name == "bash" && !c.shape.has_nul() {
                        same
                    } else {
                        same || cut
                    }
                }
            };
            if !ok {
                failures.push(format!(
                    "{what}: {}: {} (liveness probe: {})",
                    s.name,
                    out.describe(),
                    rust.describe()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The `Hole` shape is a real hole on this machine's temporary directory
/// (2 GiB long, almost no blocks), as in the reproduction: else the
/// table above would test files the machine actually wrote.
#[test]
fn sparse_files_use_no_disk() {
    let rd = Rundir::new();
    let path = rd.path().join("hole");
    make(&path, b"", Shape::Hole);
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&path).unwrap();
    assert_eq!(m.len(), HOLE);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "{} blocks: this file system has no holes, the cases above test less",
        m.blocks()
    );
}
