//! kubexit interoperability, both directions, through the real binary and
//! kubexit's exact bytes.
//!
//! kubexit (github.com/karlkfi/kubexit at ee51470) writes its tombstone
//! `<graveyard>/<name>` in `pkg/tombstone/tombstone.go`:
//! - line 46: `os.Create` (truncate in place), line 52: `yaml.Marshal(t)`
//!   with `sigs.k8s.io/yaml`, which marshals to JSON (Go's `time.Time` as
//!   RFC 3339 with up to nine fractional digits, trailing zeros trimmed, the
//!   local offset) and turns it into YAML with `go.yaml.in/yaml/v2`, which
//!   sorts the keys and double-quotes a string that would read as a
//!   timestamp (`encode.go` lines 316-332);
//! - `cmd/kubexit/main.go` line 237: `code = -1` when the child was killed
//!   by a signal or never started (`fatalf`, line 265: `RecordDeath` without
//!   `RecordBirth`, so no `Born`).
//!
//! It reads them (`onDeathOfAny`, main.go lines 317-352) when fsnotify
//! reports Create or Write on `<graveyard>/<name>` (`backend_inotify.go`
//! line 520: `IN_CREATE` or `IN_MOVED_TO` is a Create) and stops its child
//! when `Died` is set; it never reads a file that existed before it
//! started watching.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Proc, Rundir, bin, example};

/// `RecordBirth` (tombstone.go line 60) in UTC.
const KX_BORN: &[u8] = b"Born: \"2026-11-30T04:43:54.197452445Z\"\n";
/// `RecordDeath(0)` after a birth, in UTC: nanoseconds trimmed to `.2`.
const KX_DIED_0: &[u8] =
    b"Born: \"2026-11-30T04:43:54.197452445Z\"\nDied: \"2026-11-30T04:43:55.2Z\"\nExitCode: 0\n";
/// `RecordDeath(-1)` after a birth, with `TZ` one hour east: a signal
/// killed the child (a whole second has no fraction at all).
const KX_DIED_SIGNAL_TZ: &[u8] = b"Born: \"2026-11-30T05:43:54.197452445+01:00\"\n\
Died: \"2026-11-30T05:43:56+01:00\"\nExitCode: -1\n";
/// `fatalf` before the child started: `Died` without `Born`.
const KX_NEVER_STARTED: &[u8] = b"Died: \"2026-11-30T04:43:54.5Z\"\nExitCode: -1\n";

