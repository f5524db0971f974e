//! The DAG folder in a running server: new, edited, broken, fixed, deleted and duplicate
//! files, as seen in the database (point 4 of the DAG files issue).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use updraft::dag_processor::{scan_and_sync, DagFolder};
use updraft::store::dags::{self, dag};

use crate::db_test;
use crate::helpers::*;

fn dag_yaml(dag_id: &str, tasks: &[&str], extra: &str) -> String {
    let mut text = format!("dag_id: {dag_id}\n{extra}tasks:\n");
    for t in tasks {
        text.push_str(&format!(
            "  - id: {t}\n    operator: bash\n    with: {{bash_command: echo {t}}}\n"
        ));
    }
    text
}

/// Polls until `check` holds (the watcher makes it quick; the limit only bounds a failure).
async fn eventually<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn find(app: &TestApp, dag_id: &str) -> Option<dag::Model> {
    dags::list(&app.db, true)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.dag_id == dag_id)
}

async fn error_for(app: &TestApp, file: &str) -> Option<String> {
    dags::import_errors(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.filename == file)
        .map(|e| e.stack_trace)
}

db_test!(
    edits_breaks_fixes_and_deletes_reach_the_database,
    |backend| async move {
        let app = spawn_app(backend).await;
        let folder = app.config.dags_folder.clone();
        let file = folder.join("alpha.yaml");
        let v1 = dag_yaml("alpha", &["one"], "schedule: null\n");
        tokio::time::sleep(Duration::from_millis(200)).await; // the processor's first scan
        std::fs::write(&file, &v1).unwrap();
        eventually("alpha appears", || async {
            find(&app, "alpha").await.is_some()
        })
        .await;
        let row = find(&app, "alpha").await.unwrap();
        assert!(row.is_paused, "new DAGs start paused, as in Airflow");
        assert_eq!(row.fileloc, "alpha.yaml");
        let first_version = row.current_version_id.unwrap();

        // An edit makes a new version, current from then on.
        std::fs::write(&file, dag_yaml("alpha", &["one", "two"], "")).unwrap();
        eventually("a second version", || async {
            dags::versions(&app.db, "alpha").await.unwrap().len() == 2
        })
        .await;
        let versions = dags::versions(&app.db, "alpha").await.unwrap();
        assert_eq!(
            versions
                .iter()
                .map(|v| v.version_number)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        let row = find(&app, "alpha").await.unwrap();
        assert_eq!(row.current_version_id, Some(versions[1].id));

        // A broken save keeps the last good version running, flagged, with an import error.
        std::fs::write(&file, "dag_id: alpha\ntasks: [\n").unwrap();
        eventually("an import error", || async {
            error_for(&app, "alpha.yaml").await.is_some()
        })
        .await;
        let text = error_for(&app, "alpha.yaml").await.unwrap();
        assert!(text.starts_with("alpha.yaml:"), "{text}");
        assert!(text.contains("YAML syntax error"), "{text}");
        let row = find(&app, "alpha").await.unwrap();
        assert!(row.has_import_errors);
        assert_eq!(row.current_version_id, Some(versions[1].id));
        assert!(!row.is_stale);

        // Going back to the first content fixes the error and reuses version 1.
        std::fs::write(&file, &v1).unwrap();
        eventually("the error cleared", || async {
            error_for(&app, "alpha.yaml").await.is_none()
        })
        .await;
        eventually("version 1 current again", || async {
            find(&app, "alpha").await.unwrap().current_version_id == Some(first_version)
        })
        .await;
        assert!(!find(&app, "alpha").await.unwrap().has_import_errors);
        assert_eq!(dags::versions(&app.db, "alpha").await.unwrap().len(), 2);

        // Deleting the file makes the DAG stale; its row and versions stay.
        std::fs::remove_file(&file).unwrap();
        eventually("alpha stale", || async {
            find(&app, "alpha").await.unwrap().is_stale
        })
        .await;
        assert_eq!(dags::versions(&app.db, "alpha").await.unwrap().len(), 2);
        assert!(dags::list(&app.db, false)
            .await
            .unwrap()
            .iter()
            .all(|d| d.dag_id != "alpha"));
    }
);

db_test!(
    a_duplicate_dag_id_is_an_import_error_for_the_second_file,
    |backend| async move {
        let app = spawn_app(backend).await;
        let folder = app.config.dags_folder.clone();
        std::fs::write(folder.join("first.yaml"), dag_yaml("beta", &["a"], "")).unwrap();
        eventually("beta appears", || async {
            find(&app, "beta").await.is_some()
        })
        .await;
        std::fs::write(folder.join("second.yaml"), dag_yaml("beta", &["b"], "")).unwrap();
        eventually("second.yaml errors", || async {
            error_for(&app, "second.yaml").await.is_some()
        })
        .await;
        let text = error_for(&app, "second.yaml").await.unwrap();
        assert!(
            text.contains("dag_id `beta` is already defined in first.yaml"),
            "{text}"
        );
        assert_eq!(find(&app, "beta").await.unwrap().fileloc, "first.yaml");

        // When the first file goes, the second one takes the dag_id over.
        std::fs::remove_file(folder.join("first.yaml")).unwrap();
        eventually("second.yaml owns beta", || async {
            find(&app, "beta")
                .await
                .is_some_and(|d| d.fileloc == "second.yaml" && !d.is_stale)
        })
        .await;
        assert!(error_for(&app, "second.yaml").await.is_none());
    }
);

db_test!(
    is_paused_upon_creation_and_subfolders_are_honoured,
    |backend| async move {
        let app = spawn_app(backend).await;
        let folder = app.config.dags_folder.join("team_a");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("gamma.yml"),
            dag_yaml("gamma", &["a"], "is_paused_upon_creation: false\n"),
        )
        .unwrap();
        std::fs::write(folder.join(".hidden.yaml"), dag_yaml("hidden", &["a"], "")).unwrap();
        std::fs::write(folder.join("notes.txt"), "not a DAG").unwrap();
        eventually("gamma appears", || async {
            find(&app, "gamma").await.is_some()
        })
        .await;
        let row = find(&app, "gamma").await.unwrap();
        assert!(!row.is_paused);
        assert_eq!(row.fileloc, "team_a/gamma.yml");
        assert!(find(&app, "hidden").await.is_none());
        assert!(dags::import_errors(&app.db).await.unwrap().is_empty());
    }
);

