//! DAG runs and backfills through Airflow 3's API: list (filters, order, pages, `~`, the
//! batch list), patch (mark success/failed/queued, note), clear, delete, backfills (dry run,
//! create, reprocessing, pause/unpause/cancel), with auth and audit entries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use updraft::auth::Role;
use updraft::store::entities::{audit_log, task_instance};

use crate::db_test;
use crate::engine_helpers::*;
use crate::helpers::*;

mod backfills;

/// A paused manual DAG: its runs stay queued, so lists are stable.
const QUIET: &str = "is_paused_upon_creation: true\ntasks:\n  - {id: only, operator: empty}\n";

fn quiet(dag_id: &str) -> String {
    format!("dag_id: {dag_id}\n{QUIET}")
}

/// Task instance states and try numbers of a run, from the database.
async fn tis(app: &TestApp, dag_id: &str, run_id: &str) -> BTreeMap<String, (String, i32, i32)> {
    task_instance::Entity::find()
        .filter(task_instance::Column::DagId.eq(dag_id))
        .filter(task_instance::Column::RunId.eq(run_id))
        .all(app.db.conn())
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            (
                t.task_id,
                (
                    t.state.unwrap_or_else(|| "none".into()),
                    t.try_number,
                    t.max_tries,
                ),
            )
        })
        .collect()
}

