//! The documentation matches the code: every setting is in the README's configuration table and
//! every metric is described in docs/observability.md.

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn readme_configuration_table_lists_every_environment_variable() {
    let readme = read("README.md");
    let missing: Vec<String> = chatbot::cli::environment_variables()
        .into_iter()
        .filter(|env| !readme.contains(&format!("`{env}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md does not document {missing:?}"
    );
}

#[test]
fn observability_doc_describes_every_metric() {
    let doc = read("docs/observability.md");
    for m in chatbot_service::telemetry::catalog::METRICS {
        assert!(
            doc.contains(&format!("`{}`", m.name)),
            "docs/observability.md lacks metric {}",
            m.name
        );
        assert!(
            doc.contains(m.unit.as_str()),
            "unit {} of {}",
            m.unit.as_str(),
            m.name
        );
    }
}

#[test]
fn readme_cost_table_is_the_output_of_cost_estimate() {
    let script = read("scripts/readme-cost-table");
    // The flags the script passes, so the test runs exactly what the script runs.
    let flags: Vec<String> = script
        .rsplit("cost-estimate")
        .next()
        .expect("the script calls cost-estimate")
        .replace("\\\n", " ")
        .replace("\"$@\"", "")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatbot"))
        .arg("cost-estimate")
        .args(&flags)
        .output()
        .expect("run chatbot cost-estimate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let readme = read("README.md");
    for line in generated.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            readme.contains(line),
            "README.md's cost table is stale; missing line:\n{line}"
        );
    }
}