db_test!(
    files_removed_while_no_processor_ran_go_stale_on_start,
    |backend| async move {
        let (_test_db, db) = processor_db(backend).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.yaml"), dag_yaml("delta", &["a"], "")).unwrap();
        let folder = Arc::new(Mutex::new(DagFolder::new(
            dir.path().to_path_buf(),
            1 << 20,
        )));
        let report = scan_and_sync(&folder, &db, true).await.unwrap();
        assert_eq!(report.new_dags, ["delta"]);
        // A second scan of an unchanged folder writes nothing.
        assert!(scan_and_sync(&folder, &db, true).await.unwrap().is_empty());

        std::fs::remove_file(dir.path().join("d.yaml")).unwrap();
        let restarted = Arc::new(Mutex::new(DagFolder::new(
            dir.path().to_path_buf(),
            1 << 20,
        )));
        let report = scan_and_sync(&restarted, &db, true).await.unwrap();
        assert_eq!(report.stale_dags, ["delta"]);
        let stale: HashSet<String> = dags::list(&db, true)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.is_stale)
            .map(|d| d.dag_id)
            .collect();
        assert!(stale.contains("delta"));
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shows_the_dag_processor_heartbeat() {
    let app = spawn_app(Backend::Sqlite).await;
    eventually("a dag_processor heartbeat", || async {
        app.get_json("/api/v2/monitor/health").await.1["dag_processor"]["status"] == "healthy"
    })
    .await;
    let body = app.get_json("/api/v2/monitor/health").await.1;
    assert!(body["dag_processor"]["latest_dag_processor_heartbeat"].is_string());
}

async fn processor_db(backend: Backend) -> (TestDb, updraft::store::Db) {
    let test_db = TestDb::new(backend).await;
    let url = updraft::config::DatabaseUrl::parse(&test_db.url).unwrap();
    let db = updraft::store::Db::connect(&url, &Default::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    (test_db, db)
}

db_test!(
    two_files_swapping_dag_ids_in_one_save_is_no_conflict,
    |backend| async move {
        let (_t, db) = processor_db(backend).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), dag_yaml("xx", &["t"], "")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), dag_yaml("yy", &["t"], "")).unwrap();
        let folder = Arc::new(Mutex::new(DagFolder::new(
            dir.path().to_path_buf(),
            1 << 20,
        )));
        scan_and_sync(&folder, &db, true).await.unwrap();

        std::fs::write(dir.path().join("a.yaml"), dag_yaml("yy", &["t", "u"], "")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), dag_yaml("xx", &["t", "u"], "")).unwrap();
        let report = scan_and_sync(&folder, &db, true).await.unwrap();
        assert!(report.import_errors.is_empty(), "{report:?}");
        let all = dags::list(&db, true).await.unwrap();
        let loc = |id: &str| {
            all.iter()
                .find(|d| d.dag_id == id)
                .map(|d| (d.fileloc.clone(), d.is_stale))
        };
        assert_eq!(loc("xx"), Some(("b.yaml".to_string(), false)));
        assert_eq!(loc("yy"), Some(("a.yaml".to_string(), false)));
    }
);

