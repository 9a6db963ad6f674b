//! The adversarial state table: malformed, hostile and stale state, each
//! with the exit code both probes must give. Every case starts from state
//! written by the library (or by the original Python module, byte for byte),
//! is tampered with, and is judged by `liveness probe` and by
//! `scripts/health.sh` under dash, busybox sh and bash.
//!
//! This file holds the state table; each further family of attacks lives in
//! a file of its own next to it, one `mod` line each below: huge and sparse
//! files, FIFOs and leases, unusual process names, permission denied on the
//! path, and the differential test of both probes on random state.
//! `bounded` runs a probe under a time limit (a hang is a failure) and as
//! another user.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test reports failure by panicking

#[path = "../common/mod.rs"]
mod common;
mod deadlines;
mod pipes;

mod bounded;
mod cross_ns;
mod differential;
mod exited;
mod fifos_and_leases;
mod foreign;
mod hardlinks;
mod huge_files;
mod other_user;
mod process_names;
mod umask;
mod unreadable_paths;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{Ran, Rundir, Shell};
use liveness::Health;

const U: &str = "u";

/// How a case's unit starts out before it is tampered with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    /// Loaded by the library in this process (which holds the lock),
    /// `set(0)`, `ready()`.
    Library,
    /// Written by `liveness load --pid <this process>`, `set 0`, `ready`:
    /// no lock file.
    Cli,
    /// What the original Python module writes: `pid` and `error` without
    /// newlines, nothing else.
    Original,
    /// No unit directory at all.
    Nothing,
}

struct Fixture {
    rd: Rundir,
    health: Option<Health>,
    children: Vec<Child>,
}

