//! Every example DAG in examples/dags/ parses without a diagnostic.

#[test]
fn every_example_dag_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dags");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let bytes = std::fs::read(&path).unwrap();
            match updraft_shared::dag::parse_dag(&bytes) {
                Ok(dag) => assert!(!dag.tasks.is_empty(), "{}", path.display()),
                Err(diags) => panic!(
                    "{}:\n{}",
                    path.display(),
                    diags
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
            seen += 1;
        }
    }
    assert!(seen >= 3, "expected the example DAGs, found {seen}");
}
