//! Task logs (JSON pages with continuation tokens, NDJSON, the live SSE tail) and XCom
//! entries through the API, as Airflow's client calls them.

use std::time::{Duration, Instant};

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{json, Value};
use updraft::auth::Role;
use updraft::store::entities::{audit_log, connection};

use crate::db_test;
use crate::engine_helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// Helpers

fn log_url(app: &TestApp, dag_id: &str, run_id: &str, task_id: &str, attempt: u32) -> String {
    app.url(&format!(
        "{}/taskInstances/{task_id}/logs/{attempt}",
        run_path(dag_id, run_id)
    ))
}

/// `GET .../logs/{try}` as JSON: (status, body).
async fn get_log(app: &TestApp, url: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .client
        .get(url)
        .header("Accept", "application/json")
        .query(query)
        .send()
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON body"))
}

/// The `event` texts of a JSON log answer, checking each message's shape.
fn events(body: &Value) -> Vec<String> {
    body["content"]
        .as_array()
        .unwrap_or_else(|| panic!("content is a list: {body}"))
        .iter()
        .map(|m| {
            let stamp = m["timestamp"]
                .as_str()
                .unwrap_or_else(|| panic!("a line has a timestamp: {m}"));
            utc(stamp);
            m["event"]
                .as_str()
                .unwrap_or_else(|| panic!("a line has an event: {m}"))
                .to_string()
        })
        .collect()
}

fn count(lines: &[String], text: &str) -> usize {
    lines.iter().filter(|l| l.as_str() == text).count()
}

/// Reads a Server-Sent Events response until `event: end` (or `until` shows up in the text);
/// returns what arrived so far.
async fn read_sse(res: &mut reqwest::Response, seen: &mut String, until: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !seen.contains(until) {
        assert!(
            Instant::now() < deadline,
            "no {until:?} in the stream: {seen}"
        );
        match tokio::time::timeout(Duration::from_secs(30), res.chunk()).await {
            Ok(Ok(Some(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => panic!("the stream ended before {until:?}: {seen}"),
            other => panic!("reading the stream failed ({other:?}): {seen}"),
        }
    }
}

/// The `event: log` messages of an SSE text, in order.
fn sse_events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|block| block.lines().any(|l| l == "event: log"))
        .map(|block| {
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("an event has data: {block}"));
            let m: Value = serde_json::from_str(data).expect("data is JSON");
            utc(m["timestamp"].as_str().expect("a timestamp"));
            m["event"].as_str().expect("an event").to_string()
        })
        .collect()
}

async fn ndjson_events(app: &TestApp, url: &str) -> Vec<String> {
    let res = app
        .client
        .get(url)
        .header("Accept", "application/x-ndjson")
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status(), 200);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("application/x-ndjson"), "{ctype}");
    let text = res.text().await.unwrap();
    text.lines()
        .map(|line| {
            let m: Value = serde_json::from_str(line).expect("one JSON object per line");
            utc(m["timestamp"].as_str().expect("a timestamp"));
            m["event"].as_str().expect("an event").to_string()
        })
        .collect()
}

