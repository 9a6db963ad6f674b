#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `doc/examples/Dockerfile` cannot drift from the repository: exactly the
//! files its build stage copies, and nothing else, are copied into an
//! otherwise empty directory, and its own `RUN` command runs there — the
//! static release build and the check that the binary has no interpreter.
//! The build is offline (`CARGO_NET_OFFLINE`, from the local cargo
//! registry, which `cargo test` has filled); the directory stays under
//! `target/` between runs, so a second run only rebuilds what changed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{PATIENCE, repo};

/// The build stage of a Dockerfile: its `WORKDIR`, its `COPY` lines
/// (sources, destination) and its `RUN` commands, continuation lines
/// joined.
#[derive(Debug, Default)]
struct Stage {
    workdir: String,
    copies: Vec<(Vec<String>, String)>,
    runs: Vec<String>,
}

/// The first stage of `text` (up to the second `FROM`).
fn build_stage(text: &str) -> Stage {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stage = Stage::default();
    let mut froms = 0;
    for l in logical {
        let (word, rest) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        match word.to_ascii_uppercase().as_str() {
            "FROM" => {
                froms += 1;
                if froms > 1 {
                    break;
                }
            }
            "WORKDIR" => stage.workdir = rest.trim().to_owned(),
            "COPY" => {
                let words: Vec<String> = rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .map(str::to_owned)
                    .collect();
                assert!(
                    words.len() >= 2,
                    "COPY needs a source and a destination: {l}"
                );
                let (dest, srcs) = words.split_last().unwrap();
                stage.copies.push((srcs.to_vec(), dest.clone()));
            }
            "RUN" => stage.runs.push(rest.trim().to_owned()),
            _ => {}
        }
    }
    assert_eq!(froms, 2, "a build stage and a runtime stage");
    stage
}

/// What the stage's `COPY` lines put into the image, with Docker's rules:
/// a directory source copies its contents; a destination ending in `/` (or
/// several sources) receives each source under its own name.
fn copy_set(stage: &Stage, context: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut files = Vec::new();
    for (srcs, dest) in &stage.copies {
        let dest = dest
            .strip_prefix(&format!("{}/", stage.workdir))
            .unwrap_or(dest);
        let into_dir = dest.ends_with('/') || srcs.len() > 1;
        for src in srcs {
            let path = context.join(src);
            let target = if into_dir {
                Path::new(dest).join(Path::new(src).file_name().unwrap())
            } else {
                PathBuf::from(dest)
            };
            let target = PathBuf::from_iter(
                target
                    .components()
                    .filter(|c| !matches!(c, std::path::Component::CurDir)),
            );
            if path.is_dir() {
                for (file, rel) in common::files_under(&path, &[]) {
                    files.push((file, target.join(rel)));
                }
            } else {
                assert!(path.is_file(), "COPY {src}: no such file in the repository");
                files.push((path, target));
            }
        }
    }
    files
}

/// Runs the stage's `RUN` commands with `sh -c` in `dir`, offline; returns
/// the exit code and everything they printed.
fn run_stage(stage: &Stage, dir: &Path) -> (i32, String) {
    for run in &stage.runs {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", run])
            .current_dir(dir)
            .env("CARGO_NET_OFFLINE", "true")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .stdin(Stdio::null());
        // A release build with LTO on a busy 2-core machine: minutes, not
        // hours.
        let r = common::run_to_end(&mut cmd, PATIENCE * 45);
        if r.code != 0 {
            return (r.code, format!("$ {run}\n{}{}", r.stdout, r.stderr));
        }
    }
    (0, String::new())
}

/// The Dockerfile's build stage, on exactly its COPY set, builds the static
/// binary with its own command.
#[test]
fn dockerfile_builds_from_exactly_its_copy_set() {
    let text = std::fs::read_to_string(repo("doc/examples/Dockerfile")).unwrap();
    let stage = build_stage(&text);
    assert!(
        stage.runs.iter().any(|r| r.contains("cargo build")),
        "{stage:?}"
    );
    let files = copy_set(&stage, &repo(""));
    let dir = repo("target/dockerfile-context");
    common::mirror(&dir, &files, &["target"]);
    let (code, output) = run_stage(&stage, &dir);
    assert_eq!(
        code,
        0,
        "doc/examples/Dockerfile's build fails on its own COPY set ({} files in {}):\n{output}",
        files.len(),
        dir.display()
    );
    assert!(dir.join("target/release/liveness").is_file());
}

/// Negative control: the same stage without one of its COPY lines (the
/// benchmark, which Cargo.toml declares) fails, as the Dockerfile did when
/// it left out `tests/` while Cargo.toml declared a test target.
#[test]
fn a_copy_set_missing_a_declared_target_fails() {
    let text = std::fs::read_to_string(repo("doc/examples/Dockerfile")).unwrap();
    let mut stage = build_stage(&text);
    let before = stage.copies.len();
    stage
        .copies
        .retain(|(srcs, _)| srcs != &["benches".to_owned()]);
    assert_eq!(stage.copies.len(), before - 1, "the stage copies benches");
    let files = copy_set(&stage, &repo(""));
    let dir = tempfile::tempdir().unwrap();
    common::mirror(dir.path(), &files, &[]);
    let (code, output) = run_stage(&stage, dir.path());
    assert_ne!(code, 0, "built without benches/:\n{output}");
    assert!(
        output.contains("bench"),
        "fails for the missing bench:\n{output}"
    );
}

/// The parser reads Docker's rules: continuation lines, several sources
/// into a directory, a directory's contents, the second stage ignored.
#[test]
fn the_parser_reads_the_stage_as_docker_does() {
    let stage = build_stage(
        "FROM a AS build\nWORKDIR /src\n# c\nCOPY Cargo.toml Cargo.lock ./\nCOPY src src\n\
         COPY --chown=1:1 scripts/health.sh /src/s/h.sh\nRUN one \\\n && two\n\
         FROM b\nCOPY --from=build /x /y\nRUN three\n",
    );
    assert_eq!(stage.runs, ["one  && two"]);
    let files = copy_set(&stage, &repo(""));
    let rels: Vec<String> = files.iter().map(|(_, r)| r.display().to_string()).collect();
    assert!(rels.contains(&"Cargo.toml".to_owned()), "{rels:?}");
    assert!(rels.contains(&"Cargo.lock".to_owned()), "{rels:?}");
    assert!(rels.contains(&"src/lib.rs".to_owned()), "{rels:?}");
    assert!(rels.contains(&"s/h.sh".to_owned()), "{rels:?}");
    assert!(!rels.iter().any(|r| r.starts_with("src/src")), "{rels:?}");
}
