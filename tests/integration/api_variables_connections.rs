//! Variables, connections and pools through the API: Airflow's shapes and status codes,
//! secrets encrypted at rest and masked on the way out (and in the audit log), bulk
//! semantics, pool slot counts, and the Op role even for reads.

use std::time::{Duration, Instant};

use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use updraft::auth::Role;
use updraft::store::entities::{audit_log, connection, variable};

use crate::db_test;
use crate::engine_helpers::*;
use crate::helpers::*;

/// Sends a request as the admin and returns the status and the JSON body (null if none).
async fn call(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
    };
    (status, body)
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    call(app, Method::GET, path, None).await
}

async fn delete(app: &TestApp, path: &str) -> (u16, Value) {
    call(app, Method::DELETE, path, None).await
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    call(app, Method::POST, path, Some(body)).await
}

async fn patch(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    call(app, Method::PATCH, path, Some(body)).await
}

/// `field` of each entry of the list `list` in a collection response.
fn names_in<'a>(v: &'a Value, list: &str, field: &str) -> Vec<&'a str> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} is a list: {v}"))
        .iter()
        .map(|x| x[field].as_str().unwrap())
        .collect()
}

async fn raw_variable(app: &TestApp, key: &str) -> variable::Model {
    variable::Entity::find()
        .filter(variable::Column::Key.eq(key))
        .one(app.db.conn())
        .await
        .expect("read variable")
        .unwrap_or_else(|| panic!("variable {key} is stored"))
}

async fn raw_connection(app: &TestApp, id: &str) -> connection::Model {
    connection::Entity::find()
        .filter(connection::Column::ConnId.eq(id))
        .one(app.db.conn())
        .await
        .expect("read connection")
        .unwrap_or_else(|| panic!("connection {id} is stored"))
}

/// Fails if any audit row's `extra` holds one of `secrets`.
async fn assert_audit_log_clean(app: &TestApp, secrets: &[&str]) {
    let rows = audit_log::Entity::find()
        .all(app.db.conn())
        .await
        .expect("read the log table");
    assert!(!rows.is_empty(), "mutations are audited");
    for row in rows {
        let extra = row.extra.unwrap_or_default();
        for s in secrets {
            assert!(
                !extra.contains(s),
                "audit row {} leaks {s}: {extra}",
                row.event
            );
        }
    }
}

