//! Hard links (issue #9 §3, doc/state-format.md *Trust*): a state file with
//! a second name elsewhere is never chmod-ed or written through by a writer
//! (it is replaced), and is never trusted by an actor (`wait`, `terminate`,
//! dependencies). Needs root for the second user's rows.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use crate::common::{self, Tree};
use crate::other_user::{self, OTHER, Shared, chmod, chown};

/// A writer never changes the file a state file is hard-linked to: the
/// `lock` is replaced (the other file keeps its owner, mode and bytes),
/// `error` and `ready` are replaced or unlinked by name. Negative control:
/// our own unlinked lock is kept (same inode).
#[test]
fn writers_never_reach_through_a_hard_link() {
    let test = "writers_never_reach_through_a_hard_link";
    if !other_user::available(test) {
        return;
    }
    // (state file, owner of the linked file, whether the link is made)
    let table = [
        ("lock", 0, true),
        ("lock", OTHER, true),
        ("error", 0, true),
        ("ready", 0, true),
        ("heartbeat", 0, true),
        ("lock", 0, false),
    ];
    for (file, uid, linked) in table {
        let what = format!("{file} linked to a file of uid {uid}: {linked}");
        let s = Shared::new();
        let dir = s.unit_dir("u");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o755);
        let secret = s.tmp.path().join("secret");
        std::fs::write(&secret, b"secret").unwrap();
        chown(&secret, uid);
        chmod(&secret, 0o600);
        let path = dir.join(file);
        if linked {
            std::fs::hard_link(&secret, &path).unwrap();
        } else {
            std::fs::write(&path, b"").unwrap();
            chmod(&path, 0o600);
        }
        let kept = std::fs::File::open(&path).unwrap();
        let h = other_user::library_owner(&s.rundir, "u");
        if file == "ready" {
            h.not_ready().unwrap();
            h.ready().unwrap();
        }
        let s_meta = std::fs::metadata(&secret).unwrap();
        assert_eq!(
            (s_meta.uid(), s_meta.mode() & 0o7777, s_meta.nlink()),
            (uid, 0o600, 1),
            "{what}"
        );
        assert_eq!(std::fs::read(&secret).unwrap(), b"secret", "{what}");
        let now = std::fs::metadata(&path).unwrap();
        assert_eq!(
            now.ino() == kept.metadata().unwrap().ino(),
            !linked,
            "{what}"
        );
        assert_eq!((now.uid(), now.mode() & 0o7777), (0, 0o644), "{what}");
        assert_eq!(s.root("u", &["probe", "--ready"]).code, 0, "{what}");
    }
}

/// The reproduction: another user's unit directory holds a `lock`
/// hard-linked to root's 0600 file; root's `load` used to chmod it 0644.
/// Now the load is refused (exit 7) and the file keeps its mode.
#[test]
fn a_lock_linked_to_roots_file_is_never_chmod_ed() {
    let test = "a_lock_linked_to_roots_file_is_never_chmod_ed";
    if !other_user::available(test) {
        return;
    }
    let s = Shared::new();
    let secret = s.tmp.path().join("secret");
    std::fs::write(&secret, b"secret").unwrap();
    chmod(&secret, 0o600);
    let r: common::Ran = s
        .command("hl", true, "mkdir", &["-m0777"])
        .arg(s.unit_dir("hl"))
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::hard_link(&secret, s.unit_dir("hl").join("lock")).unwrap();
    let owner = Tree::spawn(Command::new("sleep").arg("600").stdin(Stdio::null()));
    let r = s.root("hl", &["load", "--pid", &owner.pid().to_string()]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(std::fs::metadata(&secret).unwrap().mode() & 0o7777, 0o600);
}

/// An actor never trusts a state file with a second name: `wait --ready`,
/// `wait --gone`, `wait --tombstone` are not reached and say why, and
/// `terminate` refuses (exit 7) — each for one linked file in root's own
/// directory. Negative control: the same state without the link is reached.
#[test]
fn actors_never_trust_a_hard_linked_file() {
    let test = "actors_never_trust_a_hard_linked_file";
    if !other_user::available(test) {
        return;
    }
    // (linked file, command, exit code with the link)
    let table: [(&str, &[&str], i32); 5] = [
        ("ready", &["wait", "--ready", "u", "--timeout", "1s"], 8),
        ("error", &["wait", "--ready", "u", "--timeout", "1s"], 8),
        ("pid", &["wait", "--gone", "u", "--timeout", "1s"], 8),
        (
            "tombstone",
            &["wait", "--tombstone", "u", "--timeout", "1s"],
            8,
        ),
        ("pid", &["terminate", "--timeout", "60s"], 7),
    ];
    for (file, args, code) in table {
        for linked in [true, false] {
            let what = format!("{file} linked {linked}: {args:?}");
            let s = Shared::new();
            let mut live = Tree::spawn(Command::new("sleep").arg("600").stdin(Stdio::null()));
            if args[1] == "--gone" {
                // A unit whose owner has died, for `wait --gone`.
                let mut dead = Tree::spawn(Command::new("sleep").arg("600").stdin(Stdio::null()));
                let pid = dead.pid().to_string();
                assert_eq!(s.root("u", &["load", "--pid", &pid]).code, 0);
                dead.signal(nix::sys::signal::Signal::SIGKILL);
                assert!(dead.wait_timeout(common::PATIENCE).is_some());
            } else if file == "tombstone" {
                assert_eq!(s.root("u", &["run", "--", "true"]).code, 0);
            } else {
                let pid = live.pid().to_string();
                for a in [&["load", "--pid", &pid][..], &["set", "0"], &["ready"]] {
                    assert_eq!(s.root("u", a).code, 0, "{a:?}");
                }
            }
            if linked {
                std::fs::hard_link(s.unit_dir("u").join(file), s.tmp.path().join("second-name"))
                    .unwrap();
            }
            let r = s.root("u", args);
            let expect = if linked { code } else { 0 };
            assert_eq!(r.code, expect, "{what}: {}", r.stderr);
            if linked {
                assert!(
                    r.stderr.contains("has more than one link"),
                    "{what}: {}",
                    r.stderr
                );
            }
            if args[0] == "terminate" {
                let running = live.child.try_wait().unwrap().is_none();
                assert_eq!(running, linked, "{what}");
            }
        }
    }
}