db_test!(
    a_dag_the_database_refuses_does_not_block_the_others,
    |backend| async move {
        let (_t, db) = processor_db(backend).await;
        let dir = tempfile::tempdir().unwrap();
        // PostgreSQL refuses NUL characters in text; SQLite stores them.
        std::fs::write(
            dir.path().join("nul.yaml"),
            dag_yaml("nul", &["t"], "description: \"a\\0b\"\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("fine.yaml"), dag_yaml("fine", &["t"], "")).unwrap();
        let folder = Arc::new(Mutex::new(DagFolder::new(
            dir.path().to_path_buf(),
            1 << 20,
        )));
        let report = scan_and_sync(&folder, &db, true).await.unwrap();
        assert!(report.new_dags.contains(&"fine".to_string()), "{report:?}");
        if backend == Backend::Postgres {
            assert_eq!(report.import_errors, ["nul.yaml"]);
            let errors = dags::import_errors(&db).await.unwrap();
            assert!(
                errors[0]
                    .stack_trace
                    .contains("the metadata database refused this DAG"),
                "{errors:?}"
            );
        }
        // Later scans keep working.
        std::fs::write(
            dir.path().join("fine.yaml"),
            dag_yaml("fine", &["t", "u"], ""),
        )
        .unwrap();
        let report = scan_and_sync(&folder, &db, true).await.unwrap();
        assert_eq!(report.new_versions, ["fine"]);
    }
);

#[tokio::test]
async fn symlink_loops_and_fifos_do_not_hang_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), dag_yaml("a", &["t"], "")).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("loop")).unwrap();
    let fifo = dir.path().join("pipe.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let folder = DagFolder::new(dir.path().to_path_buf(), 1 << 20);
    let scan = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || folder.scan()),
    )
    .await
    .expect("the scan finishes")
    .unwrap()
    .unwrap();
    let files: Vec<&str> = scan.changed.iter().map(|f| f.fileloc.as_str()).collect();
    assert_eq!(
        files.iter().filter(|f| f.ends_with("a.yaml")).count(),
        1,
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.contains("pipe")), "{files:?}");
}