/// A `liveness run` configured with kubexit's variables only.
fn kx_run(g: &Path, name: &str, vars: &[(&str, &str)], argv: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("run")
        .arg("--")
        .args(argv)
        .env_remove("LIVENESS_RUNDIR")
        .env_remove("LIVENESS_UNIT_NAME")
        .env("KUBEXIT_NAME", name)
        .env("KUBEXIT_GRAVEYARD", g)
        .env("LIVENESS_LOG", "info")
        .stdin(Stdio::null());
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// Any other command, configured the same way.
fn kx_cmd(g: &Path, name: &str, args: &[&str]) -> common::Ran {
    Command::new(bin())
        .args(args)
        .env_remove("LIVENESS_RUNDIR")
        .env_remove("LIVENESS_UNIT_NAME")
        .env("KUBEXIT_NAME", name)
        .env("KUBEXIT_GRAVEYARD", g)
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into()
}

/// Writes a file as kubexit does: truncate in place, then write.
fn kx_write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn child() -> String {
    example("signal_child").display().to_string()
}

/// kubexit → liveness: a kubexit container's tombstone that is already
/// there when `liveness run` starts stops the child at once (kubexit
/// itself would miss it), and the stop names kubexit's time and code.
#[test]
fn kubexit_death_before_the_watcher_starts() {
    let rd = Rundir::new();
    let g = rd.path();
    kx_write(&g.join("app"), KX_DIED_0);
    let c = child();
    let mut r = Proc::spawn(&mut kx_run(
        g,
        "side",
        &[("KUBEXIT_DEATH_DEPS", "app")],
        &[&c],
    ));
    assert_eq!(r.code(), 143, "{:?}", r.stderr());
    let err = r.stderr();
    assert!(
        err.contains("death dependency app: exited: code 0 at 2026-11-30T04:43:55.200Z"),
        "{err}"
    );
}

/// kubexit → liveness: kubexit's birth (rewritten in place) does not stop
/// the child; its death with `-1` and a `+01:00` offset, rewritten in place
/// over the birth, does — and the line gives the instant in UTC.
#[test]
fn kubexit_death_rewritten_in_place() {
    let rd = Rundir::new();
    let g = rd.path();
    let c = child();
    let mut r = Proc::spawn(&mut kx_run(
        g,
        "side",
        &[("KUBEXIT_DEATH_DEPS", "app")],
        &[&c],
    ));
    r.wait_for("ready");
    kx_write(&g.join("app"), KX_BORN);
    kx_write(&g.join("app"), KX_DIED_SIGNAL_TZ);
    r.wait_for("TERM");
    assert_eq!(r.code(), 143);
    let err = r.stderr();
    assert!(
        err.contains("death dependency app: exited: code -1 at 2026-11-30T04:43:56.000Z"),
        "only the death stops it: {err}"
    );
}

/// kubexit → liveness: `wait --tombstone` sees a kubexit child that never
/// started (no `Born`), and waits on one that is only born.
#[test]
fn wait_reads_kubexit_tombstones() {
    let rd = Rundir::new();
    let g = rd.path();
    kx_write(&g.join("app"), KX_NEVER_STARTED);
    let w = kx_cmd(g, "me", &["wait", "--tombstone", "app", "--timeout", "10s"]);
    assert_eq!(w.code, 0, "{w:?}");
    kx_write(&g.join("app"), KX_BORN);
    let w = kx_cmd(g, "me", &["wait", "--tombstone", "app", "--timeout", "1s"]);
    assert_eq!(w.code, 8, "{w:?}");
    assert!(
        w.stderr.contains("app (running (tombstone has no Died))"),
        "{w:?}"
    );
}

/// A dependency's tombstone that cannot be parsed is logged once, naming
/// the file, and ignored; a valid one written later still stops the child.
/// Negative control for the parser's leniency: the same run with a valid
/// file stops at once (kubexit_death_before_the_watcher_starts).
#[test]
fn unparsable_dependency_tombstone_is_named() {
    let rd = Rundir::new();
    let g = rd.path();
    let file = g.join("app");
    kx_write(&file, b"Died: yesterday\nExitCode: 0\n");
    let c = child();
    let mut r = Proc::spawn(&mut kx_run(
        g,
        "side",
        &[("KUBEXIT_DEATH_DEPS", "app")],
        &[&c],
    ));
    r.wait_for("ready");
    r.wait_stderr(&format!("{}: bad time \"yesterday\"", file.display()));
    kx_write(&file, KX_DIED_0);
    assert_eq!(r.code(), 143);
    let warnings = r.stderr().matches("bad time").count();
    assert_eq!(warnings, 1, "logged once: {:?}", r.stderr());
}

/// The YAML kubexit's decoder would see: each `Key: value` line, parsed by
/// a YAML library as `sigs.k8s.io/yaml.Unmarshal` does before its JSON
/// step.
fn yaml(bytes: &[u8]) -> yaml_rust2::Yaml {
    let text = std::str::from_utf8(bytes).unwrap();
    yaml_rust2::YamlLoader::load_from_str(text)
        .unwrap()
        .remove(0)
}

/// Go's `time.Time.UnmarshalJSON`: RFC 3339, `Z` or an offset.
fn go_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[10] == b'T'
        && (s.ends_with('Z')
            || s.as_bytes()[s.len() - 6] == b'+'
            || s.as_bytes()[s.len() - 6] == b'-')
        && s[..4].bytes().all(|c| c.is_ascii_digit())
}

