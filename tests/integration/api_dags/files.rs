//! Updraft's DAG file endpoints: validate, upload (then run), remove.

use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use updraft::auth::Role;
use updraft::store::entities::audit_log;

use super::{detail, ids, send};
use crate::db_test;
use crate::engine_helpers::*;
use crate::helpers::*;

const UPLOADED: &str = r#"dag_id: uploaded
is_paused_upon_creation: false
tasks:
  - {id: hello, operator: bash, with: {bash_command: "echo hi"}}
"#;

db_test!(
    dag_files_are_validated_uploaded_and_removed,
    |backend| async move {
        let app = spawn_app_with(backend, &[("UPDRAFT__CORE__DAG_FILE_MAX_BYTES", "4096")]).await;
        let yaml = |client: &reqwest::Client, method: reqwest::Method, path: &str, body: &str| {
            send(
                client
                    .request(method, app.url(path))
                    .header("Content-Type", "application/yaml")
                    .body(body.to_string()),
            )
        };

        // Validation: the verdict, with every problem's line.
        let (status, body) = yaml(
            &app.client,
            Method::POST,
            "/api/v2/dagFiles/validate",
            UPLOADED,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"valid": true, "dag_id": "uploaded", "diagnostics": []})
        );
        let bad = "dag_id: bad\ntasks:\n  - id: a\n    operator: bash\n  - {id: b, operator: empty, depends_on: [zz]}\n";
        let (status, body) =
            yaml(&app.client, Method::POST, "/api/v2/dagFiles/validate", bad).await;
        assert_eq!(status, 200);
        assert_eq!(body["valid"], false);
        assert!(body["dag_id"].is_null());
        let lines: Vec<i64> = body["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["line"].as_i64().unwrap())
            .collect();
        assert!(lines == [4, 5], "{body}");
        assert!(body["diagnostics"][0]["column"].as_i64().unwrap() >= 1);
        assert!(body["diagnostics"][0]["message"].is_string());
        let (status, body) = yaml(
            &app.client,
            Method::POST,
            "/api/v2/dagFiles/validate",
            "a: [",
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["valid"], false, "{body}");
        assert!(
            body["diagnostics"][0]["line"].as_i64().unwrap() >= 1,
            "{body}"
        );
        let (status, body) = send(
            app.client
                .post(app.url("/api/v2/dagFiles/validate"))
                .json(&json!({"dag_id": "x"})),
        )
        .await;
        assert_eq!(status, 415);
        assert!(detail(&body).contains("application/yaml"), "{body}");
        let big = format!("{UPLOADED}# {}\n", "x".repeat(5000));
        let (status, body) =
            yaml(&app.client, Method::POST, "/api/v2/dagFiles/validate", &big).await;
        assert_eq!(status, 413, "{body}");
        assert!(detail(&body).contains("dag_file_max_bytes"), "{body}");
        let viewer = app.client_as(Role::Viewer).await;
        let (status, _) = yaml(&viewer, Method::POST, "/api/v2/dagFiles/validate", UPLOADED).await;
        assert_eq!(status, 403);
        let (status, _) = yaml(
            &app.anon,
            Method::POST,
            "/api/v2/dagFiles/validate",
            UPLOADED,
        )
        .await;
        assert_eq!(status, 401);

        // Upload: visible at once, and runnable.
        let (status, body) = yaml(
            &app.client,
            Method::PUT,
            "/api/v2/dagFiles/uploaded.yaml",
            UPLOADED,
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["dag_id"], "uploaded");
        assert_eq!(body["version_number"], 1);
        assert_eq!(body["relative_fileloc"], "uploaded.yaml");
        let on_disk = app.config.dags_folder.join("uploaded.yaml");
        assert_eq!(std::fs::read_to_string(&on_disk).unwrap(), UPLOADED);
        let (status, dag) = app.get_json("/api/v2/dags/uploaded").await;
        assert_eq!(status, 200, "{dag}");
        assert_eq!(dag["is_paused"], false);
        let run_id = run_id_of(&trigger(&app, "uploaded", json!({})).await);
        let run = wait_for_run(&app, "uploaded", &run_id).await;
        assert_eq!(run["state"], "success", "{run}");

        // The same text again changes nothing; new text is a new version.
        let (status, body) = yaml(
            &app.client,
            Method::PUT,
            "/api/v2/dagFiles/uploaded.yaml",
            UPLOADED,
        )
        .await;
        assert_eq!(
            (status, body["version_number"].clone()),
            (200, json!(1)),
            "{body}"
        );
        let changed = UPLOADED.replace("echo hi", "echo bye");
        let (status, body) = yaml(
            &app.client,
            Method::PUT,
            "/api/v2/dagFiles/uploaded.yaml",
            &changed,
        )
        .await;
        assert_eq!(
            (status, body["version_number"].clone()),
            (200, json!(2)),
            "{body}"
        );
        let (_, src) = app.get_json("/api/v2/dagSources/uploaded").await;
        assert_eq!(src["content"], changed.as_str());

        // Refused: a broken file (nothing written), a dag_id another file has, bad names.
        let (status, body) = yaml(&app.client, Method::PUT, "/api/v2/dagFiles/bad.yaml", bad).await;
        assert_eq!(status, 422, "{body}");
        assert!(detail(&body).contains("bad.yaml"), "{body}");
        assert!(!body["diagnostics"].as_array().unwrap().is_empty());
        assert!(!app.config.dags_folder.join("bad.yaml").exists());
        let (status, body) = yaml(
            &app.client,
            Method::PUT,
            "/api/v2/dagFiles/other.yaml",
            UPLOADED,
        )
        .await;
        assert_eq!(status, 409, "{body}");
        assert!(detail(&body).contains("uploaded.yaml"), "{body}");
        for name in [
            "..%2Fevil.yaml",
            "%2E%2E%2Fevil.yaml",
            "sub%2Fdag.yaml",
            ".hidden.yaml",
            "dag.txt",
            "..",
        ] {
            let (status, body) = yaml(
                &app.client,
                Method::PUT,
                &format!("/api/v2/dagFiles/{name}"),
                UPLOADED,
            )
            .await;
            assert!(status == 400 || status == 404, "{name}: {status} {body}");
        }
        let (status, body) = yaml(
            &app.client,
            Method::PUT,
            "/api/v2/dagFiles/..%2Fevil.yaml",
            UPLOADED,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(detail(&body).contains(".yaml"), "{body}");
        assert!(!app
            .config
            .dags_folder
            .parent()
            .unwrap()
            .join("evil.yaml")
            .exists());
        let user = app.client_as(Role::User).await;
        let (status, _) = yaml(&user, Method::PUT, "/api/v2/dagFiles/x.yaml", UPLOADED).await;
        assert_eq!(status, 403);
        let (status, _) = yaml(&viewer, Method::PUT, "/api/v2/dagFiles/x.yaml", UPLOADED).await;
        assert_eq!(status, 403);
        let audited = audit_log::Entity::find()
            .filter(audit_log::Column::Event.eq("upload_dag_file"))
            .count(app.db.conn())
            .await
            .unwrap();
        assert_eq!(audited, 3);

        // Removal: the DAG is stale at once, its runs stay.
        let (status, _) = send(viewer.delete(app.url("/api/v2/dagFiles/uploaded.yaml"))).await;
        assert_eq!(status, 403);
        let (status, body) =
            send(app.client.delete(app.url("/api/v2/dagFiles/uploaded.yaml"))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stale_dag_ids"], json!(["uploaded"]));
        assert!(!on_disk.exists());
        let (_, dag) = app.get_json("/api/v2/dags/uploaded").await;
        assert_eq!(dag["is_stale"], true);
        let (_, list) = app.get_json("/api/v2/dags").await;
        assert_eq!(list["total_entries"], 0);
        let (_, list) = app.get_json("/api/v2/dags?exclude_stale=false").await;
        assert_eq!(ids(&list), ["uploaded"]);
        let (status, _) = app.get_json(&run_path("uploaded", &run_id)).await;
        assert_eq!(status, 200);
        let (status, body) =
            send(app.client.delete(app.url("/api/v2/dagFiles/uploaded.yaml"))).await;
        assert_eq!(status, 404, "{body}");
    }
);
