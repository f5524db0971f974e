//! DAGs, import errors, DAG sources and DAG file upload over the REST API, as Airflow's
//! client sees them.

use std::time::{Duration, Instant};

use sea_orm::prelude::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use updraft::auth::Role;
use updraft::store::entities::{audit_log, dag_run, task_instance};

use crate::db_test;
use crate::engine_helpers::*;
use crate::helpers::*;

mod files;

/// Every key of Airflow's `DAGResponse`.
const DAG_KEYS: [&str; 30] = [
    "dag_id",
    "dag_display_name",
    "is_paused",
    "is_stale",
    "last_parsed_time",
    "last_parse_duration",
    "last_expired",
    "bundle_name",
    "bundle_version",
    "relative_fileloc",
    "fileloc",
    "description",
    "timetable_summary",
    "timetable_description",
    "timetable_partitioned",
    "timetable_periodic",
    "tags",
    "max_active_tasks",
    "max_active_runs",
    "max_consecutive_failed_dag_runs",
    "has_task_concurrency_limits",
    "has_import_errors",
    "next_dagrun_logical_date",
    "next_dagrun_data_interval_start",
    "next_dagrun_data_interval_end",
    "next_dagrun_run_after",
    "allowed_run_types",
    "owners",
    "file_token",
    "is_backfillable",
];

const ALPHA: &str = r##"dag_id: alpha_etl
description: Loads the warehouse
owner: alice
tags: [etl, daily]
schedule: "@daily"
start_date: 2024-01-01
catchup: false
doc_md: "# Alpha"
params: {n: 3}
default_args: {retries: 2}
tasks:
  - {id: work, operator: empty}
"##;

const BETA: &str = r#"dag_id: beta_report
owner: bob
tags: [report]
tasks:
  - {id: work, operator: bash, with: {bash_command: "true"}}
"#;

const GAMMA: &str = r#"dag_id: gamma_etl
owner: alice
tags: [etl]
is_paused_upon_creation: false
tasks:
  - {id: work, operator: empty}
"#;

async fn three_dags(app: &TestApp) {
    write_dag(app, "alpha_etl", ALPHA).await;
    write_dag(app, "beta_report", BETA).await;
    write_dag(app, "gamma_etl", GAMMA).await;
}

fn ids(body: &Value) -> Vec<&str> {
    body["dags"]
        .as_array()
        .unwrap_or_else(|| panic!("dags is a list: {body}"))
        .iter()
        .map(|d| d["dag_id"].as_str().unwrap())
        .collect()
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `GET /api/v2/dags?{q}`.
async fn page(app: &TestApp, q: &str) -> (u16, Value) {
    app.get_json(&format!("/api/v2/dags?{q}")).await
}

fn detail(body: &Value) -> &str {
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("an error with a detail: {body}"))
}

