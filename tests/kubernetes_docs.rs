//! The Kubernetes guide cannot drift from the CLI: every manifest in
//! `doc/examples/` and every YAML block in the README and in every `doc/*.md`
//! is parsed, and every `liveness` command it names — container commands,
//! exec probes, preStop hooks — is parsed by the binary's own command-line
//! parser; every `health.sh` probe is run against an empty run directory and
//! must not be a usage error; every `httpGet` probe must name an endpoint that
//! `liveness serve` answers, on the port it listens on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

/// The binary's command-line parser, compiled into this test.
#[path = "../src/bin/liveness/cli.rs"]
#[allow(dead_code, unreachable_pub)]
mod cli;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Rundir, repo};
use yaml_rust2::{Yaml, YamlLoader};

/// One YAML document and where it came from.
struct Doc {
    origin: String,
    yaml: Yaml,
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("doc/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// The fenced ```yaml blocks of a Markdown file.
fn yaml_blocks(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim_start() == "```yaml" => current = Some(String::new()),
            Some(b) if line.trim_start() == "```" => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    assert!(
        current.is_none(),
        "{}: unterminated code block",
        path.display()
    );
    blocks
}

fn load(origin: &str, text: &str) -> Vec<Doc> {
    let docs =
        YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{origin}: not valid YAML: {e}"));
    docs.into_iter()
        .map(|yaml| Doc {
            origin: origin.to_owned(),
            yaml,
        })
        .collect()
}

fn all_docs() -> Vec<Doc> {
    let mut docs = Vec::new();
    for f in example_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        docs.extend(load(&f.display().to_string(), &text));
    }
    for page in common::markdown_documents() {
        let md = page.strip_prefix(repo("")).unwrap().display().to_string();
        for (i, block) in yaml_blocks(&page).iter().enumerate() {
            docs.extend(load(&format!("{md} block {}", i + 1), block));
        }
    }
    docs
}

fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a
            .iter()
            .map(|v| match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                other => panic!("argument is not a string: {other:?}"),
            })
            .collect(),
        Yaml::BadValue => Vec::new(),
        other => panic!("command is not a list: {other:?}"),
    }
}

/// Every mapping anywhere in `y` that has a `containers` or `initContainers`
/// list: a pod spec.
fn pod_specs<'a>(y: &'a Yaml, out: &mut Vec<&'a Yaml>) {
    match y {
        Yaml::Hash(h) => {
            if !y["containers"].is_badvalue() || !y["initContainers"].is_badvalue() {
                out.push(y);
            }
            for v in h.values() {
                pod_specs(v, out);
            }
        }
        Yaml::Array(a) => a.iter().for_each(|v| pod_specs(v, out)),
        _ => {}
    }
}

fn is_liveness(argv0: &str) -> bool {
    Path::new(argv0)
        .file_name()
        .is_some_and(|n| n == "liveness")
}

fn is_health_sh(argv: &[String]) -> Option<&[String]> {
    let i = argv
        .iter()
        .position(|a| Path::new(a).file_name().is_some_and(|n| n == "health.sh"))?;
    Some(&argv[i + 1..])
}

/// The parsed command's name (`Probe`, `Run`, ...).
fn variant(cmd: &cli::Command) -> String {
    let dbg = format!("{cmd:?}");
    dbg.chars().take_while(|c| c.is_alphanumeric()).collect()
}

/// Parses a `liveness` argv with the binary's parser; panics with the
/// manifest's location on a usage error or a help/version request.
fn parse(origin: &str, argv: &[String]) -> cli::Command {
    let args = argv[1..].iter().map(OsString::from);
    let cmd = cli::parse(args)
        .unwrap_or_else(|u| panic!("{origin}: {argv:?} is not a valid liveness command: {u}"));
    let v = variant(&cmd);
    assert!(
        v != "Help" && v != "Version",
        "{origin}: {argv:?} only asks for {v}"
    );
    cmd
}

struct Seen {
    liveness: usize,
    health_sh: usize,
    http: usize,
}