async fn wait_ti_state(app: &TestApp, dag_id: &str, run_id: &str, task: &str, want: &str) {
    let started = Instant::now();
    loop {
        let now = tis(app, dag_id, run_id).await;
        if now.get(task).is_some_and(|t| t.0 == want) {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{task} never became {want}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn audit_count(app: &TestApp, event: &str) -> u64 {
    audit_log::Entity::find()
        .filter(audit_log::Column::Event.eq(event))
        .count(app.db.conn())
        .await
        .unwrap()
}

async fn send(
    app: &TestApp,
    client: &reqwest::Client,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.request(method, app.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(app: &TestApp, client: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
    send(app, client, reqwest::Method::POST, path, Some(body)).await
}

fn dates(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|r| r[key].as_str().unwrap_or_default().to_string())
        .collect()
}

db_test!(
    runs_list_with_airflow_filters_order_and_pages,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(&app, "listed", &quiet("listed")).await;
        write_dag(&app, "other", &quiet("other")).await;
        for day in ["01", "02", "03"] {
            trigger(
                &app,
                "listed",
                json!({"logical_date": format!("2024-01-{day}T00:00:00+00:00"), "conf": {"day": day}}),
            )
            .await;
        }
        trigger(&app, "other", json!({"dag_run_id": "other_run"})).await;

        let (status, body) = app.get_json("/api/v2/dags/listed/dagRuns").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_entries"], 3);
        let run = &body["dag_runs"][0];
        assert_eq!(run["dag_run_id"], "manual__2024-01-01T00:00:00+00:00");
        assert_eq!(run["triggered_by"], "rest_api");
        assert_eq!(run["triggering_user_name"], ADMIN_USER);
        assert_eq!(run["run_type"], "manual");
        assert_eq!(run["dag_versions"][0]["version_number"], 1);
        assert!(uuid::Uuid::parse_str(run["dag_versions"][0]["id"].as_str().unwrap()).is_ok());
        for key in ["bundle_version", "partition_key", "partition_date", "note"] {
            assert!(run.as_object().unwrap().contains_key(key), "{key}: {run}");
        }

        // A run id with `+` and `:` percent-encoded in the path.
        let (status, one) = app
            .get_json(&run_path("listed", "manual__2024-01-02T00:00:00+00:00"))
            .await;
        assert_eq!((status, &one["conf"]["day"]), (200, &json!("02")));

        let list = |q: &str| format!("/api/v2/dags/listed/dagRuns?{q}");
        let (_, body) = app.get_json(&list("order_by=-logical_date")).await;
        assert_eq!(
            dates(&body["dag_runs"], "logical_date"),
            [
                "2024-01-03T00:00:00Z",
                "2024-01-02T00:00:00Z",
                "2024-01-01T00:00:00Z"
            ]
        );
        let (_, body) = app
            .get_json(&list("order_by=-logical_date&limit=1&offset=1"))
            .await;
        assert_eq!(body["total_entries"], 3);
        assert_eq!(
            dates(&body["dag_runs"], "logical_date"),
            ["2024-01-02T00:00:00Z"]
        );
        // Datetimes as the Python client sends them: `+` percent-encoded, offset without colon.
        let (status, body) = app
            .get_json(&list("logical_date_gte=2024-01-02T00:00:00.000000%2B0000"))
            .await;
        assert_eq!((status, body["total_entries"].as_i64()), (200, Some(2)));
        let (_, body) = app
            .get_json(&list(
                "logical_date_gt=2024-01-01T00:00:00Z&logical_date_lt=2024-01-03T00:00:00Z",
            ))
            .await;
        assert_eq!(body["total_entries"], 1);
        let (status, body) = app
            .get_json(&list("logical_date_gte=2024-01-02T00:00:00"))
            .await;
        assert_eq!(status, 422);
        assert!(
            body["detail"].as_str().unwrap().contains("time zone"),
            "{body}"
        );

        for (q, want) in [
            ("state=queued&state=running", 3),
            ("state=success", 0),
            ("run_type=manual", 3),
            ("run_type=scheduled", 0),
            ("run_id_pattern=01-02", 1),
            ("triggering_user_name_pattern=ADM", 3),
            ("triggering_user_name_pattern=nobody", 0),
            ("dag_version=1", 3),
            ("dag_version=2", 0),
            ("conf_contains=%2203%22", 1),
        ] {
            let (status, body) = app.get_json(&list(q)).await;
            assert_eq!(status, 200, "{q}: {body}");
            assert_eq!(body["total_entries"], want, "{q}: {body}");
        }
        for (q, status_wanted, says) in [
            ("state=bogus", 422, "state"),
            ("run_type=bogus", 422, "run_type"),
            ("order_by=nope", 400, "nope"),
            ("limit=many", 422, "query parameters"),
        ] {
            let (status, body) = app.get_json(&list(q)).await;
            assert_eq!(status, status_wanted, "{q}: {body}");
            assert!(body["detail"].as_str().unwrap().contains(says), "{body}");
        }

        // `~`: every DAG.
        let (_, body) = app.get_json("/api/v2/dags/~/dagRuns").await;
        assert_eq!(body["total_entries"], 4);
        let (_, body) = app
            .get_json("/api/v2/dags/~/dagRuns?dag_id_pattern=oth")
            .await;
        assert_eq!(body["total_entries"], 1);
        let (status, body) = app.get_json("/api/v2/dags/nope/dagRuns").await;
        assert_eq!(status, 404);
        assert!(body["detail"].as_str().unwrap().contains("nope"), "{body}");

        // The batch list.
        let (status, body) = send(
            &app,
            &app.client,
            reqwest::Method::POST,
            "/api/v2/dags/~/dagRuns/list",
            Some(json!({"dag_ids": ["listed"], "states": ["queued"], "order_by": "-logical_date", "page_limit": 2, "logical_date_gte": "2024-01-01T00:00:00+00:00"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_entries"], 3);
        assert_eq!(
            dates(&body["dag_runs"], "logical_date"),
            ["2024-01-03T00:00:00Z", "2024-01-02T00:00:00Z"]
        );
        let (status, body) = send(
            &app,
            &app.client,
            reqwest::Method::POST,
            "/api/v2/dags/~/dagRuns/list",
            Some(json!({})),
        )
        .await;
        assert_eq!((status, body["total_entries"].as_i64()), (200, Some(4)));
        let (status, body) = send(
            &app,
            &app.client,
            reqwest::Method::POST,
            "/api/v2/dags/listed/dagRuns/list",
            Some(json!({})),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("~"), "{body}");
        let (status, _) = send(
            &app,
            &app.client,
            reqwest::Method::POST,
            "/api/v2/dags/~/dagRuns/list",
            Some(json!({"logical_date_gte": "2024-01-01T00:00:00"})),
        )
        .await;
        assert_eq!(status, 422);

        // Auth: anonymous 401, a Viewer reads.
        let res = app
            .anon
            .get(app.url("/api/v2/dags/~/dagRuns"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let viewer = app.client_as(Role::Viewer).await;
        let (status, _) = send(
            &app,
            &viewer,
            reqwest::Method::GET,
            "/api/v2/dags/listed/dagRuns",
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
);

/// a runs until stopped, b waits for it, c is quick.
fn slow_dag(dag_id: &str) -> String {
    format!(
        "dag_id: {dag_id}\nis_paused_upon_creation: false\ntasks:\n  - {{id: a, operator: bash, with: {{bash_command: \"sleep 30\"}}}}\n  - {{id: b, operator: empty, depends_on: [a]}}\n  - {{id: c, operator: empty}}\n"
    )
}

db_test!(patch_marks_runs_as_airflow_does, |backend| async move {
    let app = spawn_app(backend).await;
    write_dag(&app, "marked", &slow_dag("marked")).await;
    let path = |run: &str| run_path("marked", run);

    // failed: the running task fails, the ones not started are skipped.
    trigger(&app, "marked", json!({"dag_run_id": "to_fail"})).await;
    wait_ti_state(&app, "marked", "to_fail", "a", "running").await;
    wait_ti_state(&app, "marked", "to_fail", "c", "success").await;
    let (status, run) = send(
        &app,
        &app.client,
        reqwest::Method::PATCH,
        &path("to_fail"),
        Some(json!({"state": "failed"})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["state"], "failed");
    assert!(run["end_date"].is_string(), "{run}");
    let states = tis(&app, "marked", "to_fail").await;
    assert_eq!(states["a"].0, "failed", "{states:?}");
    assert_eq!(states["b"].0, "skipped", "{states:?}");
    assert_eq!(states["c"].0, "success", "{states:?}");

    // success: every task instance succeeds.
    trigger(&app, "marked", json!({"dag_run_id": "to_succeed"})).await;
    wait_ti_state(&app, "marked", "to_succeed", "a", "running").await;
    let (status, run) = send(
        &app,
        &app.client,
        reqwest::Method::PATCH,
        &format!("{}?update_mask=state", path("to_succeed")),
        Some(json!({"state": "success", "note": "ignored by the mask"})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["state"], "success");
    assert!(run["note"].is_null(), "{run}");
    let states = tis(&app, "marked", "to_succeed").await;
    assert!(states.values().all(|s| s.0 == "success"), "{states:?}");

    // The note alone; then removed with null.
    let (status, run) = send(
        &app,
        &app.client,
        reqwest::Method::PATCH,
        &path("to_succeed"),
        Some(json!({"note": "checked by hand"})),
    )
    .await;
    assert_eq!((status, &run["note"]), (200, &json!("checked by hand")));
    assert_eq!(run["state"], "success");
    let (_, run) = send(
        &app,
        &app.client,
        reqwest::Method::PATCH,
        &path("to_succeed"),
        Some(json!({"note": null})),
    )
    .await;
    assert!(run["note"].is_null(), "{run}");

    // queued: the run is queued again; all its tasks done, it finishes again by its leaves
    // (b skipped, c successful), as Airflow decides.
    let (status, run) = send(
        &app,
        &app.client,
        reqwest::Method::PATCH,
        &path("to_fail"),
        Some(json!({"state": "queued"})),
    )
    .await;
    assert_eq!((status, &run["state"]), (200, &json!("queued")), "{run}");
    assert!(run["end_date"].is_null(), "{run}");
    let again = wait_for_run(&app, "marked", "to_fail").await;
    assert_eq!(again["state"], "success");

    // Bad input, unknown runs, roles.
    for (body, query, want) in [
        (json!({"state": "running"}), "", 422),
        (json!({"state": 3}), "", 422),
        (json!({"note": "x".repeat(1001)}), "", 422),
        (json!({"note": "x"}), "?update_mask=color", 400),
    ] {
        let (status, answer) = send(
            &app,
            &app.client,
            reqwest::Method::PATCH,
            &format!("{}{query}", path("to_fail")),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, want, "{body}: {answer}");
        assert!(answer["detail"].is_string(), "{answer}");
    }
    let (status, answer) = send(
        &app,
        &app.client,
        reqwest::Method::PATCH,
        &path("nope"),
        Some(json!({"state": "failed"})),
    )
    .await;
    assert_eq!(status, 404);
    assert!(answer["detail"].as_str().unwrap().contains("nope"));
    let viewer = app.client_as(Role::Viewer).await;
    let (status, _) = send(
        &app,
        &viewer,
        reqwest::Method::PATCH,
        &path("to_fail"),
        Some(json!({"note": "no"})),
    )
    .await;
    assert_eq!(status, 403);
    let res = app
        .anon
        .patch(app.url(&path("to_fail")))
        .json(&json!({"note": "no"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // One entry per accepted change (refused ones roll back with their change).
    assert_eq!(audit_count(&app, "patch_dag_run").await, 5);
});

db_test!(
    clear_runs_a_failed_task_again_until_the_run_succeeds,
    |backend| async move {
        let app = spawn_app(backend).await;
        let marker = app.home.path().join("tried-once");
        let yaml = format!(
            "dag_id: flaky\nis_paused_upon_creation: false\ntasks:\n  - {{id: flaky, operator: bash, with: {{bash_command: \"[ -f {m} ] || {{ touch {m}; exit 1; }}\"}}}}\n  - {{id: after, operator: empty, depends_on: [flaky]}}\n  - {{id: fine, operator: empty}}\n",
            m = marker.display()
        );
        write_dag(&app, "flaky", &yaml).await;
        trigger(&app, "flaky", json!({"dag_run_id": "r1"})).await;
        let run = wait_for_run(&app, "flaky", "r1").await;
        assert_eq!(run["state"], "failed");
        let clear = format!("{}/clear", run_path("flaky", "r1"));

        // A dry run (the default) lists what would be cleared and changes nothing.
        let (status, body) = send(
            &app,
            &app.client,
            reqwest::Method::POST,
            &clear,
            Some(json!({})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_entries"], 3);
        let ti = &body["task_instances"][0];
        assert!(uuid::Uuid::parse_str(ti["id"].as_str().unwrap()).is_ok());
        for key in ["executor_config", "dag_display_name", "task_display_name"] {
            assert!(ti[key].is_string(), "{key}: {ti}");
        }
        let (_, body) = send(
            &app,
            &app.client,
            reqwest::Method::POST,
            &clear,
            Some(json!({"dry_run": true, "only_failed": true})),
        )
        .await;
        let mut names: Vec<String> = dates(&body["task_instances"], "task_id");
        names.sort();
        assert_eq!(names, ["after", "flaky"]);
        assert_eq!(get_run(&app, "flaky", "r1").await["state"], "failed");

        // Clearing for real queues the run; the failed task runs again with a new try.
        let (status, run) = send(
            &app,
            &app.client,
            reqwest::Method::POST,
            &clear,
            Some(json!({"dry_run": false, "only_failed": true})),
        )
        .await;
        assert_eq!(status, 200, "{run}");
        assert_eq!(run["dag_run_id"], "r1");
        assert!(matches!(run["state"].as_str(), Some("queued" | "running")));
        let run = wait_for_run(&app, "flaky", "r1").await;
        assert_eq!(run["state"], "success", "{run}");
        let states = tis(&app, "flaky", "r1").await;
        assert_eq!(states["flaky"], ("success".into(), 2, 1), "{states:?}");
        assert_eq!(states["fine"].1, 1, "not cleared: {states:?}");
        assert_eq!(states["after"].0, "success");
        assert_eq!(audit_count(&app, "clear_dag_run").await, 1);

        let (status, _) = send(
            &app,
            &app.client,
            reqwest::Method::POST,
            &format!("{}/clear", run_path("flaky", "nope")),
            Some(json!({})),
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = send(
            &app,
            &app.client,
            reqwest::Method::POST,
            &clear,
            Some(json!({"dry_run": "maybe"})),
        )
        .await;
        assert_eq!(status, 422);
        let viewer = app.client_as(Role::Viewer).await;
        let (status, _) = send(
            &app,
            &viewer,
            reqwest::Method::POST,
            &clear,
            Some(json!({})),
        )
        .await;
        assert_eq!(status, 403);
    }
);

db_test!(
    delete_removes_the_run_and_its_task_instances,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(&app, "doomed", &quiet("doomed")).await;
        let run = trigger(&app, "doomed", json!({})).await;
        let run_id = run_id_of(&run);
        let path = run_path("doomed", &run_id);

        let viewer = app.client_as(Role::Viewer).await;
        let (status, _) = send(&app, &viewer, reqwest::Method::DELETE, &path, None).await;
        assert_eq!(status, 403);
        let res = app.anon.delete(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 401);

        let res = app.client.delete(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 204);
        let (status, body) = app.get_json(&path).await;
        assert_eq!(status, 404, "{body}");
        assert!(tis(&app, "doomed", &run_id).await.is_empty());
        let res = app.client.delete(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(audit_count(&app, "delete_dag_run").await, 1);
    }
);
