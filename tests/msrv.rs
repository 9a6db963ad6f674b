#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The minimum Rust version in `Cargo.toml` (`rust-version`) is not beneath
//! any dependency's: every package of the build that declares a
//! `rust-version` declares ours or an older one. (Our own code is held to
//! it by clippy's `incompatible_msrv` lint, which `scripts/test.sh` runs
//! with `-D warnings`; see `doc/development.md`.)

use std::process::Command;

/// `1.89`, `1.89.0` → (1, 89, 0); `None` for anything else.
fn version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    parts.next().is_none().then_some((major, minor, patch))
}

/// The host's target triple, as rustc names it.
fn host() -> String {
    let out = Command::new("rustc").arg("-vV").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

/// Every dependency built on this platform declares a `rust-version` no
/// newer than ours, or none.
#[test]
fn no_dependency_needs_a_newer_rust_than_we_claim() {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .args(["--filter-platform", &host()])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == env!("CARGO_PKG_NAME"))
        .and_then(|p| p["rust_version"].as_str())
        .expect("Cargo.toml declares rust-version");
    let ours = version(ours).unwrap();
    let mut checked = 0;
    let mut newer = Vec::new();
    for p in packages {
        let Some(rv) = p["rust_version"].as_str() else {
            continue;
        };
        checked += 1;
        let v = version(rv).unwrap_or_else(|| panic!("{}: rust-version {rv:?}", p["name"]));
        if v > ours {
            newer.push(format!("{} {} needs Rust {rv}", p["name"], p["version"]));
        }
    }
    assert!(
        checked >= 10,
        "only {checked} packages declare a rust-version"
    );
    assert!(newer.is_empty(), "newer than our {ours:?}: {newer:?}");
}

/// The comparison the check relies on: a later minor or patch is newer,
/// `1.89` and `1.89.0` are the same, malformed versions are refused.
#[test]
fn versions_compare_as_rust_releases() {
    assert!(version("1.90").unwrap() > version("1.89.0").unwrap());
    assert!(version("1.89.1").unwrap() > version("1.89").unwrap());
    assert_eq!(version("1.89"), version("1.89.0"));
    assert!(version("1.9").unwrap() < version("1.89").unwrap());
    for bad in ["", "1.x", "1.89.0.1", "1.89-beta"] {
        assert_eq!(version(bad), None, "{bad}");
    }
}