db_test!(reading_needs_op_and_credentials, |backend| async move {
    let app = spawn_app(backend).await;
    let viewer = app.client_as(Role::Viewer).await;
    let user = app.client_as(Role::User).await;
    let op = app.client_as(Role::Op).await;
    for path in [
        "/api/v2/variables",
        "/api/v2/connections",
        "/api/v2/pools",
        "/api/v2/pools/default_pool",
    ] {
        let res = app.anon.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
        for client in [&viewer, &user] {
            let res = client.get(app.url(path)).send().await.unwrap();
            assert_eq!(res.status(), 403, "{path}");
            let body: Value = res.json().await.unwrap();
            assert!(body["detail"].as_str().unwrap().contains("Op"), "{body}");
        }
        let res = op.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    let res = user
        .post(app.url("/api/v2/variables"))
        .json(&json!({"key": "k", "value": "v"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Testing connections is disabled, as in Airflow by default.
    let res = op
        .post(app.url("/api/v2/connections/test"))
        .json(&json!({"connection_id": "c", "conn_type": "http"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
});

db_test!(
    variables_are_encrypted_masked_and_audited_without_secrets,
    |backend| async move {
        let app = spawn_app(backend).await;
        let (s, v) = post(
            &app,
            "/api/v2/variables",
            json!({"key": "region", "value": "eu-west-1", "description": "where"}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(
            v,
            json!({"key": "region", "value": "eu-west-1", "description": "where", "is_encrypted": true, "team_name": null})
        );
        let (s, v) = post(
            &app,
            "/api/v2/variables",
            json!({"key": "db_password", "value": "hunter2-planted"}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["value"], "***");
        let cfg = r#"{"api_key": "k-planted-123", "region": "eu"}"#;
        let (s, v) = post(
            &app,
            "/api/v2/variables",
            json!({"key": "cfg", "value": cfg}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let shown: Value = serde_json::from_str(v["value"].as_str().unwrap()).unwrap();
        assert_eq!(shown, json!({"api_key": "***", "region": "eu"}));
        // A JSON value that is not a string is stored as its JSON text.
        let (s, v) = post(
            &app,
            "/api/v2/variables",
            json!({"key": "n", "value": {"a": [1, 2]}}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["value"], r#"{"a":[1,2]}"#);

        // Bad input and conflicts.
        let (s, v) = post(
            &app,
            "/api/v2/variables",
            json!({"key": "region", "value": "x"}),
        )
        .await;
        assert_eq!(s, 409, "{v}");
        assert!(v["detail"].as_str().unwrap().contains("region"), "{v}");
        let (s, v) = post(
            &app,
            "/api/v2/variables",
            json!({"key": "k".repeat(251), "value": "x"}),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        let (s, _) = post(&app, "/api/v2/variables", json!({"key": "nov"})).await;
        assert_eq!(s, 422);
        let (s, v) = get(&app, "/api/v2/variables/nope").await;
        assert_eq!(s, 404);
        assert!(v["detail"].as_str().unwrap().contains("`nope`"), "{v}");

        // At rest: Fernet tokens, never the plain text.
        for key in ["region", "db_password", "cfg"] {
            let row = raw_variable(&app, key).await;
            assert!(row.is_encrypted);
            assert!(row.val.starts_with("gAAAAA"), "{key}: {}", row.val);
        }
        assert_eq!(
            app.secrets
                .decrypt(&raw_variable(&app, "db_password").await.val)
                .unwrap(),
            "hunter2-planted"
        );

        // Lists: pagination, order, patterns.
        let (s, v) = get(&app, "/api/v2/variables?limit=2&order_by=-key").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["total_entries"], 4);
        let keys = names_in(&v, "variables", "key");
        assert_eq!(keys, ["region", "n"]);
        let (_, v) = get(&app, "/api/v2/variables?limit=2&offset=2&order_by=-key").await;
        let keys = names_in(&v, "variables", "key");
        assert_eq!(keys, ["db_password", "cfg"]);
        let (_, v) = get(&app, "/api/v2/variables?variable_key_pattern=PASS").await;
        assert_eq!(v["total_entries"], 1, "{v}");
        assert_eq!(v["variables"][0]["value"], "***");
        let (_, v) = get(&app, "/api/v2/variables?variable_key_prefix_pattern=re").await;
        assert_eq!(v["total_entries"], 1, "{v}");
        let (s, v) = get(&app, "/api/v2/variables?order_by=nope").await;
        assert_eq!(s, 400, "{v}");
        let (s, _) = get(&app, "/api/v2/variables?limit=-1").await;
        assert_eq!(s, 422);

        // PATCH: `***` keeps the secret, masked JSON entries merge with the stored ones.
        let (s, v) = patch(
            &app,
            "/api/v2/variables/db_password",
            json!({"key": "db_password", "value": "***", "description": "db"}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["description"], "db");
        let row = raw_variable(&app, "db_password").await;
        assert_eq!(app.secrets.decrypt(&row.val).unwrap(), "hunter2-planted");
        let (_, shown) = get(&app, "/api/v2/variables/cfg").await;
        let mut edited: Value = serde_json::from_str(shown["value"].as_str().unwrap()).unwrap();
        edited["region"] = json!("us");
        let (s, v) = patch(
            &app,
            "/api/v2/variables/cfg",
            json!({"key": "cfg", "value": edited.to_string()}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let stored: Value = serde_json::from_str(
            &app.secrets
                .decrypt(&raw_variable(&app, "cfg").await.val)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(stored, json!({"api_key": "k-planted-123", "region": "us"}));
        // update_mask: only the description changes.
        let (s, v) = patch(
            &app,
            "/api/v2/variables/region?update_mask=description",
            json!({"key": "region", "value": "ignored", "description": "new"}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["value"].as_str(), v["description"].as_str()),
            (Some("eu-west-1"), Some("new"))
        );
        let (s, _) = patch(
            &app,
            "/api/v2/variables/region?update_mask=bogus",
            json!({"key": "region", "value": "x"}),
        )
        .await;
        assert_eq!(s, 400);
        let (s, _) = patch(
            &app,
            "/api/v2/variables/region",
            json!({"key": "other", "value": "x"}),
        )
        .await;
        assert_eq!(s, 400);
        let (s, _) = patch(
            &app,
            "/api/v2/variables/ghost",
            json!({"key": "ghost", "value": "x"}),
        )
        .await;
        assert_eq!(s, 404);

        // DELETE.
        let (s, v) = delete(&app, "/api/v2/variables/n").await;
        assert_eq!((s, v), (204, Value::Null));
        let (s, _) = delete(&app, "/api/v2/variables/n").await;
        assert_eq!(s, 404);

        // Bulk: fail / skip / overwrite on create, fail / skip on update and delete.
        let bulk = |actions: Value| json!({"actions": actions});
        let (s, v) = patch(&app, "/api/v2/variables", bulk(json!([
        {"action": "create", "entities": [{"key": "region", "value": "x"}, {"key": "b1", "value": "1"}]},
    ]))).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["create"]["success"], json!([]));
        assert_eq!(v["create"]["errors"][0]["status_code"], 409, "{v}");
        assert!(v["update"].is_null() && v["delete"].is_null(), "{v}");
        let (_, v) = patch(&app, "/api/v2/variables", bulk(json!([
        {"action": "create", "action_on_existence": "skip", "entities": [{"key": "region", "value": "x"}, {"key": "b1", "value": "1"}]},
        {"action": "create", "action_on_existence": "overwrite", "entities": [{"key": "b2", "value": "2"}, {"key": "db_password", "value": "***"}]},
    ]))).await;
        assert_eq!(
            v["create"]["success"],
            json!(["b1", "b2", "db_password"]),
            "{v}"
        );
        let (_, region) = get(&app, "/api/v2/variables/region").await;
        assert_eq!(region["value"], "eu-west-1", "skip left it alone");
        assert_eq!(
            app.secrets
                .decrypt(&raw_variable(&app, "db_password").await.val)
                .unwrap(),
            "hunter2-planted"
        );
        let (_, v) = patch(&app, "/api/v2/variables", bulk(json!([
        {"action": "update", "entities": [{"key": "b1", "value": "10"}, {"key": "ghost", "value": "x"}]},
        {"action": "update", "action_on_non_existence": "skip", "entities": [{"key": "b2", "value": "20"}, {"key": "ghost", "value": "x"}]},
        {"action": "delete", "entities": ["b1", "ghost"]},
    ]))).await;
        assert_eq!(v["update"]["success"], json!(["b2"]), "{v}");
        assert_eq!(v["update"]["errors"][0]["status_code"], 404, "{v}");
        assert_eq!(v["delete"]["success"], json!([]), "{v}");
        assert_eq!(v["delete"]["errors"][0]["status_code"], 404, "{v}");
        let (_, b1) = get(&app, "/api/v2/variables/b1").await;
        assert_eq!(b1["value"], "1", "a failed action changes nothing");
        let (_, v) = patch(&app, "/api/v2/variables", bulk(json!([
        {"action": "delete", "action_on_non_existence": "skip", "entities": ["b1", "ghost", {"key": "b2", "value": null}]},
    ]))).await;
        assert_eq!(v["delete"]["success"], json!(["b1", "b2"]), "{v}");
        let (s, _) = patch(
            &app,
            "/api/v2/variables",
            bulk(json!([{"action": "explode", "entities": []}])),
        )
        .await;
        assert_eq!(s, 422);

        assert_audit_log_clean(&app, &["hunter2-planted", "k-planted-123"]).await;
    }
);

db_test!(
    connections_are_encrypted_masked_and_audited_without_secrets,
    |backend| async move {
        let app = spawn_app(backend).await;
        let extra = r#"{"api_key": "k-planted-456", "region": "eu"}"#;
        let body = json!({
            "connection_id": "my_api", "conn_type": "http", "host": "api.example.com", "login": "bob",
            "password": "pw-planted-789", "port": 443, "schema": "https", "extra": extra, "description": "d",
        });
        let (s, v) = post(&app, "/api/v2/connections", body.clone()).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["password"], "***");
        assert_eq!(
            (v["login"].as_str(), v["host"].as_str(), v["port"].as_i64()),
            (Some("bob"), Some("api.example.com"), Some(443))
        );
        let shown: Value = serde_json::from_str(v["extra"].as_str().unwrap()).unwrap();
        assert_eq!(shown, json!({"api_key": "***", "region": "eu"}));
        assert!(v.as_object().unwrap().contains_key("team_name"));
        let (s, _) = post(&app, "/api/v2/connections", body).await;
        assert_eq!(s, 409);
        let (s, v) = post(
            &app,
            "/api/v2/connections",
            json!({"connection_id": "plain", "conn_type": "fs"}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert!(v["password"].is_null() && v["extra"].is_null(), "{v}");
        for bad in [
            json!({"connection_id": "x", "conn_type": "http", "extra": "[1]"}),
            json!({"connection_id": "x", "conn_type": "http", "extra": "not json"}),
            json!({"connection_id": "has space", "conn_type": "http"}),
            json!({"connection_id": "x"}),
            json!({"connection_id": "x", "conn_type": "http", "port": "eighty"}),
        ] {
            let (s, v) = post(&app, "/api/v2/connections", bad.clone()).await;
            assert_eq!(s, 422, "{bad}: {v}");
            assert!(v["detail"].is_string(), "{v}");
        }

        let row = raw_connection(&app, "my_api").await;
        assert!(row.is_encrypted && row.is_extra_encrypted);
        let (pw, ex) = (row.password.clone().unwrap(), row.extra.clone().unwrap());
        assert!(
            pw.starts_with("gAAAAA") && ex.starts_with("gAAAAA"),
            "{pw} {ex}"
        );
        assert!(!ex.contains("k-planted-456"));

        // Lists.
        let (_, v) = get(&app, "/api/v2/connections?order_by=-connection_id").await;
        assert_eq!(v["total_entries"], 2);
        assert_eq!(v["connections"][0]["connection_id"], "plain");
        let (_, v) = get(
            &app,
            "/api/v2/connections?connection_id_pattern=API&limit=1",
        )
        .await;
        assert_eq!(v["total_entries"], 1, "{v}");
        assert_eq!(v["connections"][0]["password"], "***");
        let (s, _) = get(&app, "/api/v2/connections?order_by=password").await;
        assert_eq!(s, 400);
        let (s, v) = get(&app, "/api/v2/connections/nope").await;
        assert_eq!(s, 404);
        assert!(v["detail"].as_str().unwrap().contains("nope"));

        // PATCH with what a read showed keeps the secrets.
        let (_, mut shown) = get(&app, "/api/v2/connections/my_api").await;
        shown["host"] = json!("api2.example.com");
        let mut ex: Value = serde_json::from_str(shown["extra"].as_str().unwrap()).unwrap();
        ex["region"] = json!("us");
        shown["extra"] = json!(ex.to_string());
        shown.as_object_mut().unwrap().remove("team_name");
        let (s, v) = patch(&app, "/api/v2/connections/my_api", shown).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["host"], "api2.example.com");
        let row = raw_connection(&app, "my_api").await;
        assert_eq!(
            app.secrets
                .decrypt(row.password.as_deref().unwrap())
                .unwrap(),
            "pw-planted-789"
        );
        let stored: Value =
            serde_json::from_str(&app.secrets.decrypt(row.extra.as_deref().unwrap()).unwrap())
                .unwrap();
        assert_eq!(stored, json!({"api_key": "k-planted-456", "region": "us"}));
        // update_mask: only the port changes; null clears.
        let (s, v) = patch(
            &app,
            "/api/v2/connections/my_api?update_mask=port",
            json!({"connection_id": "my_api", "conn_type": "x", "port": null, "host": "ignored"}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert!(v["port"].is_null(), "{v}");
        assert_eq!(
            (v["host"].as_str(), v["conn_type"].as_str()),
            (Some("api2.example.com"), Some("http"))
        );
        let (s, _) = patch(
            &app,
            "/api/v2/connections/my_api",
            json!({"connection_id": "other", "conn_type": "http"}),
        )
        .await;
        assert_eq!(s, 400);
        let (s, _) = patch(
            &app,
            "/api/v2/connections/ghost",
            json!({"connection_id": "ghost", "conn_type": "http"}),
        )
        .await;
        assert_eq!(s, 404);

        // Bulk.
        let (_, v) = patch(&app, "/api/v2/connections", json!({"actions": [
        {"action": "create", "entities": [{"connection_id": "plain", "conn_type": "fs"}]},
        {"action": "update", "action_on_non_existence": "skip", "entities": [{"connection_id": "plain", "conn_type": "s3", "password": "pw2-planted"}, {"connection_id": "ghost", "conn_type": "x"}]},
        {"action": "delete", "entities": ["ghost"]},
    ]})).await;
        assert_eq!(v["create"]["errors"][0]["status_code"], 409, "{v}");
        assert_eq!(v["update"]["success"], json!(["plain"]), "{v}");
        assert_eq!(v["delete"]["errors"][0]["status_code"], 404, "{v}");
        let (_, v) = patch(&app, "/api/v2/connections", json!({"actions": [
        {"action": "create", "action_on_existence": "overwrite", "entities": [{"connection_id": "plain", "conn_type": "fs", "password": "***"}, {"connection_id": "new1", "conn_type": "fs"}]},
    ]})).await;
        assert_eq!(v["create"]["success"], json!(["plain", "new1"]), "{v}");
        let row = raw_connection(&app, "plain").await;
        assert_eq!(
            app.secrets
                .decrypt(row.password.as_deref().unwrap())
                .unwrap(),
            "pw2-planted"
        );
        assert_eq!(row.conn_type, "fs");

        let (s, _) = delete(&app, "/api/v2/connections/new1").await;
        assert_eq!(s, 204);
        let (s, _) = delete(&app, "/api/v2/connections/new1").await;
        assert_eq!(s, 404);

        assert_audit_log_clean(&app, &["pw-planted-789", "k-planted-456", "pw2-planted"]).await;
    }
);

db_test!(
    pools_count_slots_and_keep_the_default_pool,
    |backend| async move {
        let app = spawn_app(backend).await;
        let (s, v) = get(&app, "/api/v2/pools").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["total_entries"], 1);
        assert_eq!(
            v["pools"][0],
            json!({"name": "default_pool", "slots": 128, "description": "Default pool", "include_deferred": false,
               "occupied_slots": 0, "running_slots": 0, "queued_slots": 0, "scheduled_slots": 0,
               "open_slots": 128, "deferred_slots": 0, "team_name": null})
        );
        let (s, v) = delete(&app, "/api/v2/pools/default_pool").await;
        assert_eq!(s, 400);
        assert_eq!(v["detail"], "Default Pool can't be deleted");
        let (s, _) = patch(
            &app,
            "/api/v2/pools/default_pool",
            json!({"description": "mine"}),
        )
        .await;
        assert_eq!(s, 400);
        let (s, v) = patch(&app, "/api/v2/pools/default_pool", json!({"slots": 64})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["slots"].as_i64(), v["open_slots"].as_i64()),
            (Some(64), Some(64))
        );

        let (s, v) = post(
            &app,
            "/api/v2/pools",
            json!({"name": "sleepy", "slots": 3, "description": "s"}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["open_slots"], 3);
        let (s, _) = post(&app, "/api/v2/pools", json!({"name": "sleepy", "slots": 3})).await;
        assert_eq!(s, 409);
        let (s, _) = post(&app, "/api/v2/pools", json!({"name": "bad", "slots": -2})).await;
        assert_eq!(s, 422);
        let (s, _) = post(
            &app,
            "/api/v2/pools",
            json!({"name": "bad", "slots": 1, "extra": 1}),
        )
        .await;
        assert_eq!(s, 422);
        let (s, v) = post(
            &app,
            "/api/v2/pools",
            json!({"name": "unlimited", "slots": -1}),
        )
        .await;
        assert_eq!((s, v["open_slots"].as_i64()), (201, Some(-1)), "{v}");
        let (_, v) = get(&app, "/api/v2/pools?order_by=-name&limit=2").await;
        assert_eq!(v["total_entries"], 3);
        let names = names_in(&v, "pools", "name");
        assert_eq!(names, ["unlimited", "sleepy"]);
        let (_, v) = get(&app, "/api/v2/pools?pool_name_pattern=sleep").await;
        assert_eq!(v["total_entries"], 1);
        let (s, _) = get(&app, "/api/v2/pools?order_by=slots").await;
        assert_eq!(s, 400);
        let (s, v) = get(&app, "/api/v2/pools/nope").await;
        assert_eq!(s, 404);
        assert!(v["detail"].as_str().unwrap().contains("nope"));

        // A task taking 2 slots of `sleepy`, held running until a file appears.
        let dir = tempfile::tempdir().expect("temp dir");
        let release = dir.path().join("release");
        let yaml = format!(
            r#"dag_id: pooled_sleep
is_paused_upon_creation: false
default_args: {{pool: sleepy}}
tasks:
  - id: hold
    operator: bash
    pool_slots: 2
    with: {{bash_command: "while [ ! -f {} ]; do sleep 0.05; done"}}
"#,
            release.display()
        );
        write_dag(&app, "pooled_sleep", &yaml).await;
        let run_id = run_id_of(&trigger(&app, "pooled_sleep", json!({})).await);
        let started = Instant::now();
        let pool = loop {
            let (_, p) = get(&app, "/api/v2/pools/sleepy").await;
            if p["running_slots"] == 2 {
                break p;
            }
            assert!(started.elapsed() < PATIENCE, "the task never ran: {p}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            (
                pool["occupied_slots"].as_i64(),
                pool["open_slots"].as_i64(),
                pool["queued_slots"].as_i64()
            ),
            (Some(2), Some(1), Some(0)),
            "{pool}"
        );
        let (s, v) = delete(&app, "/api/v2/pools/sleepy").await;
        assert_eq!(s, 409, "{v}");
        let (_, v) = patch(
            &app,
            "/api/v2/pools",
            json!({"actions": [
                {"action": "delete", "entities": ["sleepy"]},
            ]}),
        )
        .await;
        assert_eq!(v["delete"]["errors"][0]["status_code"], 409, "{v}");
        std::fs::write(&release, "").expect("release the task");
        let run = wait_for_run(&app, "pooled_sleep", &run_id).await;
        assert_eq!(run["state"], "success", "{run}");
        let (_, p) = get(&app, "/api/v2/pools/sleepy").await;
        assert_eq!(
            (p["running_slots"].as_i64(), p["open_slots"].as_i64()),
            (Some(0), Some(3)),
            "{p}"
        );

        // PATCH and bulk.
        let (s, v) = patch(
            &app,
            "/api/v2/pools/sleepy?update_mask=slots",
            json!({"slots": 5, "description": "ignored"}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["slots"].as_i64(), v["description"].as_str()),
            (Some(5), Some("s"))
        );
        let (s, _) = patch(&app, "/api/v2/pools/sleepy", json!({"pool": "renamed"})).await;
        assert_eq!(s, 400);
        let (_, v) = patch(&app, "/api/v2/pools", json!({"actions": [
        {"action": "create", "action_on_existence": "skip", "entities": [{"name": "sleepy", "slots": 1}, {"name": "p2", "slots": 2}]},
        {"action": "update", "entities": [{"name": "p2", "slots": 4}]},
        {"action": "update", "update_mask": ["description"], "entities": [{"name": "default_pool", "slots": 1, "description": "x"}]},
        {"action": "delete", "entities": ["default_pool"]},
    ]})).await;
        assert_eq!(v["create"]["success"], json!(["p2"]), "{v}");
        assert_eq!(v["update"]["success"], json!(["p2"]), "{v}");
        assert_eq!(v["update"]["errors"][0]["status_code"], 400, "{v}");
        assert_eq!(v["delete"]["errors"][0]["status_code"], 400, "{v}");
        let (_, p) = get(&app, "/api/v2/pools/p2").await;
        assert_eq!(p["slots"], 4);
        let (s, _) = delete(&app, "/api/v2/pools/p2").await;
        assert_eq!(s, 204);
        let (_, v) = get(&app, "/api/v2/pools").await;
        assert!(v["pools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "default_pool"));
    }
);