/// liveness → kubexit: under kubexit's variables `liveness run` writes
/// `<graveyard>/<name>` as a regular 0644 file, by renames only (what
/// kubexit's fsnotify reports as Create), first with `Born`, then with
/// `Died` and the exit code, in YAML kubexit's decoder reads; the unit
/// itself lives in `<graveyard>/.liveness/<name>`, where a probe with the
/// same variables finds it.
#[test]
fn liveness_writes_what_kubexit_reads() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let rd = Rundir::new();
    let g = rd.path();
    let ino = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    // fsnotify's flags for Create, Write, Remove, Rename, Chmod
    // (backend_inotify.go lines 196-209).
    ino.add_watch(
        g,
        AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_ATTRIB,
    )
    .unwrap();
    let c = child();
    let mut r = Proc::spawn(&mut kx_run(
        g,
        "app",
        &[("LIVENESS_READY_ON_START", "1")],
        &[&c],
    ));
    r.wait_for("ready");
    let born = std::fs::read(g.join("app")).unwrap();
    let y = yaml(&born);
    assert!(go_rfc3339(y["Born"].as_str().unwrap()), "{y:?}");
    assert!(y["Died"].is_badvalue(), "{y:?}");
    // The probe finds the unit with kubexit's variables alone.
    let p = kx_cmd(g, "app", &["probe", "--ready"]);
    assert_eq!(p.code, 0, "{p:?}");
    assert!(g.join(".liveness/app/pid").is_file());

    r.tree.signal(nix::sys::signal::Signal::SIGUSR1);
    assert_eq!(r.code(), 138);
    let died = std::fs::read(g.join("app")).unwrap();
    let y = yaml(&died);
    assert!(go_rfc3339(y["Died"].as_str().unwrap()), "{y:?}");
    assert_eq!(y["ExitCode"].as_i64(), Some(138), "{y:?}");
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(g.join("app")).unwrap();
    assert!(m.file_type().is_file());
    assert_eq!(m.mode() & 0o777, 0o644);

    let mut moved_in = 0;
    while let Ok(events) = ino.read_events() {
        if events.is_empty() {
            break;
        }
        for e in events {
            if e.name.as_deref() != Some(std::ffi::OsStr::new("app")) {
                continue;
            }
            assert!(
                !e.mask.contains(AddWatchFlags::IN_MODIFY),
                "never written in place: {e:?}"
            );
            if e.mask.contains(AddWatchFlags::IN_MOVED_TO) {
                moved_in += 1;
            }
        }
    }
    assert_eq!(moved_in, 2, "Born, then Died, each renamed into place");
    let p = kx_cmd(g, "app", &["probe"]);
    assert_eq!(p.code, 12, "{p:?}");
    assert!(p.stderr.contains("exited: killed by SIGUSR1 at "), "{p:?}");
}

/// liveness → kubexit: a child that never starts (its birth dependency is
/// never ready) still gets kubexit's `Died`, with status 124, so kubexit
/// sidecars stop.
#[test]
fn never_started_child_is_buried_for_kubexit() {
    let rd = Rundir::new();
    let g = rd.path();
    let mut r = Proc::spawn(&mut kx_run(
        g,
        "app",
        &[
            ("KUBEXIT_BIRTH_DEPS", "db"),
            ("KUBEXIT_BIRTH_TIMEOUT", "1s"),
        ],
        &["true"],
    ));
    assert_eq!(r.code(), 124);
    let y = yaml(&std::fs::read(g.join("app")).unwrap());
    assert!(y["Born"].is_badvalue(), "{y:?}");
    assert!(go_rfc3339(y["Died"].as_str().unwrap()), "{y:?}");
    assert_eq!(y["ExitCode"].as_i64(), Some(124));
    assert!(y["Reason"].as_str().unwrap().contains("birth dependencies"));
}
