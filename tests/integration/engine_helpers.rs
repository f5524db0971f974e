//! What the engine tests do through the API: write a DAG, trigger it, watch the run and its
//! task instances, read a try's log.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::EntityTrait;
use serde_json::Value;
use updraft::store::dags::{self, dag};

use crate::helpers::TestApp;

/// How long a test waits for something the engine should do in well under a second: only
/// a failing test (or a very loaded machine: the suite runs in parallel) gets anywhere near it.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Writes `dir/file` whole (a temporary name first, so the DAG processor never reads half of it).
pub fn write_dag_file(dir: &Path, file: &str, yaml: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().expect("a DAG file has a folder"))
        .expect("create the DAG folder");
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, yaml).expect("write the DAG file");
    std::fs::rename(&tmp, &path).expect("move the DAG file in place");
}

/// Writes `$dags_folder/{dag_id}.yaml` and waits until the DAG processor has registered it
/// (what the trigger endpoint needs to stop answering 404).
pub async fn write_dag(app: &TestApp, dag_id: &str, yaml: &str) {
    write_dag_file(&app.config.dags_folder, &format!("{dag_id}.yaml"), yaml);
    let started = Instant::now();
    loop {
        let row = dag::Entity::find_by_id(dag_id.to_string())
            .one(app.db.conn())
            .await
            .expect("read the dag table");
        if row.is_some_and(|d| !d.is_stale && d.current_version_id.is_some()) {
            return;
        }
        if started.elapsed() > PATIENCE {
            let errors = dags::import_errors(&app.db).await.unwrap_or_default();
            panic!("DAG {dag_id} was not registered; import errors: {errors:?}\n{yaml}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Unpauses a DAG and wakes the scheduler, so that its queued runs start now.
pub async fn unpause(app: &TestApp, dag_id: &str) {
    let found = updraft::store::runs::set_paused(&app.db, dag_id, false)
        .await
        .expect("unpause");
    assert!(found, "DAG {dag_id} to unpause not found");
    app.engine.signals.wake_scheduler();
}

/// Triggers a run (`POST /dags/{dag_id}/dagRuns` with `body`) and returns it as the API
/// answered, retrying while the DAG is unknown (404).
pub async fn trigger(app: &TestApp, dag_id: &str, body: Value) -> Value {
    let started = Instant::now();
    loop {
        let res = app
            .client
            .post(app.url(&format!("/api/v2/dags/{dag_id}/dagRuns")))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = res.status().as_u16();
        let answer = res.text().await.unwrap_or_default();
        match status {
            200 => {
                return serde_json::from_str(&answer)
                    .unwrap_or_else(|e| panic!("triggering {dag_id}: not JSON ({e}): {answer}"))
            }
            // The DAG processor has not registered the file yet.
            404 if started.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            _ => panic!("triggering {dag_id} with {body} answered {status}: {answer}"),
        }
    }
}

/// The run id of a run as the API shows it.
pub fn run_id_of(run: &Value) -> String {
    run["dag_run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the run has a run id: {run}"))
        .to_string()
}

/// A path segment percent-encoded (run ids hold `+` and `:`).
pub fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn run_path(dag_id: &str, run_id: &str) -> String {
    format!("/api/v2/dags/{dag_id}/dagRuns/{}", encode_segment(run_id))
}

pub async fn get_run(app: &TestApp, dag_id: &str, run_id: &str) -> Value {
    let (status, run) = app.get_json(&run_path(dag_id, run_id)).await;
    assert_eq!(status, 200, "{run}");
    run
}

/// Waits for the run to end (success or failed) and returns it as the API shows it.
pub async fn wait_for_run(app: &TestApp, dag_id: &str, run_id: &str) -> Value {
    let started = Instant::now();
    loop {
        let run = get_run(app, dag_id, run_id).await;
        if matches!(run["state"].as_str(), Some("success" | "failed")) {
            return run;
        }
        if started.elapsed() > PATIENCE {
            let states: Vec<String> = task_instances(app, dag_id, run_id)
                .await
                .iter()
                .map(|(task, ti)| format!("{task}: {} (try {})", state(ti), ti["try_number"]))
                .collect();
            panic!(
                "run {run_id} of {dag_id} did not finish within {PATIENCE:?}: {run}\n{}",
                states.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The run's task instances as the API shows them, by task id.
pub async fn task_instances(app: &TestApp, dag_id: &str, run_id: &str) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    // Pages of 100 (the API's maximum page).
    loop {
        let path = format!(
            "{}/taskInstances?limit=100&offset={}",
            run_path(dag_id, run_id),
            all.len()
        );
        let (status, body) = app.get_json(&path).await;
        assert_eq!(status, 200, "{body}");
        let page = body["task_instances"]
            .as_array()
            .expect("task_instances is a list");
        for ti in page {
            all.insert(ti["task_id"].as_str().unwrap().to_string(), ti.clone());
        }
        if page.is_empty() || all.len() as u64 >= body["total_entries"].as_u64().unwrap_or(0) {
            return all;
        }
    }
}

/// A task instance's state, `none` before the scheduler gave it one.
pub fn state(ti: &Value) -> &str {
    ti["state"].as_str().unwrap_or("none")
}

/// A try's log file, as written.
pub fn task_log(app: &TestApp, dag_id: &str, run_id: &str, task_id: &str, attempt: u32) -> String {
    let path = app
        .home
        .path()
        .join("logs")
        .join(format!("dag_id={dag_id}"))
        .join(format!("run_id={run_id}"))
        .join(format!("task_id={task_id}"))
        .join(format!("attempt={attempt}.log"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// An RFC 3339 date-time (as the API writes them) as an instant.
pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}
