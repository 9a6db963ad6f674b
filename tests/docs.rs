#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every shell block in `README.md` and in every `doc/*.md` runs as written,
//! so no example can fail when pasted. Each block runs on its own with
//! `sh -e` (`bash -e` for a ```` ```bash ```` block): from a copy of the
//! repository as its working directory, with the `liveness` binary under
//! test first on `PATH`, a fresh empty `LIVENESS_RUNDIR`, no
//! `LIVENESS_UNIT_NAME`, and cargo offline. It passes when every command in
//! it succeeds. A block that cannot run here has, on the line right before
//! it, `<!-- not run: REASON -->`; the test prints the reason.
//!
//! The copy lives in `target/docs-run/liveness` and keeps its own `target/`
//! between runs, so a block's `cargo build --release` is incremental; the
//! rest of `target/docs-run` is emptied before each block (a block may make
//! a sibling project there: `cargo new ../my-app`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{PATIENCE, Ran, Rundir, repo};

/// Info strings of the blocks that run, and the shell each runs under.
const SHELLS: &[(&str, &str)] = &[("sh", "sh"), ("shell", "sh"), ("bash", "bash")];

/// Shell-like info strings that would escape the runner: refused.
const REFUSED: &[&str] = &[
    "console",
    "zsh",
    "shell-session",
    "shellsession",
    "terminal",
];

/// One shell block: where it is, its shell, its text, and the reason it is
/// not run, if it is marked.
#[derive(Debug)]
struct Block {
    origin: String,
    shell: &'static str,
    text: String,
    not_run: Option<String>,
}

/// The shell blocks of one Markdown document, or why the document breaks
/// the rules (an unterminated fence, a marker without a reason or not
/// right before a shell block, a refused info string).
fn shell_blocks(name: &str, text: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    // (fence, info string, first line, text) of the open block.
    let mut open: Option<(String, String, usize, String)> = None;
    let mut marker: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim_start();
        if let Some((fence, info, start, body)) = &mut open {
            if t.trim_end() == fence.as_str() {
                let lang = info
                    .split([',', ' ', '{'])
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let not_run = marker.take().map(|(_, reason)| reason);
                if let Some((_, shell)) = SHELLS.iter().find(|(l, _)| *l == lang) {
                    blocks.push(Block {
                        origin: format!("{name}:{start}"),
                        shell,
                        text: std::mem::take(body),
                        not_run,
                    });
                } else if REFUSED.contains(&lang.as_str()) {
                    return Err(format!(
                        "{name}:{start}: a ```{lang} block would not run: tag shell blocks \
                         sh or bash"
                    ));
                } else if not_run.is_some() {
                    return Err(format!(
                        "{name}:{start}: a not-run marker before a ```{lang} block, which never \
                         runs anyway"
                    ));
                }
                open = None;
            } else {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        }
        let fence_len = t.chars().take_while(|c| *c == '`').count();
        if fence_len >= 3 {
            open = Some((
                "`".repeat(fence_len),
                t[fence_len..].trim().to_owned(),
                n,
                String::new(),
            ));
            continue;
        }
        if let Some((at, _)) = &marker {
            return Err(format!(
                "{name}:{at}: a not-run marker must be on the line right before a shell block"
            ));
        }
        if let Some(rest) = t.strip_prefix("<!-- not run:") {
            let reason = rest
                .trim_end()
                .strip_suffix("-->")
                .map(str::trim)
                .unwrap_or_default();
            if reason.is_empty() {
                return Err(format!(
                    "{name}:{n}: write the reason: <!-- not run: REASON -->"
                ));
            }
            marker = Some((n, reason.to_owned()));
        }
    }
    if let Some((_, _, start, _)) = open {
        return Err(format!("{name}:{start}: unterminated code block"));
    }
    if let Some((at, _)) = marker {
        return Err(format!(
            "{name}:{at}: a not-run marker at the end of the file"
        ));
    }
    Ok(blocks)
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo(""))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The copy of the repository the blocks run in, mirrored afresh, and the
/// rest of its parent emptied.
fn workspace() -> PathBuf {
    let parent = repo("target/docs-run");
    let copy = parent.join("liveness");
    std::fs::create_dir_all(&parent).unwrap();
    for entry in std::fs::read_dir(&parent).unwrap().flatten() {
        if entry.file_name() != "liveness" {
            let p = entry.path();
            if entry.file_type().unwrap().is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    let files = common::files_under(&repo(""), &["target", ".git"]);
    common::mirror(&copy, &files, &["target"]);
    copy
}

/// Runs one block as the module comment says.
fn run_block(block: &Block, cwd: &Path) -> Ran {
    let rundir = Rundir::new();
    let bin_dir = common::bin().parent().unwrap().to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&path))).unwrap();
    let mut cmd = Command::new(block.shell);
    cmd.args(["-e", "-c", &block.text])
        .current_dir(cwd)
        .env("PATH", path)
        .env("LIVENESS_RUNDIR", rundir.path())
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("LIVENESS_UNIT_NAME")
        .env_remove("LIVENESS_LOG")
        .env_remove("LIVENESS_HTTP_PORT")
        .env_remove("LIVENESS_GRACE_PERIOD")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .stdin(Stdio::null());
    common::default_signals(&mut cmd);
    // A block may build the release binary on a busy machine.
    common::run_to_end(&mut cmd, PATIENCE * 45)
}

