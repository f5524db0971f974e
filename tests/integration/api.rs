//! The HTTP surface: version, health, JSON errors, the UI fallback.

use chrono::Utc;
use updraft::store::job::{self, JobType};

use crate::db_test;
use crate::helpers::*;

db_test!(version_is_public_and_airflow_shaped, |backend| async move {
    let app = spawn_app(backend).await;
    let res = app.get("/api/v2/version").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        body.as_object().unwrap().contains_key("git_version"),
        "{body}"
    );
});

db_test!(health_reports_a_real_database_ping, |backend| async move {
    let app = spawn_app_without_engine(backend).await;
    let (status, body) = app.get_json("/api/v2/monitor/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["metadatabase"]["status"], "healthy");
    // No scheduler has ever run: Airflow says unhealthy for it, null for optional components.
    assert_eq!(body["scheduler"]["status"], "unhealthy");
    assert!(body["scheduler"]["latest_scheduler_heartbeat"].is_null());
    assert!(body["triggerer"]["status"].is_null());
    assert!(body["dag_processor"].is_object(), "{body}");

    // Once the database is gone the same endpoint says so (still 200, as Airflow).
    app.db.clone().close().await;
    let (status, body) = app.get_json("/api/v2/monitor/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["metadatabase"]["status"], "unhealthy");
});

db_test!(health_follows_component_heartbeats, |backend| async move {
    let app = spawn_app_without_engine(backend).await;
    let id = job::start(&app.db, JobType::Scheduler, "host-a")
        .await
        .unwrap();
    let (_, body) = app.get_json("/api/v2/monitor/health").await;
    assert_eq!(body["scheduler"]["status"], "healthy", "{body}");
    let beat = body["scheduler"]["latest_scheduler_heartbeat"]
        .as_str()
        .unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(beat).is_ok(), "{beat}");

    // A heartbeat older than scheduler.health_check_threshold (30 s) is unhealthy.
    let stale = Utc::now() - chrono::Duration::seconds(120);
    job::heartbeat(&app.db, id, stale).await.unwrap();
    let (_, body) = app.get_json("/api/v2/monitor/health").await;
    assert_eq!(body["scheduler"]["status"], "unhealthy", "{body}");

    job::start(&app.db, JobType::DagProcessor, "host-b")
        .await
        .unwrap();
    let (_, body) = app.get_json("/api/v2/monitor/health").await;
    assert_eq!(body["dag_processor"]["status"], "healthy", "{body}");
    assert!(body["triggerer"]["status"].is_null());
});

db_test!(unknown_api_paths_are_json_404s, |backend| async move {
    let app = spawn_app(backend).await;
    for path in [
        "/api/v2/nope",
        "/api/v2/dags/x/nothing/y",
        "/api/v1/version",
        "/api",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(res.headers()["content-type"], "application/json", "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["detail"], "Not Found", "{path}");
    }
});

db_test!(wrong_method_is_a_json_405, |backend| async move {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .post(app.url("/api/v2/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "Method Not Allowed");
});

db_test!(
    client_routes_serve_the_spa_and_missing_assets_404,
    |backend| async move {
        let app = spawn_app(backend).await;
        for path in ["/", "/dags", "/dags/tutorial/grid", "/health"] {
            let res = app.get(path).await;
            assert_eq!(res.status(), 200, "{path}");
            let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
            assert!(ctype.starts_with("text/html"), "{path}: {ctype}");
            let body = res.text().await.unwrap();
            assert!(body.contains("Updraft"), "{path}: {body}");
            if !updraft::ui::is_embedded() {
                assert!(
                    body.contains("scripts/build-ui.sh"),
                    "the not-built page says how to build"
                );
            }
        }
        let res = app.get("/no-such-bundle-0123.js").await;
        assert_eq!(res.status(), 404);
    }
);

db_test!(
    embedded_assets_are_cached_and_revalidated,
    |backend| async move {
        if !updraft::ui::is_embedded() {
            panic!("the UI is not embedded in this build: run scripts/build-ui.sh before the tests (scripts/test.sh does)");
        }
        let app = spawn_app(backend).await;
        let index = app.get("/").await.text().await.unwrap();
        let wasm = index
            .split('"')
            .find(|s| s.ends_with(".wasm"))
            .expect("index.html references the wasm bundle")
            .to_string();
        let res = app.get(&wasm).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/wasm");
        assert!(res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let etag = res.headers()["etag"].clone();
        let again = app
            .client
            .get(app.url(&wasm))
            .header("If-None-Match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
    }
);
