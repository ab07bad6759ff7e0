//! The dependency audit: cargo-deny checks the workspace's dependency graph (advisories,
//! licences, bans, sources) against deny.toml and the committed RustSec advisory database
//! snapshot (audit/), offline. The workspace must pass, and a lock file holding a crate with a
//! known advisory must fail: a check that cannot fail proves nothing.
//!
//! cargo-deny and the unpacked snapshot come from `scripts/setup-test-deps` (which
//! `scripts/test` runs); a missing tool fails the test with that hint, never skips it.
//! docs/reliability.md ("Dependency audit") says what to do when the audit fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where scripts/setup-test-deps unpacks the snapshot: deny.toml's `db-path`, then the
/// directory name cargo-deny derives from the database URL.
const UNPACKED_DB: &str = ".tools/advisory-dbs/advisory-db-3157b0e258782691";

/// A lock file with smallvec 1.6.0: RUSTSEC-2021-0003, heap buffer overflow in `insert_many`.
const VULNERABLE_FIXTURE: &str = "tests/dependency_audit/vulnerable/Cargo.toml";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cargo_deny() -> PathBuf {
    let path = std::env::var_os("CHATBOT_TEST_CARGO_DENY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".tools/bin/cargo-deny"));
    assert!(
        path.is_file(),
        "{} not found (from CHATBOT_TEST_CARGO_DENY or the default .tools/bin/cargo-deny): run \
         scripts/setup-test-deps (it installs cargo-deny and unpacks the advisory database), then \
         eval its output or use scripts/test",
        path.display()
    );
    path
}

/// Runs cargo-deny from the workspace root (deny.toml's `db-path` is relative to it), offline:
/// the advisory database is the unpacked snapshot, never fetched.
fn deny(args: &[&str]) -> Output {
    Command::new(cargo_deny())
        .current_dir(repo())
        .args(["--offline", "--locked", "--color", "never"])
        .args(args)
        .output()
        .expect("run cargo-deny")
}

fn text(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn snapshot_field(name: &str) -> String {
    let snapshot = std::fs::read_to_string(repo().join("audit/advisory-db.snapshot")).unwrap();
    snapshot
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("audit/advisory-db.snapshot has no {name}="))
        .to_owned()
}

#[test]
fn the_audit_reads_the_committed_snapshot() {
    let unpacked = repo().join(UNPACKED_DB);
    let sha = std::fs::read_to_string(unpacked.join(".snapshot-sha256")).unwrap_or_default();
    assert_eq!(
        sha.trim(),
        snapshot_field("sha256"),
        "{} is not audit/advisory-db.tar.xz as committed: run scripts/setup-test-deps",
        unpacked.display()
    );
    let advisories: usize = snapshot_field("advisories").parse().unwrap();
    assert!(advisories > 1000, "{advisories} advisories in the snapshot");
}

#[test]
fn the_workspace_passes_the_audit() {
    let out = deny(&["--workspace", "check"]);
    // The diagnostics go to stderr, the summary line to stdout.
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && summary.contains("advisories ok, bans ok, licenses ok, sources ok"),
        "the dependency audit failed (docs/reliability.md, \"Dependency audit\", says what to \
         do):\n{}",
        text(&out)
    );
}

#[test]
fn a_crate_with_a_known_advisory_fails_the_audit() {
    // The fixture's one dependency must be in the local registry cache for an offline
    // `cargo metadata` (which cargo-deny runs); fetching it is a no-op once it is there.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let fetch = Command::new(cargo)
        .current_dir(repo())
        .args([
            "fetch",
            "--locked",
            "--quiet",
            "--manifest-path",
            VULNERABLE_FIXTURE,
        ])
        .output()
        .expect("run cargo fetch");
    assert!(fetch.status.success(), "cargo fetch: {}", text(&fetch));

    // The same policy as the workspace's, on the fixture's lock file.
    let out = deny(&[
        "--manifest-path",
        VULNERABLE_FIXTURE,
        "--config",
        "deny.toml",
        "check",
        "advisories",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    for expected in [
        "error[vulnerability]: Buffer overflow in SmallVec::insert_many",
        "ID: RUSTSEC-2021-0003",
        "smallvec v1.6.0",
        "advisories FAILED",
    ] {
        assert!(all.contains(expected), "no {expected:?} in:\n{all}");
    }
}