/// Runs every block of `docs` that is not marked; returns how many ran and
/// one failure report per block that failed (its origin, exit code, text
/// and output).
fn run_documents(
    docs: &[(String, String)],
    cwd_for_each: impl Fn() -> PathBuf,
) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failures = Vec::new();
    for (name, text) in docs {
        let blocks = match shell_blocks(name, text) {
            Ok(b) => b,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        for block in &blocks {
            if let Some(reason) = &block.not_run {
                eprintln!("docs: {}: not run: {reason}", block.origin);
                continue;
            }
            ran += 1;
            let r = run_block(block, &cwd_for_each());
            if r.code != 0 {
                failures.push(format!(
                    "{}: {} -e exited {}\n--- block:\n{}--- stdout:\n{}\n--- stderr:\n{}",
                    block.origin, block.shell, r.code, block.text, r.stdout, r.stderr
                ));
            }
        }
    }
    (ran, failures)
}

/// Every shell block of the README and of every `doc/*.md` runs as written
/// and succeeds, or says why it cannot run.
#[test]
fn every_shell_block_in_the_docs_runs() {
    let docs: Vec<(String, String)> = common::markdown_documents()
        .iter()
        .map(|p| (relative(p), std::fs::read_to_string(p).unwrap()))
        .collect();
    let readme_blocks = shell_blocks("README.md", &docs[0].1).unwrap();
    // The walk itself: the README's try-it, dependency and shell-job blocks.
    assert!(
        readme_blocks.iter().filter(|b| b.not_run.is_none()).count() >= 3,
        "the README's shell blocks were not found: {readme_blocks:?}"
    );
    let (ran, failures) = run_documents(&docs, workspace);
    eprintln!("docs: {ran} shell blocks ran");
    assert!(
        failures.is_empty(),
        "{} of the docs' shell blocks failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Negative and positive controls for the runner, on a document written
/// here: a block whose first command fails (as the README's old shell-job
/// example did: a `--check` on a missing file) fails; a marked block is not
/// run; a sound block passes.
#[test]
fn the_runner_fails_a_broken_block_and_skips_a_marked_one() {
    let broken = "# t\n\n```sh\nliveness load --check 'test -r /nonexistent/app.conf'\n\
                  liveness set 0\n```\n";
    let marked = "<!-- not run: a control -->\n```sh\nexit 1\n```\n";
    let sound =
        "```bash\nliveness status\n[ -d \"$LIVENESS_RUNDIR\" ] && command -v liveness\n```\n";
    let tmp = tempfile::tempdir().unwrap();
    let cwd = || tmp.path().to_path_buf();
    let (ran, failures) = run_documents(&[("broken.md".into(), broken.into())], cwd);
    assert_eq!((ran, failures.len()), (1, 1), "{failures:?}");
    assert!(
        failures[0].contains("broken.md:3: sh -e exited 9"),
        "{failures:?}"
    );
    let (ran, failures) = run_documents(&[("marked.md".into(), marked.into())], cwd);
    assert_eq!((ran, failures.len()), (0, 0), "{failures:?}");
    let (ran, failures) = run_documents(&[("sound.md".into(), sound.into())], cwd);
    assert_eq!((ran, failures.len()), (1, 0), "{failures:?}");
}

/// The parser refuses what would let a block escape: an unterminated
/// fence, a marker without a reason or not right before a shell block, a
/// ```` ```console ```` block; it reads indented fences and skips other
/// languages.
#[test]
fn the_parser_refuses_blocks_that_would_escape() {
    for (doc, why) in [
        ("```sh\ntrue\n", "unterminated"),
        ("<!-- not run: -->\n```sh\ntrue\n```\n", "write the reason"),
        ("<!-- not run: x -->\n\n```sh\ntrue\n```\n", "right before"),
        (
            "<!-- not run: x -->\n```yaml\na: 1\n```\n",
            "never runs anyway",
        ),
        ("```console\n$ true\n```\n", "tag shell blocks"),
        ("text\n<!-- not run: x -->\n", "end of the file"),
    ] {
        let e = shell_blocks("t.md", doc).expect_err(doc);
        assert!(e.contains(why), "{doc:?}: {e}");
    }
    let blocks = shell_blocks(
        "t.md",
        "- item\n\n  ```sh\n  echo indented\n  ```\n\n```rust\nfn main() {}\n```\n\n\
         ````markdown\n```sh\nnot a block\n```\n````\n",
    )
    .unwrap();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert_eq!(blocks[0].origin, "t.md:3");
}

/// Every `doc/*.md` with a ```` ```rust ```` block is compiled and run as a
/// doctest: `src/lib.rs` includes it, as it includes the README.
#[test]
fn every_rust_block_in_the_docs_is_a_doctest() {
    let lib = std::fs::read_to_string(repo("src/lib.rs")).unwrap();
    for doc in common::markdown_documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        if !text.lines().any(|l| l.trim_start().starts_with("```rust")) {
            continue;
        }
        let name = relative(&doc);
        assert!(
            lib.contains(&format!("include_str!(\"../{name}\")")),
            "{name} has Rust blocks, but src/lib.rs does not include it as a doctest"
        );
    }
}