impl Fixture {
    fn new(base: Base) -> Fixture {
        let rd = Rundir::new();
        std::fs::set_permissions(rd.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut f = Fixture {
            rd,
            health: None,
            children: Vec::new(),
        };
        match base {
            Base::Library => {
                let h = Health::builder()
                    .unit(U)
                    .rundir(f.rd.path())
                    .build()
                    .unwrap();
                h.load().unwrap();
                h.set(0).unwrap();
                h.ready().unwrap();
                f.health = Some(h);
            }
            Base::Cli => {
                let me = std::process::id().to_string();
                for args in [&["load", "--pid", &me][..], &["set", "0"], &["ready"]] {
                    let r = f.rd.liveness(U, args);
                    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
                }
            }
            Base::Original => {
                f.rd.write(U, "pid", std::process::id().to_string().as_bytes());
                f.rd.write(U, "error", b"0");
            }
            Base::Nothing => {}
        }
        f
    }

    fn path(&self, file: &str) -> std::path::PathBuf {
        self.rd.unit_dir(U).join(file)
    }

    fn write(&self, file: &str, bytes: &[u8]) {
        self.rd.write(U, file, bytes);
    }

    fn remove(&self, file: &str) {
        let _ = std::fs::remove_file(self.path(file));
    }

    fn replace_with_symlink(&self, file: &str) {
        let real = self.rd.path().join(format!("real-{file}"));
        if let Ok(bytes) = std::fs::read(self.path(file)) {
            std::fs::write(&real, bytes).unwrap();
        } else {
            std::fs::write(&real, b"").unwrap();
        }
        self.remove(file);
        std::os::unix::fs::symlink(&real, self.path(file)).unwrap();
    }

    fn replace_with_dir(&self, file: &str) {
        self.remove(file);
        std::fs::create_dir(self.path(file)).unwrap();
    }

    fn replace_with_fifo(&self, file: &str) {
        self.remove(file);
        nix::unistd::mkfifo(
            &self.path(file),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
    }

    /// The pid of a process that has exited and been reaped.
    fn dead_pid(&self) -> u32 {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    /// The pid of a zombie: exited, not reaped (until the fixture drops).
    fn zombie_pid(&mut self) -> u32 {
        let c = Command::new("true").stdin(Stdio::null()).spawn().unwrap();
        let pid = c.id();
        assert!(
            common::wait_until(common::PATIENCE, || stat_state(pid) == Some('Z')),
            "no zombie"
        );
        self.children.push(c);
        pid
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn stat_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

fn own_starttime() -> u64 {
    stat_fields(std::process::id()).unwrap()[19]
        .parse()
        .unwrap()
}

fn boottime_ms() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).unwrap();
    ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000
}

struct Case {
    name: &'static str,
    base: Base,
    args: &'static [&'static str],
    /// Exit code of `liveness probe`.
    rust: i32,
    /// Exit code of `health.sh`; differs from `rust` only where
    /// doc/state-format.md says why.
    sh: i32,
    /// Whether the two probes may word their line differently (usage
    /// errors).
    wording_differs: bool,
    setup: fn(&mut Fixture),
}

const fn case(name: &'static str, base: Base, code: i32, setup: fn(&mut Fixture)) -> Case {
    Case {
        name,
        base,
        args: &[],
        rust: code,
        sh: code,
        wording_differs: false,
        setup,
    }
}

fn nothing(_: &mut Fixture) {}

fn cases() -> Vec<Case> {
    use Base::*;
    let mut v = vec![
        // The unit directory.
        case("no unit directory", Nothing, 3, nothing),
        case("empty unit directory", Nothing, 3, |f| {
            std::fs::create_dir_all(f.rd.unit_dir(U)).unwrap();
        }),
        case("unit directory is a symlink", Library, 7, |f| {
            let real = f.rd.path().join("real-unit");
            std::fs::rename(f.rd.unit_dir(U), &real).unwrap();
            std::os::unix::fs::symlink(&real, f.rd.unit_dir(U)).unwrap();
        }),
        case("unit directory is a file", Nothing, 7, |f| {
            std::fs::write(f.rd.unit_dir(U), b"").unwrap();
        }),
        // Healthy baselines.
        case("library-written, healthy", Library, 0, nothing),
        case("cli-written (load --pid), healthy", Cli, 0, nothing),
        case(
            "original module, healthy (no newlines)",
            Original,
            0,
            nothing,
        ),
        case("stale temporary files are ignored", Library, 0, |f| {
            f.write(".tmp.1.0.error", b"3\n");
            f.write(".tmp.999999.1.pid", b"garbage");
        }),
        // pid.
        case("pid missing (reset)", Library, 3, |f| f.remove("pid")),
        case("pid empty", Library, 7, |f| f.write("pid", b"")),
        case("pid lone newline", Library, 7, |f| f.write("pid", b"\n")),
        case("pid garbage", Library, 7, |f| f.write("pid", b"garbage\n")),
        case("pid 'self'", Library, 7, |f| f.write("pid", b"self")),
        case("pid '..'", Library, 7, |f| f.write("pid", b"..")),
        case("pid '*'", Library, 7, |f| f.write("pid", b"*")),
        case("pid -5", Library, 7, |f| f.write("pid", b"-5")),
        case("pid with leading +", Library, 7, |f| {
            f.write("pid", format!("+{}", std::process::id()).as_bytes());
        }),
        case("pid with leading space", Library, 7, |f| {
            f.write("pid", format!(" {}", std::process::id()).as_bytes());
        }),
        case("pid with trailing space", Library, 7, |f| {
            f.write("pid", format!("{} \n", std::process::id()).as_bytes());
        }),
        case("pid with leading zero", Library, 7, |f| {
            f.write("pid", format!("0{}", std::process::id()).as_bytes());
        }),
        case("pid with CRLF", Library, 7, |f| {
            f.write("pid", format!("{}\r\n", std::process::id()).as_bytes());
        }),
        case("pid 0", Library, 7, |f| f.write("pid", b"0\n")),
        case("pid beyond i32", Library, 7, |f| {
            f.write("pid", b"2147483648\n")
        }),
        case("pid huge", Library, 7, |f| {
            f.write("pid", b"99999999999999999999999999\n");
        }),
        case("pid two words", Library, 7, |f| f.write("pid", b"1 2\n")),
        case("pid two lines", Library, 7, |f| {
            f.write("pid", format!("{}\n1\n", std::process::id()).as_bytes());
        }),
        case("pid binary bytes", Library, 7, |f| {
            f.write("pid", b"\xff\xfe\x01")
        }),
        case("pid NUL bytes only", Library, 7, |f| {
            f.write("pid", b"\0\0\0")
        }),
        case("error NUL inside the digits", Library, 7, |f| {
            f.write("error", b"0\0\n");
        }),
        case("pid too large a file", Library, 7, |f| {
            f.write("pid", &[b'7'; 100])
        }),
        case("pid is a symlink", Library, 7, |f| {
            f.replace_with_symlink("pid")
        }),
        case("pid is a directory", Library, 7, |f| {
            f.replace_with_dir("pid")
        }),
        case("pid is a fifo (must not hang)", Library, 7, |f| {
            f.replace_with_fifo("pid");
        }),
        // The owner.
        case("pid of a dead process", Library, 4, |f| {
            let pid = f.dead_pid();
            f.write("pid", format!("{pid}\n").as_bytes());
        }),
        case("pid of a zombie", Library, 4, |f| {
            let pid = f.zombie_pid();
            f.write("pid", format!("{pid}\n").as_bytes());
        }),
        case("pid valid but not running", Original, 4, |f| {
            f.write("pid", b"2147483647");
        }),
        case("pid reused (wrong start time)", Library, 4, |f| {
            f.write("starttime", format!("{}\n", own_starttime() + 1).as_bytes());
        }),
        case("original module: pid 1, no start time", Original, 0, |f| {
            f.write("pid", b"1");
        }),
        case("starttime garbage", Library, 7, |f| {
            f.write("starttime", b"yesterday\n")
        }),
        case("starttime beyond i64", Library, 7, |f| {
            f.write("starttime", b"9223372036854775808\n");
        }),
        case(
            "starttime at i64::MAX (valid, but wrong)",
            Library,
            4,
            |f| {
                f.write("starttime", b"9223372036854775807\n");
            },
        ),
        case("starttime is a symlink", Library, 7, |f| {
            f.replace_with_symlink("starttime");
        }),
        case("pidns garbage", Library, 7, |f| {
            f.write("pidns", b"pid:[1]\n")
        }),
        case("dead owner, lock left free", Library, 4, |f| {
            // The owner died: its pid is gone, its files and a free lock
            // file are left behind.
            drop(f.health.take());
            let pid = f.dead_pid();
            f.write("pid", format!("{pid}\n").as_bytes());
            f.write("error", b"0\n");
            assert!(f.path("lock").exists());
        }),
        case("lock is a directory", Cli, 7, |f| {
            f.replace_with_dir("lock")
        }),
        case("lock is a symlink", Cli, 7, |f| {
            f.replace_with_symlink("lock")
        }),
        // The heartbeat.
        case("heartbeat fresh", Library, 0, |f| {
            f.write("heartbeat", format!("30 {}\n", boottime_ms()).as_bytes());
        }),
        case("heartbeat stale (hung owner, error 0)", Library, 5, |f| {
            let stamp = boottime_ms().saturating_sub(10_000);
            f.write("heartbeat", format!("5 {stamp}\n").as_bytes());
        }),
        case("heartbeat stale, process alive and ready", Cli, 5, |f| {
            let stamp = boottime_ms().saturating_sub(120_000);
            f.write("heartbeat", format!("60 {stamp}\n").as_bytes());
        }),
        case("heartbeat without stamp", Library, 7, |f| {
            f.write("heartbeat", b"30\n")
        }),
        case("heartbeat garbage", Library, 7, |f| {
            f.write("heartbeat", b"soon\n")
        }),
        case("heartbeat deadline 0", Library, 7, |f| {
            f.write("heartbeat", format!("0 {}\n", boottime_ms()).as_bytes());
        }),
        case("heartbeat stamp in the future", Library, 7, |f| {
            f.write(
                "heartbeat",
                format!("30 {}\n", boottime_ms() + 600_000).as_bytes(),
            );
        }),
        case("heartbeat is a fifo", Library, 7, |f| {
            f.replace_with_fifo("heartbeat")
        }),
        // The error code.
        case("starting: no error yet", Library, 6, |f| f.remove("error")),
        case(
            "original module between load() and set()",
            Original,
            6,
            |f| {
                f.remove("error");
            },
        ),
        case("error 3 with message", Library, 1, |f| {
            f.write("message", b"database unreachable\n");
            f.write("error", b"3\n");
        }),
        case("error 3 without message", Library, 1, |f| {
            f.write("error", b"3\n")
        }),
        case("error 3, multi-line message", Library, 1, |f| {
            f.write("message", b"first line\nsecond line\n");
            f.write("error", b"3\n");
        }),
        case("error 3, message is a symlink", Library, 7, |f| {
            f.write("message", b"x\n");
            f.replace_with_symlink("message");
            f.write("error", b"3\n");
        }),
        case("original: error 42", Original, 1, |f| {
            f.write("error", b"42")
        }),
        case("original: error -1", Original, 7, |f| {
            f.write("error", b"-1")
        }),
        case("original: error -5", Original, 7, |f| {
            f.write("error", b"-5")
        }),
        case("original: error 'garbage'", Original, 7, |f| {
            f.write("error", b"garbage")
        }),
        case("original: error 'True'", Original, 7, |f| {
            f.write("error", b"True")
        }),
        case("original: error 0x10", Original, 7, |f| {
            f.write("error", b"0x10")
        }),
        case("original: error huge", Original, 7, |f| {
            f.write("error", b"99999999999999999999");
        }),
        case("original: error '0 1'", Original, 7, |f| {
            f.write("error", b"0 1")
        }),
        case("original: error '  0'", Original, 7, |f| {
            f.write("error", b"  0")
        }),
        case(
            "original: error empty (its truncate window)",
            Original,
            7,
            |f| {
                f.write("error", b"");
            },
        ),
        case("error leading newline", Library, 7, |f| {
            f.write("error", b"\n0")
        }),
        case("error 00", Library, 7, |f| f.write("error", b"00\n")),
        case("error is a symlink to a 0", Library, 7, |f| {
            f.replace_with_symlink("error");
        }),
        case("error is a directory", Library, 7, |f| {
            f.replace_with_dir("error")
        }),
    ];

    // Modes.
    v.extend([
        Case {
            args: &["--ready"],
            ..case("ready: present", Library, 0, nothing)
        },
        Case {
            args: &["--ready"],
            ..case("ready: absent", Library, 6, |f| f.remove("ready"))
        },
        Case {
            args: &["--ready"],
            ..case("ready: symlink", Library, 7, |f| {
                f.replace_with_symlink("ready")
            })
        },
        Case {
            args: &["--ready"],
            ..case("ready: directory", Library, 7, |f| {
                f.replace_with_dir("ready")
            })
        },
        Case {
            args: &["--ready"],
            ..case("ready, but error 3", Library, 1, |f| {
                f.write("error", b"3\n")
            })
        },
        Case {
            args: &["--ready"],
            ..case("ready: still starting", Library, 6, |f| f.remove("error"))
        },
        Case {
            args: &["--startup"],
            ..case("startup: still starting", Library, 6, |f| f.remove("error"))
        },
        Case {
            args: &["--startup"],
            ..case("startup: started, unhealthy", Library, 0, |f| {
                f.write("error", b"3\n");
            })
        },
        Case {
            args: &["--startup"],
            ..case("startup: hung during start-up", Library, 5, |f| {
                f.remove("error");
                let stamp = boottime_ms().saturating_sub(10_000);
                f.write("heartbeat", format!("5 {stamp}\n").as_bytes());
            })
        },
        Case {
            args: &["--max-age", "60"],
            ..case("--max-age, no heartbeat", Library, 5, nothing)
        },
        Case {
            args: &["--max-age", "5"],
            ..case("--max-age tighter than the deadline", Library, 5, |f| {
                let stamp = boottime_ms().saturating_sub(10_000);
                f.write("heartbeat", format!("60 {stamp}\n").as_bytes());
            })
        },
        Case {
            args: &["--max-age", "60"],
            ..case("--max-age looser than the deadline", Library, 0, |f| {
                let stamp = boottime_ms().saturating_sub(10_000);
                f.write("heartbeat", format!("5 {stamp}\n").as_bytes());
            })
        },
        Case {
            args: &["--unit", "../etc"],
            ..case("unit name with a path", Library, 2, nothing)
        },
        Case {
            args: &["--unit", ""],
            ..case("empty unit name", Library, 2, nothing)
        },
        Case {
            args: &["--live", "--ready"],
            wording_differs: true,
            ..case("conflicting modes", Library, 2, nothing)
        },
        Case {
            args: &["--max-age", "0"],
            wording_differs: true,
            ..case("--max-age 0", Library, 2, nothing)
        },
        // Go's duration forms, as every duration `liveness` takes.
        Case {
            args: &["--max-age", "1m30s"],
            ..case("--max-age in Go's form, no heartbeat", Library, 5, nothing)
        },
        Case {
            args: &["--max-age", "1500ms"],
            ..case(
                "--max-age in milliseconds, beat 10 s ago",
                Library,
                5,
                |f| {
                    let stamp = boottime_ms().saturating_sub(10_000);
                    f.write("heartbeat", format!("60 {stamp}\n").as_bytes());
                },
            )
        },
        Case {
            args: &["--max-age", "1h0m30s"],
            ..case("--max-age 1h0m30s, beat 10 s ago", Library, 0, |f| {
                let stamp = boottime_ms().saturating_sub(10_000);
                f.write("heartbeat", format!("5 {stamp}\n").as_bytes());
            })
        },
        Case {
            args: &["--max-age", "999ms"],
            wording_differs: true,
            ..case("--max-age under a second", Library, 2, nothing)
        },
    ]);

    // Documented divergences (doc/state-format.md, "What health.sh cannot
    // do").
    v.extend([
        Case {
            sh: 2,
            args: &["--max-age", "1.5s"],
            ..case(
                "--max-age with a fraction (sh takes whole numbers only)",
                Library,
                5,
                nothing,
            )
        },
        Case {
            sh: 0,
            ..case(
                "lock free, pid alive (flock is invisible to sh)",
                Cli,
                4,
                |f| {
                    f.write("lock", b"");
                },
            )
        },
        Case {
            sh: 0,
            wording_differs: true,
            ..case(
                "pidns of another namespace, no lock (sh ignores pidns): unverifiable",
                Cli,
                4,
                |f| {
                    f.write("pidns", b"1\n");
                },
            )
        },
        Case {
            sh: 4,
            ..case(
                "owner in another PID namespace, lock held (judged by the lock)",
                Library,
                0,
                |f| {
                    let pid = f.dead_pid();
                    f.write("pid", format!("{pid}\n").as_bytes());
                    f.write("pidns", b"1\n");
                },
            )
        },
    ]);
    v
}

fn judge(f: &Fixture, args: &[&str], shells: &[Shell]) -> (Ran, Vec<(String, Ran)>) {
    let mut probe = vec!["probe"];
    probe.extend_from_slice(args);
    let rust = f.rd.liveness(U, &probe);
    let sh = shells
        .iter()
        .map(|s| (s.name.to_owned(), f.rd.health_sh(s, U, args)))
        .collect();
    (rust, sh)
}

/// Every case of the table gets its documented exit code from
/// `liveness probe` and from `health.sh` under every shell, and the two say
/// the same one line wherever their codes agree.
#[test]
fn both_probes_judge_the_adversarial_table() {
    let shells = common::shells("both_probes_judge_the_adversarial_table");
    let cases = cases();
    assert!(cases.len() >= 40, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let mut f = Fixture::new(c.base);
        (c.setup)(&mut f);
        let (rust, sh) = judge(&f, c.args, &shells);
        if rust.code != c.rust {
            failures.push(format!(
                "{}: liveness probe exited {}, expected {}: {}",
                c.name,
                rust.code,
                c.rust,
                rust.stderr.trim()
            ));
        }
        for (name, r) in &sh {
            if r.code != c.sh {
                failures.push(format!(
                    "{}: health.sh under {name} exited {}, expected {}: {}",
                    c.name,
                    r.code,
                    c.sh,
                    r.stderr.trim()
                ));
            } else if c.sh == c.rust
                && !c.wording_differs
                && common::without_age(&r.stderr) != common::without_age(&rust.stderr)
            {
                failures.push(format!(
                    "{}: lines differ: liveness probe {:?}, health.sh under {name} {:?}",
                    c.name, rust.stderr, r.stderr
                ));
            }
        }
        if c.rust != 0 {
            let line = rust.stderr.trim_end();
            let prefix = if c.rust == 2 {
                "liveness: "
            } else {
                "liveness: unit "
            };
            if line.lines().count() != 1 || !line.starts_with(prefix) {
                failures.push(format!("{}: not one line: {:?}", c.name, rust.stderr));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A state file the probe may not read (mode 000, probe run as `nobody`) is
/// corrupt, for both probes — never healthy, never a hang. Positive
/// control: before the chmod, `nobody` gets the verdict "ok" from the same
/// copies, so the 7 comes from the file's mode and nothing else. The
/// binary and the script are copied where `nobody` can reach them: the
/// checkout may be under a 0700 home directory.
#[test]
fn unreadable_state_is_corrupt_for_another_user() {
    let test = "unreadable_state_is_corrupt_for_another_user";
    if !common::require(
        common::is_root() && common::have("setpriv"),
        test,
        "root and setpriv",
    ) {
        return;
    }
    let shells = common::shells(test);
    let staged = common::Staged::new(&[&common::bin(), &common::repo("scripts/health.sh")]);
    let probe = staged.path("liveness");
    let script = staged.path("health.sh");
    for file in ["pid", "error", "heartbeat"] {
        let f = Fixture::new(Base::Library);
        if file == "heartbeat" {
            f.write("heartbeat", format!("30 {}\n", boottime_ms()).as_bytes());
        }
        let as_nobody = |program: &Path, args: &[&str]| -> Ran {
            let mut cmd = f.rd.command(
                U,
                "setpriv",
                &["--reuid=65534", "--regid=65534", "--clear-groups", "--"],
            );
            cmd.arg(program).args(args);
            cmd.output().unwrap().into()
        };
        let shell_args = |s: &Shell| -> Vec<String> {
            let mut args: Vec<String> = s.argv[1..].iter().map(|a| (*a).to_owned()).collect();
            args.push(script.to_str().unwrap().to_owned());
            args
        };
        let readable = as_nobody(&probe, &["probe"]);
        assert_eq!(
            readable.code, 0,
            "control, {file} readable: {}",
            readable.stderr
        );
        for s in &shells {
            let args = shell_args(s);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = as_nobody(Path::new(s.argv[0]), &args);
            assert_eq!(
                r.code, 0,
                "control, {file} readable, under {}: {}",
                s.name, r.stderr
            );
        }

        std::fs::set_permissions(f.path(file), std::fs::Permissions::from_mode(0o000)).unwrap();
        let rust = as_nobody(&probe, &["probe"]);
        assert_eq!(rust.code, 7, "{file}: {}", rust.stderr);
        assert!(rust.stderr.contains("unreadable"), "{}", rust.stderr);
        for s in &shells {
            let args = shell_args(s);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = as_nobody(Path::new(s.argv[0]), &args);
            assert_eq!(r.code, 7, "{file} under {}: {}", s.name, r.stderr);
            assert_eq!(r.stderr, rust.stderr, "{file} under {}", s.name);
        }
    }
}

#[cfg(feature = "http")]
mod http;