db_test!(dag_list_filters_sorts_and_pages, |backend| async move {
    let app = spawn_app(backend).await;
    three_dags(&app).await;

    let (status, body) = app.get_json("/api/v2/dags").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_entries"], 3);
    assert_eq!(ids(&body), ["alpha_etl", "beta_report", "gamma_etl"]);
    let alpha = &body["dags"][0];
    for key in DAG_KEYS {
        assert!(alpha.get(key).is_some(), "{key} missing: {alpha}");
    }
    assert_eq!(alpha["timetable_summary"], "@daily");
    assert_eq!(alpha["timetable_description"], "At 00:00");
    assert_eq!(alpha["timetable_periodic"], true);
    assert_eq!(alpha["is_backfillable"], true);
    assert_eq!(alpha["owners"], json!(["alice"]));
    assert_eq!(alpha["relative_fileloc"], "alpha_etl.yaml");
    assert!(alpha["fileloc"]
        .as_str()
        .unwrap()
        .ends_with("/alpha_etl.yaml"));
    assert!(!alpha["file_token"].as_str().unwrap().is_empty());
    assert_eq!(
        alpha["tags"],
        json!([
            {"name": "etl", "dag_id": "alpha_etl", "dag_display_name": "alpha_etl"},
            {"name": "daily", "dag_id": "alpha_etl", "dag_display_name": "alpha_etl"},
        ])
    );
    assert!(alpha["next_dagrun_logical_date"].is_string() || alpha["is_paused"] == true);
    let beta = &body["dags"][1];
    assert!(beta["timetable_summary"].is_null());
    assert_eq!(beta["is_backfillable"], false);

    let (_, body) = page(&app, "limit=2&offset=1").await;
    assert_eq!(ids(&body), ["beta_report", "gamma_etl"]);
    assert_eq!(body["total_entries"], 3);
    let (_, body) = page(&app, "order_by=-dag_id&limit=1").await;
    assert_eq!(ids(&body), ["gamma_etl"]);
    let (_, body) = page(&app, "dag_id_pattern=ALPHA%7Cbeta").await;
    assert_eq!(ids(&body), ["alpha_etl", "beta_report"]);
    let (_, body) = page(&app, "dag_id_pattern=~").await;
    assert_eq!(body["total_entries"], 3);
    let (_, body) = page(&app, "dag_id_prefix_pattern=gam").await;
    assert_eq!(ids(&body), ["gamma_etl"]);
    let (_, body) = page(&app, "tags=etl").await;
    assert_eq!(ids(&body), ["alpha_etl", "gamma_etl"]);
    let (_, body) = page(&app, "tags=etl&tags=report").await;
    assert_eq!(body["total_entries"], 3);
    let (_, body) = page(&app, "tags=etl&tags=daily&tags_match_mode=all").await;
    assert_eq!(ids(&body), ["alpha_etl"]);
    let (_, body) = page(&app, "owners=bob").await;
    assert_eq!(ids(&body), ["beta_report"]);
    let (_, body) = page(&app, "paused=false").await;
    assert_eq!(ids(&body), ["gamma_etl"]);
    let (_, body) = page(&app, "paused=true&order_by=-next_dagrun").await;
    assert_eq!(body["total_entries"], 2);
    let (_, body) = page(&app, "timetable_type=NullTimetable").await;
    assert_eq!(ids(&body), ["beta_report", "gamma_etl"]);
    // What the official client may send and Updraft has nothing of.
    let (status, body) = page(&app,
        "is_favorite=false&has_asset_schedule=false&bundle_name=dags-folder&exclude_stale=true&order_by=last_run_state&whatever=1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_entries"], 3);
    let (_, body) = page(&app, "is_favorite=true").await;
    assert_eq!(body["total_entries"], 0);

    // A run makes last_dag_run_state and dag_run_state filters match.
    let run = trigger(&app, "gamma_etl", json!({})).await;
    wait_for_run(&app, "gamma_etl", &run_id_of(&run)).await;
    let (_, body) = page(&app, "last_dag_run_state=success").await;
    assert_eq!(ids(&body), ["gamma_etl"]);
    let (_, body) = page(&app, "dag_run_state=failed").await;
    assert_eq!(body["total_entries"], 0);
    let (_, body) = page(
        &app,
        "dag_run_start_date_gte=2000-01-01T00:00:00.000000%2B0000",
    )
    .await;
    assert_eq!(ids(&body), ["gamma_etl"]);
    let (_, body) = page(&app, "order_by=-last_run_start_date&limit=1").await;
    assert_eq!(ids(&body), ["alpha_etl"], "nulls first when descending");

    // Bad input: what to fix is in the detail.
    let (status, body) = page(&app, "order_by=colour").await;
    assert_eq!(status, 400);
    assert!(detail(&body).contains("colour"), "{body}");
    let (status, body) = page(&app, "tags_match_mode=some").await;
    assert_eq!(status, 422);
    assert!(detail(&body).contains("tags_match_mode"), "{body}");
    let (status, _) = page(&app, "limit=lots").await;
    assert_eq!(status, 422);
    let (status, body) = page(&app, "dag_run_start_date_gte=2024-01-01T00:00:00").await;
    assert_eq!(status, 422);
    assert!(detail(&body).contains("time zone"), "{body}");
    let (status, _) = page(&app, "last_dag_run_state=sleeping").await;
    assert_eq!(status, 422);

    let viewer = app.client_as(Role::Viewer).await;
    let (status, _) = send(viewer.get(app.url("/api/v2/dags"))).await;
    assert_eq!(status, 200);
    let (status, _) = send(app.anon.get(app.url("/api/v2/dags"))).await;
    assert_eq!(status, 401);

    // Tags, each once.
    let (status, body) = app.get_json("/api/v2/dagTags").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"tags": ["daily", "etl", "report"], "total_entries": 3})
    );
    let (_, body) = app
        .get_json("/api/v2/dagTags?tag_name_pattern=e&order_by=-name")
        .await;
    assert_eq!(body["tags"], json!(["report", "etl"]));
});

