//! The source layout is the architecture: `src/lib.rs` lists its modules
//! in layers, bottom up, and no module may use a module of a later layer,
//! nor may two modules use each other, however indirectly. This test
//! reads the sources (every `crate::module` path, and every `crate::Name`
//! re-exported from a module) and checks both rules, for the library and
//! for the binary; a negative control shows that the check finds an
//! upward use and a circle.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test reports failure by panicking

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name → the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The crate root's modules, as layers: runs of `mod` lines, a blank line
/// or a comment ending a layer.
fn layers(root: &str) -> Vec<Vec<String>> {
    let mut layers = vec![Vec::new()];
    for line in root.lines() {
        let line = line.trim();
        if let Some(m) = line
            .strip_prefix("mod ")
            .or_else(|| line.strip_prefix("pub mod "))
            .and_then(|m| m.strip_suffix(';'))
        {
            layers.last_mut().unwrap().push(m.to_owned());
        } else if line.starts_with("#[") {
            // An attribute of the next `mod` line.
        } else if !layers.last().unwrap().is_empty() {
            layers.push(Vec::new());
        }
    }
    layers.retain(|l| !l.is_empty());
    layers
}

/// `pub use crate::module::{A, B}` at the root: which module each public
/// name comes from, so that `crate::A` counts as a use of `module`.
fn reexports(root: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let flat = root.replace('\n', " ");
    for stmt in flat.split("pub use crate::").skip(1) {
        let stmt = &stmt[..stmt.find(';').unwrap()];
        let module = stmt.split("::").next().unwrap().trim().to_owned();
        if !modules.contains(&module) {
            continue;
        }
        let items = stmt.rsplit(['{', ':']).next().unwrap();
        for item in items.split([',', '}']) {
            let name = item.split(" as ").last().unwrap().trim();
            if !name.is_empty() {
                names.insert(name.to_owned(), module.clone());
            }
        }
    }
    names
}

/// Every Rust file of module `m`: `src/m.rs`, or everything under `src/m/`.
fn files_of(src: &Path, m: &str) -> Vec<PathBuf> {
    let file = src.join(format!("{m}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut out = Vec::new();
    let mut dirs = vec![src.join(m)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    assert!(
        !out.is_empty(),
        "no source for module {m} in {}",
        src.display()
    );
    out
}

/// The modules of `modules` that the code (not the comments) of `text`
/// names through `crate::`.
fn uses(
    text: &str,
    modules: &BTreeSet<String>,
    names: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap();
        for rest in code.split("crate::").skip(1) {
            let mut paths = vec![rest.to_owned()];
            // `use crate::{a::X, b};`
            if let Some(group) = rest.strip_prefix('{') {
                paths = group.split(',').map(str::to_owned).collect();
            }
            for p in paths {
                let word: String = p
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&word) {
                    out.insert(word);
                } else if let Some(m) = names.get(&word) {
                    out.insert(m.clone());
                }
            }
        }
    }
    out
}

/// The import graph of the crate whose root file is `root` in `src`.
fn graph(src: &Path, root: &str, modules: &BTreeSet<String>) -> Graph {
    let names = reexports(root, modules);
    modules
        .iter()
        .map(|m| {
            let mut used = BTreeSet::new();
            for f in files_of(src, m) {
                used.extend(uses(&std::fs::read_to_string(f).unwrap(), modules, &names));
            }
            used.remove(m);
            (m.clone(), used)
        })
        .collect()
}

/// Uses of a later layer, as `a -> b` lines.
fn upward(graph: &Graph, layers: &[Vec<String>]) -> Vec<String> {
    let layer = |m: &str| {
        layers
            .iter()
            .position(|l| l.iter().any(|x| x == m))
            .unwrap()
    };
    let mut bad = Vec::new();
    for (m, used) in graph {
        for u in used {
            if layer(u) > layer(m) {
                bad.push(format!("{m} -> {u}"));
            }
        }
    }
    bad
}

/// A circle of uses, if there is one: `a -> b -> a`.
fn circle(graph: &Graph) -> Option<String> {
    fn visit(
        m: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<String> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut c = path[i..].to_vec();
            c.push(m.to_owned());
            return Some(c.join(" -> "));
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_owned());
        for u in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(u, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

/// The library: no module uses a later layer of `src/lib.rs`, and there is
/// no circle. The graph is printed (`--nocapture`) for the record.
#[test]
fn the_library_has_layers_and_no_circle() {
    let root = std::fs::read_to_string(repo("src/lib.rs")).unwrap();
    let layers = layers(&root);
    let modules: BTreeSet<String> = layers.iter().flatten().cloned().collect();
    for expected in [
        "error",
        "os",
        "state",
        "health",
        "probe",
        "supervise",
        "http",
    ] {
        assert!(modules.contains(expected), "{expected} in {layers:?}");
    }
    let graph = graph(&repo("src"), &root, &modules);
    for (i, layer) in layers.iter().enumerate() {
        for m in layer {
            println!("layer {i} {m:<10} uses {:?}", graph[m]);
        }
    }
    assert_eq!(
        upward(&graph, &layers),
        Vec::<String>::new(),
        "uses of a later layer"
    );
    assert_eq!(circle(&graph), None);
    // The facts the layout rests on, stated once more.
    assert!(!graph["health"].contains("shutdown"));
    assert!(!graph["supervise"].contains("health"));
    assert!(graph["supervise"].contains("state"));
}

/// The binary: no circle between its modules.
#[test]
fn the_binary_has_no_circle() {
    let src = repo("src/bin/liveness");
    let root = std::fs::read_to_string(src.join("main.rs")).unwrap();
    let modules: BTreeSet<String> = layers(&root).into_iter().flatten().collect();
    for expected in ["cli", "help", "os", "deadline", "exit_code"] {
        assert!(modules.contains(expected), "{expected} in {modules:?}");
    }
    let graph = graph(&src, &root, &modules);
    println!("{graph:?}");
    assert_eq!(circle(&graph), None);
}

/// Negative control: the checks find an upward use and a circle, and a
/// `crate::Name` re-exported from a module counts as a use of it.
#[test]
fn the_checks_find_what_they_look_for() {
    let root = "mod a;\n\nmod b;\n\npub use crate::b::{Thing, Other as O};\n";
    let layers = layers(root);
    assert_eq!(layers, [vec!["a".to_owned()], vec!["b".to_owned()]]);
    let modules: BTreeSet<String> = ["a", "b"].map(str::to_owned).into();
    let names = reexports(root, &modules);
    assert_eq!(names.get("O").map(String::as_str), Some("b"));
    let a_uses = uses("use crate::Thing; // crate::a\n", &modules, &names);
    assert_eq!(a_uses, ["b".to_owned()].into());
    let mut g = Graph::new();
    g.insert("a".into(), a_uses);
    g.insert("b".into(), BTreeSet::new());
    assert_eq!(upward(&g, &layers), ["a -> b"]);
    assert_eq!(circle(&g), None);
    g.get_mut("b").unwrap().insert("a".into());
    assert_eq!(circle(&g).as_deref(), Some("a -> b -> a"));
}