async fn open_sse(app: &TestApp, url: &str) -> reqwest::Response {
    let res = app
        .client
        .get(format!("{url}/stream"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status(), 200);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    res
}

async fn add_secret_connection(app: &TestApp) {
    connection::ActiveModel {
        conn_id: Set("db".into()),
        conn_type: Set("postgres".into()),
        description: Set(None),
        host: Set(Some("db.example.com".into())),
        schema: Set(None),
        login: Set(Some("reader".into())),
        password: Set(Some("s3cret-Passw0rd".into())),
        port: Set(None),
        extra: Set(None),
        is_encrypted: Set(false),
        is_extra_encrypted: Set(false),
        ..Default::default()
    }
    .insert(app.db.conn())
    .await
    .expect("insert the connection");
}

// ---------------------------------------------------------------------------------------------
// Logs

// A finished try reads the same, masked, as JSON, NDJSON and SSE; bad tries are 404s.
db_test!(
    a_finished_log_reads_the_same_as_json_ndjson_and_stream,
    |backend| async move {
        let app = spawn_app(backend).await;
        add_secret_connection(&app).await;
        write_dag(
            &app,
            "logs",
            "dag_id: logs\nis_paused_upon_creation: false\ntasks:\n  - id: lines\n    operator: bash\n    with:\n      bash_command: \"echo first; echo pw={{ conn.db.password }}; echo third\"\n",
        )
        .await;
        let run = trigger(&app, "logs", json!({"dag_run_id": "r1"})).await;
        let run_id = run_id_of(&run);
        let run = wait_for_run(&app, "logs", &run_id).await;
        assert_eq!(run["state"], "success", "{run}");
        let url = log_url(&app, "logs", &run_id, "lines", 1);

        let (status, body) = get_log(&app, &url, &[]).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body["continuation_token"].is_null(),
            "finished and read: {body}"
        );
        let json_lines = events(&body);
        for text in ["first", "pw=***", "third"] {
            assert_eq!(count(&json_lines, text), 1, "{text}: {json_lines:#?}");
        }
        assert!(!body.to_string().contains("s3cret"), "{body}");
        // No Accept header at all is JSON too; full_content reads the same.
        let res = app
            .client
            .get(&url)
            .query(&[("full_content", "true")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let full: Value = res.json().await.unwrap();
        assert_eq!(events(&full), json_lines);

        let nd = ndjson_events(&app, &url).await;
        assert_eq!(nd, json_lines);

        let mut sse = open_sse(&app, &url).await;
        let mut seen = String::new();
        read_sse(&mut sse, &mut seen, "event: end").await;
        assert_eq!(sse_events(&seen), json_lines);
        assert!(!seen.contains("s3cret"), "{seen}");

        // A token the API did not issue is refused.
        let (status, body) = get_log(&app, &url, &[("token", "bm90LWEtdG9rZW4")]).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("token"), "{body}");

        for (task, attempt, why) in [
            ("lines", 0, "no try 1"),
            ("lines", 9, "try 9"),
            ("nope", 1, "unknown task"),
        ] {
            let (status, body) =
                get_log(&app, &log_url(&app, "logs", &run_id, task, attempt), &[]).await;
            assert_eq!(status, 404, "{why}: {body}");
            assert!(
                body["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{body}"
            );
        }
        let (status, body) = get_log(&app, &log_url(&app, "logs", "nope", "lines", 1), &[]).await;
        assert_eq!(status, 404, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("nope"), "{body}");
        let (status, _) = get_log(&app, &log_url(&app, "ghost", &run_id, "lines", 1), &[]).await;
        assert_eq!(status, 404);
        let res = app
            .client
            .get(format!(
                "{}/stream",
                log_url(&app, "logs", &run_id, "lines", 9)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);

        for target in [url.clone(), format!("{url}/stream")] {
            let res = app.anon.get(&target).send().await.unwrap();
            assert_eq!(res.status(), 401, "{target}");
        }
        let viewer = app.client_as(Role::Viewer).await;
        let res = viewer.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "a Viewer reads logs");
    }
);

// A try that is still writing: JSON polling with the token and the SSE tail both see every
// line once, and both end once the try is over.
db_test!(
    a_running_log_is_followed_with_tokens_and_the_stream,
    |backend| async move {
        let app = spawn_app(backend).await;
        add_secret_connection(&app).await;
        let gate = app.home.path().join("gate");
        write_dag(
            &app,
            "tail",
            &format!(
                "dag_id: tail\nis_paused_upon_creation: false\ntasks:\n  - id: slow\n    operator: bash\n    with:\n      bash_command: \"echo before; echo pw={{{{ conn.db.password }}}}; while [ ! -f {} ]; do sleep 0.05; done; echo after\"\n",
                gate.display()
            ),
        )
        .await;
        let run = trigger(&app, "tail", json!({"dag_run_id": "t1"})).await;
        let run_id = run_id_of(&run);
        let url = log_url(&app, "tail", &run_id, "slow", 1);

        // Poll with the token until the first lines are there (the try may not exist yet).
        let mut token: Option<String> = None;
        let mut polled: Vec<String> = Vec::new();
        let started = Instant::now();
        while !polled.iter().any(|l| l == "before") {
            assert!(
                started.elapsed() < PATIENCE,
                "no 'before' line: {polled:#?}"
            );
            let query: Vec<(&str, &str)> = token.iter().map(|t| ("token", t.as_str())).collect();
            let (status, body) = get_log(&app, &url, &query).await;
            if status == 404 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert_eq!(status, 200, "{body}");
            polled.extend(events(&body));
            token = Some(
                body["continuation_token"]
                    .as_str()
                    .unwrap_or_else(|| panic!("the try still runs: a token: {body}"))
                    .to_string(),
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let before_gate = polled.len();
        // With the token nothing is repeated while the task waits.
        let (status, body) = get_log(&app, &url, &[("token", token.as_deref().unwrap())]).await;
        assert_eq!(status, 200);
        assert!(events(&body).is_empty() || !events(&body).contains(&"before".to_string()));
        polled.extend(events(&body));
        token = body["continuation_token"].as_str().map(str::to_string);
        assert!(token.is_some(), "{body}");

        let mut sse = open_sse(&app, &url).await;
        let mut seen = String::new();
        read_sse(&mut sse, &mut seen, "pw=***").await;
        assert!(!seen.contains("event: end"), "the try still runs: {seen}");
        let mut nd = ndjson_events(&app, &url).await;
        assert!(nd.contains(&"before".to_string()), "{nd:#?}");

        std::fs::write(&gate, "go").unwrap();
        while let Some(t) = token.clone() {
            assert!(
                started.elapsed() < PATIENCE,
                "the log did not end: {polled:#?}"
            );
            let (status, body) = get_log(&app, &url, &[("token", t.as_str())]).await;
            assert_eq!(status, 200, "{body}");
            polled.extend(events(&body));
            token = body["continuation_token"].as_str().map(str::to_string);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(count(&polled, "after"), 1, "{polled:#?}");
        assert!(
            polled.iter().position(|l| l == "after").unwrap() >= before_gate,
            "'after' came with a later poll: {polled:#?}"
        );
        let (_, full) = get_log(&app, &url, &[("full_content", "true")]).await;
        let full = events(&full);
        assert_eq!(polled, full, "no line lost or repeated");
        for text in ["before", "pw=***", "after"] {
            assert_eq!(count(&full, text), 1, "{text}: {full:#?}");
        }

        read_sse(&mut sse, &mut seen, "event: end").await;
        assert_eq!(sse_events(&seen), full, "{seen}");
        nd = ndjson_events(&app, &url).await;
        assert_eq!(nd, full);
        let all = format!("{seen}{polled:?}{nd:?}");
        assert!(!all.contains("s3cret"), "{all}");
        wait_for_run(&app, "tail", &run_id).await;
    }
);

// ---------------------------------------------------------------------------------------------
// XCom

fn xcom_url(app: &TestApp, dag_id: &str, run_id: &str, task_id: &str) -> String {
    app.url(&format!(
        "/api/v2/dags/{dag_id}/dagRuns/{}/taskInstances/{task_id}/xcomEntries",
        if run_id == "~" {
            "~".to_string()
        } else {
            encode_segment(run_id)
        }
    ))
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

db_test!(
    xcom_entries_are_listed_read_created_changed_and_deleted,
    |backend| async move {
        let app = spawn_app_with(backend, &[("UPDRAFT__CORE__XCOM_MAX_SIZE", "1024")]).await;
        write_dag(
            &app,
            "xc",
            "dag_id: xc\nis_paused_upon_creation: false\ntasks:\n  - id: ret\n    operator: python\n    with:\n      code: |\n        return {\"rows\": [1, None, True, \"it's\"]}\n  - id: say\n    operator: bash\n    with: {bash_command: \"echo hello\"}\n",
        )
        .await;
        trigger(&app, "xc", json!({"dag_run_id": "x1"})).await;
        let run = wait_for_run(&app, "xc", "x1").await;
        assert_eq!(run["state"], "success", "{run}");

        // List with wildcards.
        let (status, body) = send(app.client.get(xcom_url(&app, "~", "~", "~"))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_entries"], 2, "{body}");
        let first = &body["xcom_entries"][0];
        for field in [
            "key",
            "timestamp",
            "logical_date",
            "map_index",
            "task_id",
            "dag_id",
            "run_id",
            "dag_display_name",
            "task_display_name",
            "run_after",
        ] {
            assert!(first.get(field).is_some(), "{field} in {first}");
        }
        assert_eq!(first["task_id"], "ret", "ordered by task: {body}");
        assert_eq!(first["key"], "return_value");
        assert_eq!(first["map_index"], -1);
        assert_eq!(first["run_after"], run["run_after"]);
        assert!(
            first.get("value").is_none(),
            "lists carry no values: {first}"
        );
        let (_, body) = send(
            app.client
                .get(xcom_url(&app, "xc", "x1", "~"))
                .query(&[("limit", "1"), ("offset", "1")]),
        )
        .await;
        assert_eq!(body["total_entries"], 2);
        assert_eq!(body["xcom_entries"][0]["task_id"], "say", "{body}");
        let (_, body) = send(
            app.client
                .get(xcom_url(&app, "~", "~", "~"))
                .query(&[("task_id_pattern", "SA")]),
        )
        .await;
        assert_eq!(body["total_entries"], 1, "{body}");
        let (_, body) = send(
            app.client
                .get(xcom_url(&app, "~", "~", "~"))
                .query(&[("order_by", "-task_id")]),
        )
        .await;
        assert_eq!(body["xcom_entries"][0]["task_id"], "say", "{body}");
        let (_, body) = send(
            app.client
                .get(xcom_url(&app, "~", "~", "~"))
                .query(&[("run_after_gte", "2000-01-01T00:00:00.000000+0000")]),
        )
        .await;
        assert_eq!(body["total_entries"], 2, "{body}");
        let (_, body) = send(
            app.client
                .get(xcom_url(&app, "~", "~", "~"))
                .query(&[("run_after_lt", "2000-01-01T00:00:00Z")]),
        )
        .await;
        assert_eq!(body["total_entries"], 0, "{body}");
        let (_, body) = send(app.client.get(xcom_url(&app, "other", "~", "~"))).await;
        assert_eq!(body["total_entries"], 0, "{body}");
        for (query, want) in [
            (("order_by", "value"), 400),
            (("map_index", "-5"), 422),
            (("run_after_gte", "2024-01-01T00:00:00"), 422),
            (("limit", "many"), 422),
        ] {
            let (status, body) = send(
                app.client
                    .get(xcom_url(&app, "~", "~", "~"))
                    .query(&[query]),
            )
            .await;
            assert_eq!(status, want, "{query:?}: {body}");
            assert!(body["detail"].is_string(), "{body}");
        }

        // One entry: native and stringified.
        let entry = format!("{}/return_value", xcom_url(&app, "xc", "x1", "ret"));
        let (status, body) = send(app.client.get(&entry)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["value"], json!({"rows": [1, null, true, "it's"]}));
        assert_eq!(body["dag_display_name"], "xc");
        let (_, body) = send(
            app.client
                .get(&entry)
                .query(&[("stringify", "true"), ("deserialize", "true")]),
        )
        .await;
        assert_eq!(body["value"], r#"{'rows': [1, None, True, "it's"]}"#);
        let say = format!("{}/return_value", xcom_url(&app, "xc", "x1", "say"));
        let (_, body) = send(app.client.get(&say).query(&[("stringify", "true")])).await;
        assert_eq!(body["value"], "hello", "a string prints as itself");
        let (status, body) = send(
            app.client
                .get(format!("{}/nope", xcom_url(&app, "xc", "x1", "ret"))),
        )
        .await;
        assert_eq!(status, 404);
        assert!(body["detail"].as_str().unwrap().contains("nope"), "{body}");
        let (status, _) = send(app.client.get(&entry).query(&[("map_index", "3")])).await;
        assert_eq!(status, 404);

        // Create, change, delete.
        let manual = xcom_url(&app, "xc", "x1", "say");
        let (status, body) = send(
            app.client
                .post(&manual)
                .json(&json!({"key": "extra", "value": {"a": [1, "x"]}})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["value"], json!({"a": [1, "x"]}));
        assert_eq!(body["map_index"], -1);
        let (status, body) = send(
            app.client
                .post(&manual)
                .json(&json!({"key": "extra", "value": 2})),
        )
        .await;
        assert_eq!(status, 409, "{body}");
        let (status, body) = send(
            app.client
                .post(&manual)
                .json(&json!({"key": "big", "value": "x".repeat(2000)})),
        )
        .await;
        assert_eq!(status, 413, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("core.xcom_max_size"),
            "{body}"
        );
        let (status, _) = send(
            app.client
                .post(xcom_url(&app, "xc", "x1", "ghost"))
                .json(&json!({"key": "k", "value": 1})),
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = send(
            app.client
                .post(xcom_url(&app, "xc", "nope", "say"))
                .json(&json!({"key": "k", "value": 1})),
        )
        .await;
        assert_eq!(status, 404);
        let (status, body) = send(
            app.client
                .post(&manual)
                .json(&json!({"key": "k", "value": 1, "bogus": true})),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        let (_, body) = send(
            app.client
                .get(xcom_url(&app, "~", "~", "~"))
                .query(&[("xcom_key", "extra")]),
        )
        .await;
        assert_eq!(body["total_entries"], 1, "{body}");

        let extra = format!("{manual}/extra");
        let (status, body) = send(app.client.patch(&extra).json(&json!({"value": null}))).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("value").is_some_and(Value::is_null), "{body}");
        let (status, _) = send(
            app.client
                .patch(format!("{manual}/absent"))
                .json(&json!({"value": 1})),
        )
        .await;
        assert_eq!(status, 404);
        let (status, body) = send(
            app.client
                .patch(&extra)
                .json(&json!({"value": [true, 2.5]})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (_, body) = send(app.client.get(&extra).query(&[("stringify", "true")])).await;
        assert_eq!(body["value"], "[True, 2.5]");

        // Roles: Viewers read, only Op writes; nobody anonymous.
        let viewer = app.client_as(Role::Viewer).await;
        let user = app.client_as(Role::User).await;
        let (status, _) = send(viewer.get(&extra)).await;
        assert_eq!(status, 200);
        let (status, _) = send(viewer.get(xcom_url(&app, "~", "~", "~"))).await;
        assert_eq!(status, 200);
        for client in [&viewer, &user] {
            let (status, body) =
                send(client.post(&manual).json(&json!({"key": "v", "value": 1}))).await;
            assert_eq!(status, 403, "{body}");
            let (status, _) = send(client.patch(&extra).json(&json!({"value": 1}))).await;
            assert_eq!(status, 403);
            let (status, _) = send(client.delete(&extra)).await;
            assert_eq!(status, 403);
        }
        let (status, _) = send(app.anon.get(xcom_url(&app, "~", "~", "~"))).await;
        assert_eq!(status, 401);
        let (status, _) = send(app.anon.get(&extra)).await;
        assert_eq!(status, 401);

        let res = app.client.delete(&extra).send().await.unwrap();
        assert_eq!(res.status(), 204);
        let (status, _) = send(app.client.get(&extra)).await;
        assert_eq!(status, 404);
        let (status, _) = send(app.client.delete(&extra)).await;
        assert_eq!(status, 404);

        // Each successful write is in the audit log.
        for event in [
            "create_xcom_entry",
            "update_xcom_entry",
            "delete_xcom_entry",
        ] {
            let n = audit_log::Entity::find()
                .filter(audit_log::Column::Event.eq(event))
                .count(app.db.conn())
                .await
                .unwrap();
            let want = if event == "update_xcom_entry" { 2 } else { 1 };
            assert_eq!(n, want, "{event}");
        }
    }
);
