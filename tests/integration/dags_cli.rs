//! `updraft dags validate|list|show|schema`, the committed schema, and the examples.

use crate::helpers::*;

fn examples() -> String {
    repo_root().join("examples/dags").display().to_string()
}

#[test]
fn committed_dag_schema_matches_the_binary() {
    let out = run_updraft(&["dags", "schema"], &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let committed =
        std::fs::read_to_string(repo_root().join("docs/dag.schema.json")).unwrap_or_default();
    assert!(
        stdout_of(&out) == committed,
        "docs/dag.schema.json is out of date with the model: regenerate it with\n    cargo run -q -p updraft -- dags schema > docs/dag.schema.json\nand commit the result"
    );
}

#[test]
fn examples_validate_and_point_editors_at_the_schema() {
    let dir = repo_root().join("examples/dags");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("# yaml-language-server: $schema=../../docs/dag.schema.json\n"),
                "{} lacks the schema comment",
                path.display()
            );
            files.push(path.display().to_string());
        }
    }
    for name in [
        "tutorial.yaml",
        "example_etl.yaml",
        "example_branching.yaml",
    ] {
        assert!(files.iter().any(|f| f.ends_with(name)), "{name} missing");
    }
    let mut args = vec!["dags", "validate"];
    args.extend(files.iter().map(String::as_str));
    let out = run_updraft(&args, &[]);
    assert!(
        out.status.success(),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    assert_eq!(
        stdout_of(&out)
            .lines()
            .filter(|l| l.contains(": ok: DAG"))
            .count(),
        files.len()
    );
}

#[test]
fn validate_prints_every_problem_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "dag_id: bad\nschedul: '@daily'\ntasks:\n  - id: a\n    operator: bsh\n  - id: b\n    operator: bash\n    depends_on: [a, b]\n    with: {bash_command: echo}\n",
    )
    .unwrap();
    let out = run_updraft(&["dags", "validate", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = stdout_of(&out);
    let file = bad.display().to_string();
    assert!(
        stdout.contains(&format!(
            "{file}:2:1: unknown key `schedul` in the DAG; did you mean `schedule`?"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{file}:5:15: unknown operator `bsh`; did you mean `bash`?"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("task `b` depends on itself"), "{stdout}");
    assert!(stderr_of(&out).contains("1 of 1 file(s) have problems"));
}

#[test]
fn list_and_show_read_the_dags_folder() {
    let env = [("UPDRAFT__CORE__DAGS_FOLDER", examples())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run_updraft(&["dags", "list"], &env);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let list = stdout_of(&out);
    for id in ["tutorial", "example_etl", "example_branching"] {
        assert!(
            list.lines().any(|l| l.starts_with(id)),
            "{id} missing:\n{list}"
        );
    }

    let out = run_updraft(&["dags", "show", "tutorial"], &env);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let show = stdout_of(&out);
    assert!(show.contains("schedule:    @daily (UTC)"), "{show}");
    assert!(show.contains("next run:    "), "{show}");
    assert!(show.contains("print_date → sleep"), "{show}");

    let out = run_updraft(&["dags", "show", "example_branching", "--dot"], &env);
    let dot = stdout_of(&out);
    assert!(dot.starts_with("digraph \"example_branching\" {"), "{dot}");
    assert!(dot.contains("\"weekday_path\" -> \"join\";"), "{dot}");

    let out = run_updraft(&["dags", "show", "nope"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("no DAG `nope`"));
}
