//! Unusual process names (issue #9 §4): the owner's command name is field 2
//! of `/proc/<pid>/stat`, between the first `(` and the *last* `)`, and may
//! hold any byte but NUL — spaces, parentheses, newlines — up to 15 bytes
//! (`TASK_COMM_LEN`). Both probes must judge a live, healthy owner by its
//! start time whatever its name, and still see a zombie or a reused pid.
//! Each owner is a real process that set its own name through
//! `/proc/self/comm`.

use std::process::{Command, Stdio};

use crate::bounded::{self, Outcome};
use crate::common::{self, Proc, Rundir};

/// Names that break a parser reading one line, or the first `)`, or
/// counting fields from the front.
const NAMES: &[(&str, &[u8])] = &[
    ("newline inside", b"worker\nb"),
    ("newline first", b"\nworker"),
    ("newlines only", b"\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"),
    ("fake fields after a newline", b"x\n) S 1 2 3 4 5"),
    ("fake zombie after ')' and a newline", b")\n) Z 1 2 3 4 5"),
    ("fake zombie on one line", b"a) Z 1 2 3 4 5"),
    ("parentheses", b"(((x)))"),
    ("only ')'", b")))))))))))))))"),
    ("spaces", b"my worker 2 3"),
    ("tab and carriage return", b"a\tb\rc"),
    ("non-ASCII bytes", b"w\xc3\xa9\xff\x01\x7f"),
];

/// A live process that named itself `name`, until dropped.
struct Named(Proc);

impl Named {
    fn spawn(name: &[u8]) -> Named {
        use std::os::unix::ffi::OsStrExt;
        let mut owner = Proc::spawn(
            Command::new("sh")
                .args([
                    "-c",
                    "printf '%s' \"$1\" >/proc/self/comm && echo ready && read -r _",
                    "owner",
                ])
                .arg(std::ffi::OsStr::from_bytes(name))
                .stdin(Stdio::piped()),
        );
        assert_eq!(owner.next_line(), "ready", "the owner did not start");
        Named(owner)
    }

    fn pid(&self) -> u32 {
        self.0.tree.child.id()
    }

    /// Lets it exit without reaping it: a zombie with the same name.
    fn become_zombie(&mut self) {
        self.0.send("");
        self.0.close_stdin();
        let pid = self.pid();
        assert!(
            common::wait_until(common::PATIENCE, || {
                std::fs::read(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    let close = s.iter().rposition(|&b| b == b')').unwrap();
                    s.get(close + 2) == Some(&b'Z')
                })
            }),
            "pid {pid} did not become a zombie"
        );
    }
}

/// The recorded start time of `pid`, parsed as the kernel defines the line.
fn starttime(pid: u32) -> u64 {
    let s = std::fs::read(format!("/proc/{pid}/stat")).unwrap();
    let close = s.iter().rposition(|&b| b == b')').unwrap();
    let rest = std::str::from_utf8(&s[close + 1..]).unwrap();
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// How the owner is left before the probes run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Owner {
    Live,
    Zombie,
    Reused,
}

/// Every name × {live, zombie, reused}: `liveness probe` and `health.sh`
/// under each shell give the expected code (0, 4, 4) and the same line, and
/// none hangs. The zombie and reused rows are the negative control: a probe
/// that passed everything would fail them.
#[test]
fn both_probes_judge_owners_with_unusual_names() {
    let shells = common::shells("both_probes_judge_owners_with_unusual_names");
    let mut failures = Vec::new();
    let mut rows = 0;
    for &(what, name) in NAMES {
        for owner in [Owner::Live, Owner::Zombie, Owner::Reused] {
            rows += 1;
            let rd = Rundir::new();
            let mut named = Named::spawn(name);
            let pid = named.pid().to_string();
            for args in [&["load", "--pid", &pid][..], &["set", "0"], &["ready"]] {
                let r = rd.liveness("u", args);
                assert_eq!(r.code, 0, "{what}: {args:?}: {}", r.stderr);
            }
            // What the kernel shows is what we meant to test.
            let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap();
            let shown = &stat[stat.iter().position(|&b| b == b'(').unwrap() + 1
                ..stat.iter().rposition(|&b| b == b')').unwrap()];
            assert_eq!(shown, &name[..name.len().min(15)], "{what}");
            let expected = match owner {
                Owner::Live => 0,
                Owner::Zombie => {
                    named.become_zombie();
                    4
                }
                Owner::Reused => {
                    let wrong = starttime(named.pid()) + 1;
                    rd.write("u", "starttime", format!("{wrong}\n").as_bytes());
                    4
                }
            };
            for args in [&[][..], &["--ready"]] {
                let rust = bounded::probe(rd.path(), "u", args);
                let mut all = vec![("liveness probe".to_owned(), rust.clone())];
                for s in &shells {
                    all.push((
                        s.name.to_owned(),
                        bounded::health_sh(s, rd.path(), "u", args),
                    ));
                }
                for (who, out) in &all {
                    if out.code() != Some(expected) {
                        failures.push(format!(
                            "{what} ({owner:?}, {args:?}): {who}: expected {expected}, {}",
                            out.describe()
                        ));
                    } else if out.stderr() != rust.stderr() {
                        failures.push(format!(
                            "{what} ({owner:?}, {args:?}): {who} says {:?}, liveness probe {:?}",
                            out.stderr(),
                            rust.stderr()
                        ));
                    }
                }
                if expected == 4 {
                    let line = rust.stderr();
                    let why = if owner == Owner::Zombie {
                        "has exited (zombie)"
                    } else {
                        "was reused"
                    };
                    assert!(line.contains(why), "{what}: {line}");
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures in {rows} rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The same owners through the original one-line parse (main before this
/// family existed) would have been judged gone: a negative control showing
/// the newline rows test what they claim. Runs the parse the old script
/// used (`read` of one line, fields after `") "`) on the live owners.
#[test]
fn a_one_line_parse_misjudges_newline_names() {
    let Some(dash) = common::shells("a_one_line_parse_misjudges_newline_names")
        .into_iter()
        .next()
    else {
        return;
    };
    let old = "IFS= read -r stat </proc/$1/stat; rest=${stat##*\") \"}; set -f; \
               set -- $rest; [ $# -ge 20 ]";
    for &(what, name) in NAMES {
        let named = Named::spawn(name);
        let out = common::run_bounded(
            Command::new(dash.argv[0])
                .args(&dash.argv[1..])
                .args(["-c", old, "old"])
                .arg(named.pid().to_string()),
            bounded::LIMIT,
        );
        let newline = name.contains(&b'\n');
        match out {
            Outcome::Done(r, _) => assert_eq!(
                r.code != 0,
                newline,
                "{what}: the one-line parse exited {}",
                r.code
            ),
            hung => panic!("{what}: {}", hung.describe()),
        }
    }
}
