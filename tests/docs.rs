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
    assert!(missing.is_empty(), "README.md does not document {missing:?}");
}

#[test]
fn observability_doc_describes_every_metric() {
    let doc = read("docs/observability.md");
    for m in chatbot::telemetry::catalog::METRICS {
        assert!(doc.contains(&format!("`{}`", m.name)), "docs/observability.md lacks metric {}", m.name);
        assert!(doc.contains(m.unit.as_str()), "unit {} of {}", m.unit.as_str(), m.name);
    }
}
