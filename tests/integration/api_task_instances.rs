//! Task instances through the API: listing with filters, getting one, its tries, marking by
//! hand and clearing, with Airflow 3's paths, fields and status codes.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use updraft::auth::Role;

use crate::db_test;
use crate::engine_helpers::*;
use crate::helpers::*;

/// Every key of Airflow's `TaskInstanceResponse`.
const TI_KEYS: &[&str] = &[
    "dag_display_name",
    "dag_id",
    "dag_run_id",
    "dag_version",
    "duration",
    "end_date",
    "executor",
    "executor_config",
    "hostname",
    "id",
    "logical_date",
    "map_index",
    "max_tries",
    "note",
    "operator",
    "operator_name",
    "pid",
    "pool",
    "pool_slots",
    "priority_weight",
    "queue",
    "queued_when",
    "rendered_fields",
    "rendered_map_index",
    "run_after",
    "scheduled_when",
    "start_date",
    "state",
    "task_display_name",
    "task_id",
    "trigger",
    "triggerer_job",
    "try_number",
    "unixname",
];

fn tis_path(dag_id: &str, run_id: &str) -> String {
    format!("{}/taskInstances", run_path(dag_id, run_id))
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn task_ids(body: &Value) -> Vec<String> {
    body["task_instances"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of task instances: {body}"))
        .iter()
        .map(|t| t["task_id"].as_str().unwrap().to_string())
        .collect()
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

/// Waits until `check` holds for the run's task instances.
async fn wait_for_tis(
    app: &TestApp,
    dag_id: &str,
    run_id: &str,
    what: &str,
    check: impl Fn(&std::collections::BTreeMap<String, Value>) -> bool,
) {
    let started = Instant::now();
    loop {
        let tis = task_instances(app, dag_id, run_id).await;
        if check(&tis) {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "{what}: {tis:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

db_test!(
    lists_filter_sort_and_page_task_instances,
    |backend| async move {
        let app = spawn_app(backend).await;
        let yaml = "dag_id: listing\nis_paused_upon_creation: false\ntasks:\n  - {id: a, operator: empty}\n  - {id: b, operator: empty, depends_on: [a]}\n  - {id: c, operator: empty}\n";
        write_dag(&app, "listing", yaml).await;
        let first = run_id_of(
            &trigger(
                &app,
                "listing",
                json!({"logical_date": "2024-01-01T00:00:00Z"}),
            )
            .await,
        );
        let second = run_id_of(
            &trigger(
                &app,
                "listing",
                json!({"logical_date": "2024-02-01T00:00:00Z"}),
            )
            .await,
        );
        wait_for_run(&app, "listing", &first).await;
        wait_for_run(&app, "listing", &second).await;

        // One run: Airflow's keys, a UUID id, the DAG version, sorted by map_index then id.
        let (status, body) = app.get_json(&tis_path("listing", &first)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_entries"], 3, "{body}");
        assert_eq!(task_ids(&body), ["a", "b", "c"]);
        let a = &body["task_instances"][0];
        let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
        for key in TI_KEYS {
            assert!(keys.contains(key), "{key} missing: {a}");
        }
        assert!(
            uuid::Uuid::parse_str(a["id"].as_str().unwrap()).is_ok(),
            "{a}"
        );
        assert_eq!(a["dag_display_name"], "listing");
        assert_eq!(a["task_display_name"], "a");
        assert_eq!(a["executor_config"], "{}");
        assert_eq!(a["state"], "success");
        assert_eq!(a["try_number"], 1);
        assert_eq!(a["map_index"], -1);
        assert_eq!(a["logical_date"], "2024-01-01T00:00:00Z");
        assert_eq!(a["dag_version"]["version_number"], 1, "{a}");
        assert!(uuid::Uuid::parse_str(a["dag_version"]["id"].as_str().unwrap()).is_ok());
        assert!(a["rendered_fields"].is_object(), "{a}");
        assert_eq!(a["operator"], "EmptyOperator");

        // Sorting and pages.
        let path = tis_path("listing", &first);
        let (_, body) = app.get_json(&format!("{path}?order_by=-task_id")).await;
        assert_eq!(task_ids(&body), ["c", "b", "a"]);
        let (_, body) = app
            .get_json(&format!("{path}?order_by=task_id&limit=2&offset=1"))
            .await;
        assert_eq!(task_ids(&body), ["b", "c"]);
        assert_eq!(body["total_entries"], 3);

        // `~` for the DAG and the run, with filters as the client sends them.
        let all = "/api/v2/dags/~/dagRuns/~/taskInstances";
        let (status, body) = app.get_json(all).await;
        assert_eq!(
            (status, body["total_entries"].as_i64()),
            (200, Some(6)),
            "{body}"
        );
        let (_, body) = app.get_json(&format!("{all}?state=success")).await;
        assert_eq!(body["total_entries"], 6, "{body}");
        let (_, body) = app
            .get_json(&format!("{all}?state=failed&state=no_status"))
            .await;
        assert_eq!(body["total_entries"], 0, "{body}");
        let (_, body) = app.get_json(&format!("{all}?task_id=a")).await;
        assert_eq!(task_ids(&body), ["a", "a"]);
        let (_, body) = app
            .get_json(&format!(
                "{all}?task_display_name_pattern=A|b&order_by=-logical_date&order_by=task_id"
            ))
            .await;
        assert_eq!(task_ids(&body), ["a", "b", "a", "b"]);
        assert_eq!(body["task_instances"][0]["dag_run_id"], second.as_str());
        let (_, body) = app
            .get_json(&format!(
                "{all}?logical_date_gte=2024-01-15T00:00:00.000000%2B0000"
            ))
            .await;
        assert_eq!(body["total_entries"], 3, "{body}");
        let (_, body) = app
            .get_json(&format!("{all}?start_date_gte=2999-01-01T00:00:00Z"))
            .await;
        assert_eq!(body["total_entries"], 0, "{body}");
        let (_, body) = app
            .get_json(&format!(
                "{all}?version_number=1&try_number=1&pool=default_pool&operator=EmptyOperator&duration_gte=0"
            ))
            .await;
        assert_eq!(body["total_entries"], 6, "{body}");
        let (_, body) = app
            .get_json(&format!(
                "/api/v2/dags/~/dagRuns/{}/taskInstances",
                encode_segment(&second)
            ))
            .await;
        assert_eq!(body["total_entries"], 3, "{body}");
        let (_, body) = app
            .get_json("/api/v2/dags/listing/dagRuns/~/taskInstances?limit=1")
            .await;
        assert_eq!(
            (body["total_entries"].as_i64(), task_ids(&body).len()),
            (Some(6), 1)
        );

        // The batch list: the same filters in a body.
        let batch = app.url("/api/v2/dags/~/dagRuns/~/taskInstances/list");
        let (status, body) = send(app.client.post(&batch).json(&json!({
            "dag_ids": ["listing"], "task_ids": ["a", "c"], "order_by": "-run_after", "page_limit": 1
        })))
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_entries"], 4, "{body}");
        assert_eq!(body["task_instances"][0]["dag_run_id"], second.as_str());
        let (_, body) = send(app.client.post(&batch).json(&json!({"state": [null]}))).await;
        assert_eq!(body["total_entries"], 0, "{body}");
        let (_, body) = send(app.client.post(&batch).json(&json!({
            "dag_run_ids": [first], "state": ["success"], "logical_date_lte": "2024-01-01T00:00:00+00:00"
        })))
        .await;
        assert_eq!(body["total_entries"], 3, "{body}");
        let (status, body) = send(app.client.post(&batch).json(&json!({"state": ["bogus"]}))).await;
        assert_eq!(status, 422, "{body}");
        let (status, body) = send(app.client.post(&batch).json(&json!({"nope": 1}))).await;
        assert_eq!(status, 422, "{body}");

        // One task instance, also by map index; the id is the list's.
        let (status, one) = app.get_json(&format!("{path}/a")).await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["id"], a["id"]);
        assert_eq!(one["task_id"], "a");
        let (status, mapped) = app.get_json(&format!("{path}/a/-1")).await;
        assert_eq!((status, &mapped["id"]), (200, &a["id"]), "{mapped}");

        // Unknown names: 404 with what was looked for.
        let (status, body) = app.get_json(&tis_path("nope", &first)).await;
        assert_eq!(status, 404, "{body}");
        assert!(detail(&body).contains("nope"), "{body}");
        let (status, body) = app.get_json(&tis_path("listing", "no_such_run")).await;
        assert_eq!(status, 404, "{body}");
        assert!(detail(&body).contains("no_such_run"), "{body}");
        let (status, body) = app.get_json(&format!("{path}/zzz")).await;
        assert_eq!(status, 404, "{body}");
        assert!(detail(&body).contains("zzz"), "{body}");
        let (status, _) = app.get_json(&format!("{path}/a/3")).await;
        assert_eq!(status, 404);

        // Bad input: 4xx saying what to fix.
        let (status, body) = app.get_json(&format!("{path}?state=bogus")).await;
        assert_eq!(status, 422, "{body}");
        assert!(detail(&body).contains("bogus"), "{body}");
        let (status, body) = app.get_json(&format!("{path}?order_by=nope")).await;
        assert_eq!(status, 400, "{body}");
        assert!(detail(&body).contains("nope"), "{body}");
        let (status, body) = app
            .get_json(&format!("{path}?start_date_gte=2024-01-01T00:00:00"))
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(detail(&body).contains("time zone"), "{body}");
        let (status, body) = app.get_json(&format!("{path}?limit=many")).await;
        assert_eq!(status, 422, "{body}");

        // Who may read.
        let res = app.anon.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 401);
        let viewer = app.client_as(Role::Viewer).await;
        let (status, body) = send(viewer.get(app.url(&path))).await;
        assert_eq!(status, 200, "{body}");
        let (status, _) = send(viewer.post(&batch).json(&json!({}))).await;
        assert_eq!(status, 200);
    }
);

db_test!(tries_show_each_finished_try, |backend| async move {
    let app = spawn_app(backend).await;
    let marks = tempfile::tempdir().expect("temp dir");
    let marker = marks.path().join("failed_once");
    let yaml = format!(
        "dag_id: tries\nis_paused_upon_creation: false\ntasks:\n  - id: flaky\n    operator: bash\n    retries: 1\n    retry_delay: 0s\n    with: {{bash_command: \"test -f {m} || {{ touch {m}; exit 1; }}\"}}\n",
        m = marker.display()
    );
    write_dag(&app, "tries", &yaml).await;
    let run_id = run_id_of(&trigger(&app, "tries", json!({})).await);
    let run = wait_for_run(&app, "tries", &run_id).await;
    assert_eq!(run["state"], "success", "{run}");

    let path = format!("{}/flaky", tis_path("tries", &run_id));
    let (status, body) = app.get_json(&format!("{path}/tries")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_entries"], 2, "{body}");
    let tries = body["task_instances"].as_array().unwrap();
    assert_eq!(tries[0]["try_number"], 1);
    assert_eq!(tries[0]["state"], "failed");
    assert_eq!(tries[1]["try_number"], 2);
    assert_eq!(tries[1]["state"], "success");
    assert_eq!(tries[1]["executor_config"], "{}");
    assert_eq!(tries[1]["dag_version"]["version_number"], 1);
    let (status, mapped) = app.get_json(&format!("{path}/-1/tries")).await;
    assert_eq!((status, &mapped), (200, &body));

    let (status, one) = app.get_json(&format!("{path}/tries/1")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        (one["try_number"].as_i64(), one["state"].as_str()),
        (Some(1), Some("failed"))
    );
    let (status, one) = app
        .get_json(&format!("{path}/-1/tries/2?map_index=-1"))
        .await;
    assert_eq!(
        (status, one["state"].as_str()),
        (200, Some("success")),
        "{one}"
    );
    let (status, body) = app.get_json(&format!("{path}/tries/3")).await;
    assert_eq!(status, 404, "{body}");
    assert!(detail(&body).contains("try_number: `3`"), "{body}");
    let (status, _) = app
        .get_json(&format!("{}/nope/tries", tis_path("tries", &run_id)))
        .await;
    assert_eq!(status, 404);
    let res = app
        .anon
        .get(app.url(&format!("{path}/tries")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
});

db_test!(
    marking_a_running_task_success_with_downstream_finishes_the_run,
    |backend| async move {
        let app = spawn_app(backend).await;
        let yaml = "dag_id: marking\nis_paused_upon_creation: false\ntasks:\n  - {id: slow, operator: bash, with: {bash_command: \"sleep 60\"}}\n  - {id: after, operator: bash, depends_on: [slow], with: {bash_command: \"exit 1\"}}\n  - {id: last, operator: empty, depends_on: [after]}\n  - {id: other, operator: empty}\n";
        write_dag(&app, "marking", yaml).await;
        let run_id = run_id_of(&trigger(&app, "marking", json!({})).await);
        wait_for_tis(&app, "marking", &run_id, "slow runs", |tis| {
            state(&tis["slow"]) == "running"
        })
        .await;
        let path = format!("{}/slow", tis_path("marking", &run_id));
        let mark = json!({"new_state": "success", "include_downstream": true});

        // A dry run says what would change and changes nothing.
        let (status, body) = send(
            app.client
                .patch(app.url(&format!("{path}/dry_run")))
                .json(&mark),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(task_ids(&body), ["slow", "after", "last"]);
        assert_eq!(body["total_entries"], 3);
        assert_eq!(body["task_instances"][0]["state"], "running");
        let (status, body) = send(
            app.client
                .patch(app.url(&format!("{path}/-1/dry_run")))
                .json(&mark),
        )
        .await;
        assert_eq!(
            (status, body["total_entries"].as_i64()),
            (200, Some(3)),
            "{body}"
        );
        let tis = task_instances(&app, "marking", &run_id).await;
        assert_eq!(state(&tis["slow"]), "running");
        assert_eq!(state(&tis["after"]), "none");

        // Viewers may not mark; bad states are refused.
        let viewer = app.client_as(Role::Viewer).await;
        let (status, body) = send(viewer.patch(app.url(&path)).json(&mark)).await;
        assert_eq!(status, 403, "{body}");
        let (status, _) = send(
            viewer
                .patch(app.url(&format!("{path}/dry_run")))
                .json(&mark),
        )
        .await;
        assert_eq!(status, 403);
        let res = app
            .anon
            .patch(app.url(&path))
            .json(&mark)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let (status, body) = send(
            app.client
                .patch(app.url(&path))
                .json(&json!({"new_state": "running"})),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert!(detail(&body).contains("success"), "{body}");
        let (status, body) = send(
            app.client
                .patch(app.url(&path))
                .json(&json!({"new_state": null})),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        let (status, body) = send(
            app.client
                .patch(app.url(&path))
                .json(&json!({"new_state": 1})),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        let (status, body) = send(
            app.client
                .patch(app.url(&format!("{}/nope", tis_path("marking", &run_id))))
                .json(&mark),
        )
        .await;
        assert_eq!(status, 404, "{body}");

        // Marked: the running try stops, downstream tasks are success, the run ends at once.
        let started = Instant::now();
        let (status, body) = send(app.client.patch(app.url(&path)).json(&mark)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(task_ids(&body), ["slow", "after", "last"]);
        for ti in body["task_instances"].as_array().unwrap() {
            assert_eq!(ti["state"], "success", "{ti}");
            assert!(ti["end_date"].is_string(), "{ti}");
        }
        let run = wait_for_run(&app, "marking", &run_id).await;
        assert_eq!(run["state"], "success", "{run}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sleep was not stopped"
        );
        let tis = task_instances(&app, "marking", &run_id).await;
        assert_eq!(state(&tis["other"]), "success");
        let (_, tries) = app.get_json(&format!("{path}/tries")).await;
        assert_eq!(tries["total_entries"], 1, "{tries}");
        assert_eq!(tries["task_instances"][0]["state"], "success");

        // Marking again: Airflow's 409. A note alone sets the note.
        let (status, body) = send(app.client.patch(app.url(&path)).json(&mark)).await;
        assert_eq!(status, 409, "{body}");
        let (status, body) = send(
            app.client
                .patch(app.url(&format!("{path}?update_mask=note")))
                .json(&json!({"note": "looked at it", "new_state": "failed"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(task_ids(&body), ["slow"]);
        assert_eq!(body["task_instances"][0]["note"], "looked at it");
        assert_eq!(body["task_instances"][0]["state"], "success");
        let (status, body) = send(
            app.client
                .patch(app.url(&path))
                .json(&json!({"note": "x".repeat(1001)})),
        )
        .await;
        assert_eq!(status, 422, "{body}");

        // Marking a task failed in a finished run, then success: its failed downstream task
        // is cleared and runs again (it fails: `exit 1`), and the run with it.
        let after = format!("{}/after", tis_path("marking", &run_id));
        let (status, body) = send(
            app.client
                .patch(app.url(&after))
                .json(&json!({"new_state": "failed"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(task_ids(&body), ["after"]);
        let (status, body) = send(
            app.client
                .patch(app.url(&format!("{path}/-1")))
                .json(&json!({"new_state": "skipped"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["task_instances"][0]["state"], "skipped");
        let run = wait_for_run(&app, "marking", &run_id).await;
        let tis = task_instances(&app, "marking", &run_id).await;
        // `after` ran again: a skipped upstream skips it (all_success).
        assert_eq!(state(&tis["after"]), "skipped", "{tis:#?}");
        assert_eq!(run["state"], "success", "{run}");
    }
);

db_test!(clearing_a_failed_task_runs_it_again, |backend| async move {
    let app = spawn_app(backend).await;
    let marks = tempfile::tempdir().expect("temp dir");
    let marker = marks.path().join("failed_once");
    let yaml = format!(
        "dag_id: clearing\nis_paused_upon_creation: false\ntasks:\n  - id: flip\n    operator: bash\n    with: {{bash_command: \"echo try; test -f {m} || {{ touch {m}; exit 1; }}\"}}\n  - {{id: after, operator: empty, depends_on: [flip]}}\n  - {{id: fine, operator: empty}}\n",
        m = marker.display()
    );
    write_dag(&app, "clearing", &yaml).await;
    let run_id = run_id_of(&trigger(&app, "clearing", json!({})).await);
    let run = wait_for_run(&app, "clearing", &run_id).await;
    assert_eq!(run["state"], "failed", "{run}");
    let url = app.url("/api/v2/dags/clearing/clearTaskInstances");

    // The default is a dry run of the failed ones.
    let (status, body) = send(app.client.post(&url).json(&json!({"dag_run_id": run_id}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(task_ids(&body), ["flip", "after"]);
    assert_eq!(body["task_instances"][0]["state"], "failed");
    let (_, body) = send(
        app.client
            .post(&url)
            .json(&json!({"only_failed": false, "task_ids": ["fine"]})),
    )
    .await;
    assert_eq!(task_ids(&body), ["fine"]);
    let (_, body) = send(
        app.client
            .post(&url)
            .json(&json!({"task_ids": [["flip", -1]], "include_downstream": true})),
    )
    .await;
    assert_eq!(task_ids(&body), ["flip", "after"]);
    assert_eq!(get_run(&app, "clearing", &run_id).await["state"], "failed");

    // Refused: viewers, anonymous, unknown names, bad values.
    let viewer = app.client_as(Role::Viewer).await;
    let real = json!({"dry_run": false, "dag_run_id": run_id, "task_ids": ["flip"], "include_downstream": true});
    let (status, _) = send(viewer.post(&url).json(&real)).await;
    assert_eq!(status, 403);
    let res = app.anon.post(&url).json(&real).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let (status, body) = send(
        app.client
            .post(app.url("/api/v2/dags/nope/clearTaskInstances"))
            .json(&real),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = send(app.client.post(&url).json(&json!({"dag_run_id": "nope"}))).await;
    assert_eq!(status, 404, "{body}");
    assert!(detail(&body).contains("nope"), "{body}");
    let (status, body) = send(app.client.post(&url).json(&json!({"task_ids": ["ghost"]}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(detail(&body).contains("ghost"), "{body}");
    let (status, body) = send(
        app.client
            .post(&url)
            .json(&json!({"start_date": "2024-01-01T00:00:00"})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = send(app.client.post(&url).json(&json!({"dry_run": "yes"}))).await;
    assert_eq!(status, 422, "{body}");

    // Cleared: the run is queued again, the task runs its second try and the run succeeds.
    let (status, body) = send(app.client.post(&url).json(&real)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(task_ids(&body), ["flip", "after"]);
    assert_ne!(body["task_instances"][0]["state"], "failed", "{body}");
    let run = wait_for_run(&app, "clearing", &run_id).await;
    assert_eq!(run["state"], "success", "{run}");
    let tis = task_instances(&app, "clearing", &run_id).await;
    assert_eq!(state(&tis["flip"]), "success");
    assert_eq!(tis["flip"]["try_number"], 2, "{}", tis["flip"]);
    assert_eq!(tis["flip"]["max_tries"], 1, "{}", tis["flip"]);
    assert_eq!(state(&tis["after"]), "success");
    assert_eq!(tis["fine"]["try_number"], 1, "not cleared");
    let (_, tries) = app
        .get_json(&format!("{}/flip/tries", tis_path("clearing", &run_id)))
        .await;
    let states: Vec<&str> = tries["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(states, ["failed", "success"], "{tries}");
    // Each try keeps its own log.
    assert!(task_log(&app, "clearing", &run_id, "flip", 1).contains("try"));
    assert!(task_log(&app, "clearing", &run_id, "flip", 2).contains("try"));

    // Nothing failed any more: nothing to clear.
    let (status, body) = send(app.client.post(&url).json(&json!({"dry_run": false}))).await;
    assert_eq!(
        (status, body["total_entries"].as_i64()),
        (200, Some(0)),
        "{body}"
    );
});

db_test!(clearing_a_running_task_restarts_it, |backend| async move {
    let app = spawn_app(backend).await;
    let marks = tempfile::tempdir().expect("temp dir");
    let marker = marks.path().join("started_once");
    let yaml = format!(
        "dag_id: restart\nis_paused_upon_creation: false\ntasks:\n  - id: long\n    operator: bash\n    with: {{bash_command: \"test -f {m} || {{ touch {m}; sleep 60; }}\"}}\n",
        m = marker.display()
    );
    write_dag(&app, "restart", &yaml).await;
    let run_id = run_id_of(&trigger(&app, "restart", json!({})).await);
    wait_for_tis(&app, "restart", &run_id, "long runs", |tis| {
        state(&tis["long"]) == "running"
    })
    .await;
    // Running in the database comes before the process started: wait for its marker, or a
    // first try stopped early would leave none and the second would sleep too.
    let waited = Instant::now();
    while !marker.exists() {
        assert!(waited.elapsed() < PATIENCE, "the first try never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = app.url("/api/v2/dags/restart/clearTaskInstances");
    let (status, body) = send(app.client.post(&url).json(&json!({
        "dry_run": false, "only_failed": false, "only_running": true, "prevent_running_task": true
    })))
    .await;
    assert_eq!(status, 400, "{body}");
    let started = Instant::now();
    let (status, body) = send(app.client.post(&url).json(&json!({
        "dry_run": false, "only_failed": false, "only_running": true
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(task_ids(&body), ["long"]);
    let run = wait_for_run(&app, "restart", &run_id).await;
    assert_eq!(run["state"], "success", "{run}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the first try was not stopped"
    );
    let tis = task_instances(&app, "restart", &run_id).await;
    assert_eq!(tis["long"]["try_number"], 2, "{}", tis["long"]);
    let (_, tries) = app
        .get_json(&format!("{}/long/tries", tis_path("restart", &run_id)))
        .await;
    assert_eq!(tries["total_entries"], 2, "{tries}");
    assert_eq!(tries["task_instances"][0]["state"], "failed", "{tries}");
});

// A crash between a clear and the release of a `restarting` task instance must not strand it:
// after the lease timeout the scheduler releases it and the task runs again.
db_test!(
    a_stranded_restarting_task_instance_runs_again,
    |backend| async move {
        use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
        use updraft::store::entities::{dag_run, task_instance};
        let app = spawn_app(backend).await;
        write_dag(
        &app,
        "stranded",
        "dag_id: stranded\nis_paused_upon_creation: false\ntasks:\n  - {id: t, operator: bash, with: {bash_command: 'true'}}\n",
    )
    .await;
        let run_id = run_id_of(&trigger(&app, "stranded", json!({})).await);
        assert_eq!(
            wait_for_run(&app, "stranded", &run_id).await["state"],
            "success"
        );
        // What a clear leaves behind if the server dies before releasing the task instance.
        let long_ago = chrono::Utc::now() - chrono::Duration::hours(1);
        task_instance::Entity::update_many()
            .col_expr(task_instance::Column::State, Expr::value("restarting"))
            .col_expr(task_instance::Column::UpdatedAt, Expr::value(long_ago))
            .filter(task_instance::Column::DagId.eq("stranded"))
            .exec(app.db.conn())
            .await
            .unwrap();
        dag_run::Entity::update_many()
            .col_expr(dag_run::Column::State, Expr::value("running"))
            .col_expr(
                dag_run::Column::EndDate,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(dag_run::Column::DagId.eq("stranded"))
            .exec(app.db.conn())
            .await
            .unwrap();
        app.engine.signals.wake_scheduler();
        let run = wait_for_run(&app, "stranded", &run_id).await;
        assert_eq!(run["state"], "success", "{run}");
        let tis = task_instances(&app, "stranded", &run_id).await;
        assert_eq!(tis["t"]["try_number"], 2, "{}", tis["t"]);
    }
);