db_test!(dag_details_pause_and_audit, |backend| async move {
    let app = spawn_app(backend).await;
    three_dags(&app).await;

    let (status, dag) = app.get_json("/api/v2/dags/alpha_etl").await;
    assert_eq!(status, 200, "{dag}");
    assert_eq!(dag["dag_id"], "alpha_etl");
    assert_eq!(dag["is_paused"], true);
    assert_eq!(dag["description"], "Loads the warehouse");
    let (status, body) = app.get_json("/api/v2/dags/nope").await;
    assert_eq!(status, 404);
    assert!(detail(&body).contains("nope"), "{body}");

    let (status, d) = app.get_json("/api/v2/dags/alpha_etl/details").await;
    assert_eq!(status, 200, "{d}");
    for key in DAG_KEYS {
        assert!(d.get(key).is_some(), "{key} missing: {d}");
    }
    assert_eq!(d["catchup"], false);
    assert_eq!(d["concurrency"], 16);
    assert_eq!(d["render_template_as_native_obj"], false);
    assert_eq!(d["doc_md"], "# Alpha");
    assert_eq!(d["timezone"], "UTC");
    assert_eq!(
        utc(d["start_date"].as_str().unwrap()),
        utc("2024-01-01T00:00:00Z")
    );
    assert!(d["end_date"].is_null());
    assert_eq!(d["params"]["n"]["value"], 3);
    assert_eq!(d["default_args"]["retries"], 2);
    assert_eq!(d["active_runs_count"], 0);
    assert_eq!(d["is_favorite"], false);
    let version = &d["latest_dag_version"];
    assert_eq!(version["version_number"], 1);
    assert_eq!(version["dag_id"], "alpha_etl");
    assert!(
        uuid::Uuid::parse_str(version["id"].as_str().unwrap()).is_ok(),
        "{version}"
    );
    let (status, _) = app.get_json("/api/v2/dags/nope/details").await;
    assert_eq!(status, 404);

    // Unpause: the answer, the next GET and the audit log agree.
    let (status, body) = send(
        app.client
            .patch(app.url("/api/v2/dags/alpha_etl?update_mask=is_paused"))
            .json(&json!({"is_paused": false})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_paused"], false);
    let (_, dag) = app.get_json("/api/v2/dags/alpha_etl").await;
    assert_eq!(dag["is_paused"], false);
    let entries = audit_log::Entity::find()
        .filter(audit_log::Column::Event.eq("patch_dag"))
        .all(app.db.conn())
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].dag_id.as_deref(), Some("alpha_etl"));
    assert_eq!(entries[0].owner.as_deref(), Some(ADMIN_USER));
    assert!(entries[0].extra.as_deref().unwrap().contains("false"));

    let patch = |client: &reqwest::Client, path: &str, body: Value| {
        send(client.patch(app.url(path)).json(&body))
    };
    let (status, body) = patch(&app.client, "/api/v2/dags/nope", json!({"is_paused": true})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = patch(
        &app.client,
        "/api/v2/dags/alpha_etl?update_mask=description",
        json!({"is_paused": true}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(detail(&body).contains("is_paused"), "{body}");
    let (status, _) = patch(
        &app.client,
        "/api/v2/dags/alpha_etl",
        json!({"is_paused": "yes"}),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = patch(&app.client, "/api/v2/dags/alpha_etl", json!({})).await;
    assert_eq!(status, 422);
    let viewer = app.client_as(Role::Viewer).await;
    let (status, body) = patch(
        &viewer,
        "/api/v2/dags/alpha_etl",
        json!({"is_paused": true}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = patch(
        &app.anon,
        "/api/v2/dags/alpha_etl",
        json!({"is_paused": true}),
    )
    .await;
    assert_eq!(status, 401);
    let user = app.client_as(Role::User).await;
    let (status, _) = patch(
        &user,
        "/api/v2/dags/beta_report",
        json!({"is_paused": false}),
    )
    .await;
    assert_eq!(status, 200);

    // Bulk: every DAG matching the filters, the changed ones in the answer.
    let (status, body) = patch(
        &app.client,
        "/api/v2/dags?dag_id_pattern=etl",
        json!({"is_paused": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), ["alpha_etl", "gamma_etl"]);
    assert_eq!(body["total_entries"], 2);
    assert!(body["dags"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["is_paused"] == true));
    let (_, body) = app.get_json("/api/v2/dags?paused=true").await;
    assert_eq!(ids(&body), ["alpha_etl", "gamma_etl"]);
    let (status, body) = patch(
        &app.client,
        "/api/v2/dags?tags=report&update_mask=is_paused",
        json!({"is_paused": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), ["beta_report"]);
    let (status, _) = patch(
        &viewer,
        "/api/v2/dags?dag_id_pattern=~",
        json!({"is_paused": false}),
    )
    .await;
    assert_eq!(status, 403);
    let bulk = audit_log::Entity::find()
        .filter(audit_log::Column::Event.eq("patch_dags"))
        .count(app.db.conn())
        .await
        .unwrap();
    assert_eq!(bulk, 2);
});

db_test!(deleting_a_dag_removes_its_runs, |backend| async move {
    let app = spawn_app(backend).await;
    write_dag(&app, "gamma_etl", GAMMA).await;
    let run_id = run_id_of(&trigger(&app, "gamma_etl", json!({})).await);
    let run = wait_for_run(&app, "gamma_etl", &run_id).await;
    assert_eq!(run["state"], "success");

    let viewer = app.client_as(Role::Viewer).await;
    let (status, _) = send(viewer.delete(app.url("/api/v2/dags/gamma_etl"))).await;
    assert_eq!(status, 403);
    let (status, body) = send(app.client.delete(app.url("/api/v2/dags/nope"))).await;
    assert_eq!(status, 404, "{body}");

    // A running task instance blocks the delete, as in Airflow.
    let set_state = |s: &'static str| {
        task_instance::Entity::update_many()
            .col_expr(task_instance::Column::State, Expr::value(s))
            .filter(task_instance::Column::DagId.eq("gamma_etl"))
            .exec(app.db.conn())
    };
    set_state("running").await.unwrap();
    let (status, body) = send(app.client.delete(app.url("/api/v2/dags/gamma_etl"))).await;
    assert_eq!(status, 409, "{body}");
    assert!(detail(&body).contains("running"), "{body}");
    set_state("success").await.unwrap();

    let (status, body) = send(app.client.delete(app.url("/api/v2/dags/gamma_etl"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted_runs"], 1);
    assert!(detail(&body).contains("file"), "{body}");
    let (status, _) = app.get_json("/api/v2/dags/gamma_etl").await;
    assert_eq!(status, 404);
    let (status, _) = app.get_json(&run_path("gamma_etl", &run_id)).await;
    assert_eq!(status, 404);
    let runs = dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq("gamma_etl"))
        .count(app.db.conn())
        .await
        .unwrap();
    let tis = task_instance::Entity::find()
        .filter(task_instance::Column::DagId.eq("gamma_etl"))
        .count(app.db.conn())
        .await
        .unwrap();
    assert_eq!((runs, tis), (0, 0));
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Event.eq("delete_dag"))
        .count(app.db.conn())
        .await
        .unwrap();
    assert_eq!(audited, 1);
});

db_test!(import_errors_and_dag_sources, |backend| async move {
    let app = spawn_app(backend).await;
    write_dag(&app, "beta_report", BETA).await;
    write_dag_file(
        &app.config.dags_folder,
        "broken.yaml",
        "dag_id: broken\ntasks:\n  - {id: t, operator: nope}\n",
    );
    let started = Instant::now();
    let errors = loop {
        let (status, body) = app.get_json("/api/v2/importErrors").await;
        assert_eq!(status, 200, "{body}");
        if body["total_entries"] == 1 {
            break body;
        }
        assert!(started.elapsed() < PATIENCE, "no import error: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = &errors["import_errors"][0];
    assert_eq!(error["filename"], "broken.yaml");
    assert_eq!(error["bundle_name"], "dags-folder");
    assert!(error["timestamp"].is_string());
    let trace = error["stack_trace"].as_str().unwrap();
    assert!(trace.starts_with("broken.yaml:3:"), "{trace}");
    let id = error["import_error_id"].as_i64().unwrap();

    let (status, one) = app.get_json(&format!("/api/v2/importErrors/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(&one, error);
    let (status, body) = app.get_json("/api/v2/importErrors/999999").await;
    assert_eq!(status, 404);
    assert!(detail(&body).contains("999999"), "{body}");
    let (status, _) = app.get_json("/api/v2/importErrors/abc").await;
    assert_eq!(status, 422);
    let (_, body) = app
        .get_json("/api/v2/importErrors?filename_pattern=nothing")
        .await;
    assert_eq!(body["total_entries"], 0);
    let (_, body) = app
        .get_json("/api/v2/importErrors?filename_pattern=BROK&order_by=-timestamp&limit=5")
        .await;
    assert_eq!(body["total_entries"], 1);
    let (status, _) = app.get_json("/api/v2/importErrors?order_by=nope").await;
    assert_eq!(status, 400);
    let viewer = app.client_as(Role::Viewer).await;
    let (status, _) = send(viewer.get(app.url("/api/v2/importErrors"))).await;
    assert_eq!(status, 200);
    let (status, _) = send(app.anon.get(app.url("/api/v2/importErrors"))).await;
    assert_eq!(status, 401);

    // The source, as JSON and as text.
    let (status, src) = app.get_json("/api/v2/dagSources/beta_report").await;
    assert_eq!(status, 200, "{src}");
    assert_eq!(
        src,
        json!({"content": BETA, "dag_id": "beta_report", "version_number": 1, "dag_display_name": "beta_report"})
    );
    let res = app
        .client
        .get(app.url("/api/v2/dagSources/beta_report"))
        .header("Accept", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(res.text().await.unwrap(), BETA);
    let (status, _) = app
        .get_json("/api/v2/dagSources/beta_report?version_number=1")
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .get_json("/api/v2/dagSources/beta_report?version_number=7")
        .await;
    assert_eq!(status, 404);
    assert!(detail(&body).contains("version_number 7"), "{body}");
    let (status, _) = app.get_json("/api/v2/dagSources/nope").await;
    assert_eq!(status, 404);
    let (status, _) = send(app.anon.get(app.url("/api/v2/dagSources/beta_report"))).await;
    assert_eq!(status, 401);
});
