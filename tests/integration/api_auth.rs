//! Auth: tokens, Basic, roles, failed-login limits, users, the audit log, secrets in task logs,
//! the `users` and `rotate-fernet-key` commands.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::{json, Value};
use updraft::auth::Role;
use updraft::store::entities::{audit_log, connection, variable};

use crate::db_test;
use crate::engine_helpers::*;
use crate::helpers::*;

async fn login(app: &TestApp, body: Value) -> reqwest::Response {
    app.anon
        .post(app.url("/auth/token"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn error_of(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    let body: Value = res.json().await.expect("JSON error body");
    (
        status,
        body["detail"].as_str().unwrap_or_default().to_string(),
    )
}

db_test!(
    tokens_come_from_the_admin_password_and_open_the_api,
    |backend| async move {
        let app = spawn_app(backend).await;
        let res = login(
            &app,
            json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let token = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        // The claims Airflow's tokens carry, and ours.
        use base64::Engine as _;
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        for claim in ["sub", "role", "iat", "nbf", "exp", "jti"] {
            assert!(!claims[claim].is_null(), "{claim} in {claims}");
        }
        assert_eq!(claims["sub"], ADMIN_USER);
        assert_eq!(claims["role"], "Admin");

        let res = client_with_token(&token)
            .get(app.url("/api/v2/eventLogs"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);

        // A form body works too (OAuth2 password flow clients send one).
        let res = app
            .anon
            .post(app.url("/auth/token"))
            .form(&[("username", ADMIN_USER), ("password", ADMIN_PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);

        // HTTP Basic on any endpoint.
        let res = app
            .anon
            .get(app.url("/api/v2/eventLogs"))
            .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = app
            .anon
            .get(app.url("/api/v2/eventLogs"))
            .basic_auth(ADMIN_USER, Some("wrong-password"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
);

db_test!(
    anonymous_bad_and_expired_credentials_are_refused,
    |backend| async move {
        let app = spawn_app(backend).await;
        // Public: version, health, the spec.
        for path in [
            "/api/v2/version",
            "/api/v2/monitor/health",
            "/api/v2/openapi.json",
        ] {
            let res = app.anon.get(app.url(path)).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
        }
        // Everything else, even unknown paths, needs credentials.
        for path in [
            "/api/v2/dags",
            "/api/v2/eventLogs",
            "/api/v2/users",
            "/api/v2/variables",
            "/api/v2/no-such-thing",
        ] {
            let res = app.anon.get(app.url(path)).send().await.unwrap();
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
            let (status, detail) = error_of(res).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(detail, "Not authenticated");
        }
        let res = client_with_token("not-a-jwt")
            .get(app.url("/api/v2/eventLogs"))
            .send()
            .await
            .unwrap();
        let (status, detail) = error_of(res).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(detail.starts_with("Invalid JWT token"), "{detail}");

        // Signed with the server's key but expired an hour ago.
        let key = app.secrets.jwt_key(None);
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"sub": ADMIN_USER, "role": "Admin", "iat": now - 7200, "nbf": now - 7200,
            "exp": now - 3600, "jti": "x", "aud": "apache-airflow"});
        let expired = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&key),
        )
        .unwrap();
        let res = client_with_token(&expired)
            .get(app.url("/api/v2/eventLogs"))
            .send()
            .await
            .unwrap();
        let (status, detail) = error_of(res).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(detail.contains("expired"), "{detail}");

        // Signed with another key.
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &json!({"sub": ADMIN_USER, "role": "Admin", "iat": now, "nbf": now, "exp": now + 60,
                "jti": "y", "aud": "apache-airflow"}),
            &jsonwebtoken::EncodingKey::from_secret(b"some-other-key-some-other-key!!"),
        )
        .unwrap();
        let res = client_with_token(&forged)
            .get(app.url("/api/v2/eventLogs"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);

        // Bad login bodies: 422 with what to send; unknown users 401.
        let res = app
            .anon
            .post(app.url("/auth/token"))
            .body("{nope")
            .send()
            .await
            .unwrap();
        let (status, detail) = error_of(res).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail.contains("username"), "{detail}");
        let (status, _) =
            error_of(login(&app, json!({"username": "ghost", "password": "whatever1"})).await)
                .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
);

db_test!(failed_logins_are_limited_per_user, |backend| async move {
    let app = spawn_app_with(backend, &[("UPDRAFT__AUTH__LOGIN_RATE_LIMIT", "3")]).await;
    for _ in 0..3 {
        let res = login(
            &app,
            json!({"username": ADMIN_USER, "password": "wrong-password"}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits: guessing cannot continue.
    let res = login(
        &app,
        json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    let (_, detail) = error_of(res).await;
    assert!(detail.contains("Too many failed logins"), "{detail}");
});

db_test!(roles_decide_what_a_user_may_do, |backend| async move {
    let app = spawn_app(backend).await;
    write_dag(
        &app,
        "roles",
        "dag_id: roles\nis_paused_upon_creation: false\ntasks:\n  - id: a\n    operator: empty\n",
    )
    .await;
    let viewer = app.client_as(Role::Viewer).await;
    let user = app.client_as(Role::User).await;
    let op = app.client_as(Role::Op).await;
    let trigger_url = app.url("/api/v2/dags/roles/dagRuns");
    let res = viewer
        .post(&trigger_url)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, detail) = error_of(res).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(detail.contains("needs the User role"), "{detail}");
    let res = user
        .post(&trigger_url)
        .json(&json!({"dag_run_id": "by_user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = viewer
        .get(app.url("/api/v2/dags/roles/dagRuns/by_user"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Users are the Admin's: even Op may not list them.
    let res = op.get(app.url("/api/v2/users")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The trigger is in the audit log, by its user, with the run.
    let (status, logs) = app
        .get_json("/api/v2/eventLogs?event=trigger_dag_run&dag_id=roles")
        .await;
    assert_eq!(status, 200, "{logs}");
    assert_eq!(logs["total_entries"], 1, "{logs}");
    let entry = &logs["event_logs"][0];
    assert_eq!(entry["owner"], "user_user");
    assert_eq!(entry["run_id"], "by_user");
    let id = entry["event_log_id"].as_i64().unwrap();
    let (status, one) = app.get_json(&format!("/api/v2/eventLogs/{id}")).await;
    assert_eq!((status, &one["event"]), (200, &json!("trigger_dag_run")));
    let (status, _) = app.get_json("/api/v2/eventLogs/999999").await;
    assert_eq!(status, 404);
    let (status, body) = app.get_json("/api/v2/eventLogs?order_by=nope").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .get_json("/api/v2/eventLogs?after=2024-01-01T00:00:00")
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("no time zone"),
        "{body}"
    );
    let (status, body) = app
            .get_json("/api/v2/eventLogs?after=2024-01-01T00:00:00.000000%2B0000&included_events=trigger_dag_run&included_events=x")
            .await;
    assert_eq!((status, &body["total_entries"]), (200, &json!(1)), "{body}");
});

db_test!(
    admins_manage_users_and_keep_one_admin,
    |backend| async move {
        let app = spawn_app(backend).await;
        let url = app.url("/api/v2/users");
        let res = app
            .client
            .post(&url)
            .json(&json!({"username": "ada", "password": "correct horse", "role": "op", "email": "ada@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let created: Value = res.json().await.unwrap();
        assert_eq!(created["role"], "Op");
        assert!(created.get("password").is_none() && created.get("password_hash").is_none());
        let res = app
            .client
            .post(&url)
            .json(&json!({"username": "ada", "password": "correct horse", "role": "op"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        for bad in [
            json!({"username": "bob", "password": "short", "role": "op"}),
            json!({"username": "bob", "password": "long enough", "role": "king"}),
            json!({"username": "b/ob", "password": "long enough", "role": "op"}),
            json!({"username": "bob", "password": "long enough", "role": "op", "x": 1}),
        ] {
            let res = app.client.post(&url).json(&bad).send().await.unwrap();
            let (status, detail) = error_of(res).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {detail}");
            assert!(!detail.is_empty());
        }
        // The new user logs in and gets Op's rights.
        let res = login(
            &app,
            json!({"username": "ada", "password": "correct horse"}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let (status, list) = app.get_json("/api/v2/users").await;
        assert_eq!(status, 200);
        assert_eq!(list["total_entries"], 2, "{list}");
        // Role change, then the last admin cannot go.
        let res = app
            .client
            .patch(app.url("/api/v2/users/ada"))
            .json(&json!({"role": "Viewer"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap()["role"], "Viewer");
        let res = app
            .client
            .delete(app.url(&format!("/api/v2/users/{ADMIN_USER}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let res = app
            .client
            .patch(app.url(&format!("/api/v2/users/{ADMIN_USER}")))
            .json(&json!({"role": "op"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let res = app
            .client
            .delete(app.url("/api/v2/users/ada"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let (status, _) = app.get_json("/api/v2/users/ada").await;
        assert_eq!(status, 404);
        // Audited, without the password.
        let rows = audit_log::Entity::find().all(app.db.conn()).await.unwrap();
        let text = format!("{rows:?}");
        assert!(
            text.contains("post_user") && text.contains("delete_user"),
            "{text}"
        );
        assert!(!text.contains("correct horse"), "{text}");
    }
);

db_test!(
    variables_and_connection_secrets_a_task_reads_are_masked_in_its_log,
    |backend| async move {
        let app = spawn_app(backend).await;
        let conn = app.db.conn();
        variable::ActiveModel {
            key: Set("warehouse_dsn_part".into()),
            val: Set(app.secrets.encrypt("s3cret-variable-value")),
            description: Set(None),
            is_encrypted: Set(true),
            ..Default::default()
        }
        .insert(conn)
        .await
        .unwrap();
        connection::ActiveModel {
            conn_id: Set("api".into()),
            conn_type: Set("http".into()),
            description: Set(None),
            host: Set(Some("api.example.com".into())),
            schema: Set(None),
            login: Set(Some("bot".into())),
            password: Set(Some(app.secrets.encrypt("conn-Passw0rd"))),
            port: Set(None),
            extra: Set(Some(
                app.secrets
                    .encrypt(r#"{"api_key": "k-123456", "region": "eu-west"}"#),
            )),
            is_encrypted: Set(true),
            is_extra_encrypted: Set(true),
            ..Default::default()
        }
        .insert(conn)
        .await
        .unwrap();
        write_dag(
            &app,
            "reads",
            "dag_id: reads\nis_paused_upon_creation: false\ntasks:\n  - id: use\n    operator: bash\n    with:\n      bash_command: \"echo v={{ var.value.warehouse_dsn_part }} p={{ conn.api.password }} k={{ conn.api.extra_dejson.api_key }} r={{ conn.api.extra_dejson.region }} h={{ conn.api.host }}\"\n  - id: own\n    operator: python\n    with:\n      code: |\n        token = 'tok-' + '987654'\n        mask_secret(token)\n        print('got', token)\n  - id: shell\n    operator: bash\n    with:\n      bash_command: \"T=sh-$((123*1000+456)); echo ::add-mask::$T; echo using $T\"\n",
        )
        .await;
        let run = trigger(&app, "reads", json!({"dag_run_id": "r1"})).await;
        let run = wait_for_run(&app, "reads", &run_id_of(&run)).await;
        assert_eq!(run["state"], "success", "{run}");
        let log = task_log(&app, "reads", "r1", "use", 1);
        for secret in ["s3cret-variable-value", "conn-Passw0rd", "k-123456"] {
            assert!(!log.contains(secret), "{secret} in {log}");
        }
        assert!(
            log.contains("v=*** p=*** k=*** r=eu-west h=api.example.com"),
            "decrypted, rendered and masked: {log}"
        );
        // Values a task registers itself (Airflow's mask_secret; ::add-mask:: from any task).
        let own = task_log(&app, "reads", "r1", "own", 1);
        assert!(own.contains("got ***") && !own.contains("987654"), "{own}");
        let shell = task_log(&app, "reads", "r1", "shell", 1);
        assert!(
            shell.contains("using ***") && !shell.contains("123456"),
            "{shell}"
        );
    }
);

#[test]
fn users_cli_creates_lists_and_refuses_bad_input() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = updraft_cmd(home.path());
    cmd.args([
        "users",
        "create",
        "--username",
        "ada",
        "--role",
        "ADMIN",
        "--password-stdin",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("User ada created with role Admin"));

    let list = run_with_timeout(
        {
            let mut c = updraft_cmd(home.path());
            c.args(["users", "list"]);
            c
        },
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("ada") && text.contains("Admin"), "{text}");

    for (args, needle) in [
        (
            vec![
                "users",
                "create",
                "--username",
                "bob",
                "--role",
                "king",
                "--password",
                "long enough",
            ],
            "no such role",
        ),
        (
            vec![
                "users",
                "create",
                "--username",
                "bob",
                "--role",
                "op",
                "--password",
                "short",
            ],
            "too short",
        ),
        (
            vec!["users", "create", "--username", "bob", "--role", "op"],
            "--password-stdin",
        ),
    ] {
        let mut c = updraft_cmd(home.path());
        c.args(&args);
        let out = run_with_timeout(c, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let mut c = updraft_cmd(home.path());
    c.args(["users", "delete", "--username", "ghost"]);
    let out = run_with_timeout(c, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_fernet_key_re_encrypts_with_the_new_key() {
    use updraft::secrets::Keyring;
    let home = tempfile::tempdir().unwrap();
    let old = fernet_key();
    let new = fernet_key();
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        home.path().join("updraft.db").display()
    );
    // Secrets written under the old key (and one older row in clear).
    let db = updraft::store::Db::connect(
        &updraft::config::DatabaseUrl::parse(&db_url).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let old_ring = Keyring::parse(&old).unwrap();
    for (key, val, enc) in [
        ("a", old_ring.encrypt("alpha-secret"), true),
        ("b", "plain-old".to_string(), false),
    ] {
        variable::ActiveModel {
            key: Set(key.into()),
            val: Set(val),
            description: Set(None),
            is_encrypted: Set(enc),
            ..Default::default()
        }
        .insert(db.conn())
        .await
        .unwrap();
    }
    db.close().await;

    let mut c = updraft_cmd(home.path());
    c.args(["rotate-fernet-key"])
        .env("DATABASE_URL", &db_url)
        .env("UPDRAFT__CORE__FERNET_KEY", format!("{new},{old}"));
    let out = run_with_timeout(c, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted 2 variable(s)"));

    let db = updraft::store::Db::connect(
        &updraft::config::DatabaseUrl::parse(&db_url).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let new_ring = Keyring::parse(&new).unwrap();
    let rows = variable::Entity::find().all(db.conn()).await.unwrap();
    for row in rows {
        assert!(row.is_encrypted);
        let plain = new_ring
            .decrypt(&row.val)
            .expect("readable with the new key alone");
        assert!(plain == "alpha-secret" || plain == "plain-old");
    }
    db.close().await;
}

/// Every operation in the OpenAPI document with its path parameters filled in.
fn operations() -> Vec<(reqwest::Method, String, bool)> {
    let spec = serde_json::to_value(updraft::api::openapi::spec()).unwrap();
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let mut concrete = String::new();
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '{' => in_param = true,
                '}' => {
                    in_param = false;
                    concrete.push('1');
                }
                _ if !in_param => concrete.push(c),
                _ => {}
            }
        }
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = method.to_uppercase().parse::<reqwest::Method>() else {
                continue;
            };
            // `security: [{}]` marks the public operations.
            let public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            out.push((m, concrete.clone(), public));
        }
    }
    out
}

db_test!(
    every_non_public_endpoint_refuses_anonymous_callers_and_viewer_writes,
    |backend| async move {
        let app = spawn_app(backend).await;
        let viewer = app.client_as(Role::Viewer).await;
        let user = app.client_as(Role::User).await;
        let ops = operations();
        assert!(ops.len() > 60, "{} operations", ops.len());
        for (method, path, public) in ops {
            let url = app.url(&path);
            let res = app
                .anon
                .request(method.clone(), &url)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            if public {
                assert_ne!(
                    res.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} is public"
                );
                continue;
            }
            let (status, detail) = error_of(res).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "anonymous {method} {path}: {detail}"
            );
            let read = method == reqwest::Method::GET || path.ends_with("/list");
            if !read {
                let res = viewer
                    .request(method.clone(), &url)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                let (status, detail) = error_of(res).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "Viewer {method} {path}: {detail}"
                );
            }
            // Variables, connections, pools and users: not even a read for User.
            let op_only = ["/variables", "/connections", "/pools", "/users"]
                .iter()
                .any(|p| path.starts_with(&format!("/api/v2{p}")));
            if op_only && method == reqwest::Method::GET {
                let res = user.get(&url).send().await.unwrap();
                let (status, detail) = error_of(res).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "User {method} {path}: {detail}"
                );
            }
        }
    }
);

db_test!(
    oversized_and_malformed_bodies_get_4xx_with_detail,
    |backend| async move {
        let app = spawn_app(backend).await;
        let big = format!(
            "{{\"key\": \"k\", \"value\": \"{}\"}}",
            "x".repeat(9 * 1024 * 1024)
        );
        let res = app
            .client
            .post(app.url("/api/v2/variables"))
            .header("Content-Type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap();
        let (status, detail) = error_of(res).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{detail}");
        assert!(detail.contains("larger than the limit"), "{detail}");
        for (body, want) in [
            ("{not json", StatusCode::UNPROCESSABLE_ENTITY),
            (
                "{\"key\": 5, \"value\": \"v\"}",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ] {
            let res = app
                .client
                .post(app.url("/api/v2/variables"))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let (status, detail) = error_of(res).await;
            assert_eq!(status, want, "{body}: {detail}");
            assert!(!detail.is_empty());
        }
    }
);