fn check_exec_probe(origin: &str, probe: &Yaml, seen: &mut Seen, rundir: &Rundir) {
    let argv = strings(&probe["exec"]["command"]);
    if argv.is_empty() {
        return;
    }
    if is_liveness(&argv[0]) {
        let cmd = parse(origin, &argv);
        assert_eq!(
            variant(&cmd),
            "Probe",
            "{origin}: an exec probe must run `liveness probe`: {argv:?}"
        );
        if let cli::Command::Probe { timeout, .. } = cmd {
            let kubelet_s = probe["timeoutSeconds"].as_i64().unwrap_or(1);
            assert!(
                timeout.as_millis() < u128::from(kubelet_s as u64) * 1000,
                "{origin}: --timeout {timeout:?} is not under timeoutSeconds {kubelet_s}: \
                 the kubelet would kill the probe before it says why"
            );
        }
        seen.liveness += 1;
    } else if let Some(args) = is_health_sh(&argv) {
        let out = Command::new("dash")
            .arg(repo("scripts/health.sh"))
            .args(args)
            .env("LIVENESS_RUNDIR", rundir.path())
            .env("LIVENESS_UNIT_NAME", "absent")
            .output()
            .unwrap();
        assert_ne!(
            out.status.code(),
            Some(2),
            "{origin}: {argv:?} is a usage error: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen.health_sh += 1;
    } else {
        panic!("{origin}: exec probe {argv:?} is neither liveness nor health.sh");
    }
}

/// Checks every pod spec in one document: each `liveness` command parses,
/// containers run `run` or `serve`, exec probes run `probe` (or
/// `health.sh`) within `timeoutSeconds`, preStop runs `terminate`, and
/// `httpGet` probes name the right endpoint on the port `serve` listens on.
/// Panics with the document's origin on the first drift.
fn check_doc(doc: &Doc, rundir: &Rundir, seen: &mut Seen) {
    let mut pods = Vec::new();
    pod_specs(&doc.yaml, &mut pods);
    for pod in pods {
        let mut listen_ports = Vec::new();
        let mut http_ports = Vec::new();
        let containers = ["initContainers", "containers"]
            .iter()
            .filter_map(|k| pod[*k].as_vec())
            .flatten();
        for c in containers {
            let name = c["name"].as_str().unwrap_or("?");
            let origin = format!("{} container {name}", doc.origin);
            let mut argv = strings(&c["command"]);
            argv.extend(strings(&c["args"]));
            if argv.first().is_some_and(|a| is_liveness(a)) {
                let cmd = parse(&origin, &argv);
                let v = variant(&cmd);
                assert!(
                    v == "Run" || v == "Serve",
                    "{origin}: a container runs `liveness run` or `liveness serve`, not {v}"
                );
                if v == "Serve" {
                    let listen = argv
                        .iter()
                        .skip_while(|a| *a != "--listen")
                        .nth(1)
                        .expect("liveness serve in a pod must say --listen 0.0.0.0:PORT");
                    assert!(
                        listen.starts_with("0.0.0.0:") || listen.starts_with("[::]:"),
                        "{origin}: the kubelet connects to the pod IP, not to {listen}"
                    );
                    listen_ports.push(listen.rsplit(':').next().unwrap().parse::<i64>().unwrap());
                }
                seen.liveness += 1;
            }
            for kind in ["startupProbe", "livenessProbe", "readinessProbe"] {
                let probe = &c[kind];
                if probe.is_badvalue() {
                    continue;
                }
                let origin = format!("{origin} {kind}");
                if !probe["exec"].is_badvalue() {
                    check_exec_probe(&origin, probe, seen, rundir);
                }
                if !probe["httpGet"].is_badvalue() {
                    let path = probe["httpGet"]["path"].as_str().unwrap();
                    let expected = match kind {
                        "startupProbe" => "/health/startup",
                        "livenessProbe" => "/health/live",
                        _ => "/health/ready",
                    };
                    assert_eq!(path, expected, "{origin}");
                    http_ports.push((origin.clone(), probe["httpGet"]["port"].as_i64().unwrap()));
                    seen.http += 1;
                }
            }
            for hook in ["preStop", "postStart"] {
                let argv = strings(&c["lifecycle"][hook]["exec"]["command"]);
                if argv.first().is_some_and(|a| is_liveness(a)) {
                    let cmd = parse(&format!("{origin} {hook}"), &argv);
                    if hook == "preStop" {
                        assert_eq!(variant(&cmd), "Terminate", "{origin}: preStop");
                    }
                    seen.liveness += 1;
                }
            }
        }
        for (origin, port) in http_ports {
            assert!(
                listen_ports.contains(&port),
                "{origin}: port {port} is not where `liveness serve` listens in this pod \
                 ({listen_ports:?})"
            );
        }
    }
}

/// Every manifest parses; every command it names is one the CLI accepts.
#[test]
fn every_manifest_names_real_liveness_commands() {
    let rundir = Rundir::new();
    let mut seen = Seen {
        liveness: 0,
        health_sh: 0,
        http: 0,
    };
    let docs = all_docs();
    for f in example_files() {
        let name = f.display().to_string();
        assert!(
            docs.iter().any(|d| d.origin == name && !d.yaml.is_null()),
            "{name}: no YAML document"
        );
    }
    for doc in &docs {
        check_doc(doc, &rundir, &mut seen);
    }
    // Negative control for the walk itself: the guide's manifests name
    // dozens of commands; finding none means the walk is broken.
    assert!(
        seen.liveness >= 20,
        "only {} liveness commands found",
        seen.liveness
    );
    assert!(seen.health_sh >= 1, "no health.sh probe found");
    assert!(seen.http >= 3, "no httpGet probes found");
}

/// The checker rejects what it must: a misspelt flag, an unknown command,
/// and a probe that runs something else than `liveness probe`.
#[test]
fn the_checker_rejects_a_drifted_manifest() {
    let bad = [
        r#"{containers: [{name: x, livenessProbe: {exec: {command: ["/liveness", "probe", "--redy"]}}}]}"#,
        r#"{containers: [{name: x, command: ["/liveness", "supervise", "--", "app"]}]}"#,
        r#"{containers: [{name: x, readinessProbe: {exec: {command: ["/liveness", "status"]}}}]}"#,
        r#"{containers: [{name: x, livenessProbe: {exec: {command: ["/liveness", "probe", "--timeout", "1500"]}}}]}"#,
    ];
    // Positive control: the same checker accepts a sound manifest.
    let rundir = Rundir::new();
    let mut seen = Seen {
        liveness: 0,
        health_sh: 0,
        http: 0,
    };
    let good = r#"{containers: [{name: x, command: ["/liveness", "run", "--", "app"],
        livenessProbe: {exec: {command: ["/liveness", "probe", "--timeout", "800"]}}}]}"#;
    for doc in &load("inline", good) {
        check_doc(doc, &rundir, &mut seen);
    }
    assert_eq!(seen.liveness, 2);
    for text in bad {
        let docs = load("inline", text);
        let result = std::panic::catch_unwind(|| {
            let rundir = Rundir::new();
            let mut seen = Seen {
                liveness: 0,
                health_sh: 0,
                http: 0,
            };
            for doc in &docs {
                check_doc(doc, &rundir, &mut seen);
            }
        });
        assert!(result.is_err(), "the checker accepted {text}");
    }
}

/// The Dockerfile ships what the guide says: the static release binary and
/// the shell probe, from paths that exist in this repository.
#[test]
fn dockerfile_copies_the_binary_and_the_probe() {
    let text = std::fs::read_to_string(repo("doc/examples/Dockerfile")).unwrap();
    assert!(
        text.contains("FROM gcr.io/distroless/static"),
        "distroless runtime stage"
    );
    assert!(text.contains("cargo build --release --locked --bin liveness"));
    assert!(text.contains("COPY --from=build /src/target/release/liveness /liveness"));
    assert!(text.contains("COPY --from=build /src/scripts/health.sh /health.sh"));
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for src in &words[1..words.len() - 1] {
            assert!(
                repo(src).exists(),
                "Dockerfile copies {src}, which does not exist"
            );
        }
    }
}
