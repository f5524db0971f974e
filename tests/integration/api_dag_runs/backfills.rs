//! Backfills through Airflow 3's API: dry run, create, reprocessing, pause/unpause/cancel.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use updraft::auth::Role;
use updraft::store::entities::dag_run;

use super::{audit_count, dates, post, quiet, send, tis};
use crate::db_test;
use crate::engine_helpers::*;
use crate::helpers::*;

/// A daily DAG, paused so that only the backfill makes runs (which stay queued).
const DAILY: &str = "dag_id: daily\nschedule: \"@daily\"\nstart_date: 2024-01-01\ncatchup: false\nis_paused_upon_creation: true\ntasks:\n  - {id: only, operator: empty}\n";

db_test!(
    backfills_dry_run_create_reprocess_and_cancel,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(&app, "daily", DAILY).await;
        write_dag(&app, "manual", &quiet("manual")).await;
        // A run already exists on Jan 3rd (queued: in flight, never reprocessed).
        trigger(
            &app,
            "daily",
            json!({"logical_date": "2024-01-03T00:00:00+00:00"}),
        )
        .await;
        let range = json!({"dag_id": "daily", "from_date": "2024-01-01T00:00:00+00:00", "to_date": "2024-01-05T00:00:00Z"});

        let (status, dry) = post(
            &app,
            &app.client,
            "/api/v2/backfills/dry_run",
            range.clone(),
        )
        .await;
        assert_eq!(status, 200, "{dry}");
        assert_eq!(dry["total_entries"], 4);
        assert_eq!(
            dates(&dry["backfills"], "logical_date"),
            [
                "2024-01-01T00:00:00Z",
                "2024-01-02T00:00:00Z",
                "2024-01-04T00:00:00Z",
                "2024-01-05T00:00:00Z"
            ]
        );
        let mut backwards = range.clone();
        backwards["run_backwards"] = json!(true);
        let (_, dry) = post(&app, &app.client, "/api/v2/backfills/dry_run", backwards).await;
        assert_eq!(
            dates(&dry["backfills"], "logical_date")[0],
            "2024-01-05T00:00:00Z"
        );

        // Bad requests.
        let bad = [
            (
                json!({"dag_id": "daily", "from_date": "2024-01-05T00:00:00Z", "to_date": "2024-01-01T00:00:00Z"}),
                422,
            ),
            (
                json!({"dag_id": "daily", "from_date": "2024-01-01T00:00:00", "to_date": "2024-01-05T00:00:00Z"}),
                422,
            ),
            (
                json!({"dag_id": "daily", "from_date": "2999-01-01T00:00:00Z", "to_date": "2999-01-05T00:00:00Z"}),
                422,
            ),
            (
                json!({"dag_id": "daily", "to_date": "2024-01-05T00:00:00Z"}),
                422,
            ),
            (
                json!({"dag_id": "daily", "from_date": "2024-01-01T00:00:00Z", "to_date": "2024-01-05T00:00:00Z", "reprocess_behavior": "always"}),
                422,
            ),
            (
                json!({"dag_id": "nope", "from_date": "2024-01-01T00:00:00Z", "to_date": "2024-01-05T00:00:00Z"}),
                404,
            ),
            (
                json!({"dag_id": "manual", "from_date": "2024-01-01T00:00:00Z", "to_date": "2024-01-05T00:00:00Z"}),
                409,
            ),
        ];
        for (body, want) in bad {
            for path in ["/api/v2/backfills/dry_run", "/api/v2/backfills"] {
                let (status, answer) = post(&app, &app.client, path, body.clone()).await;
                assert_eq!(status, want, "{path} {body}: {answer}");
                assert!(answer["detail"].is_string(), "{answer}");
            }
        }
        let viewer = app.client_as(Role::Viewer).await;
        let (status, _) = post(&app, &viewer, "/api/v2/backfills", range.clone()).await;
        assert_eq!(status, 403);
        let res = app
            .anon
            .get(app.url("/api/v2/backfills"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);

        // Create: one backfill, its runs queued.
        let mut create = range.clone();
        create["dag_run_conf"] = json!({"source": "backfill"});
        create["max_active_runs"] = json!(2);
        let (status, backfill) = post(&app, &app.client, "/api/v2/backfills", create.clone()).await;
        assert_eq!(status, 200, "{backfill}");
        let id = backfill["id"].as_i64().expect("an integer id");
        assert_eq!(backfill["dag_id"], "daily");
        assert_eq!(backfill["dag_display_name"], "daily");
        assert_eq!(backfill["is_paused"], false);
        assert_eq!(backfill["reprocess_behavior"], "none");
        assert_eq!(backfill["max_active_runs"], 2);
        assert_eq!(backfill["dag_run_conf"], json!({"source": "backfill"}));
        assert_eq!(backfill["from_date"], "2024-01-01T00:00:00Z");
        assert!(backfill["completed_at"].is_null(), "{backfill}");
        for key in ["created_at", "updated_at"] {
            assert!(backfill[key].is_string(), "{key}: {backfill}");
        }
        let (_, runs) = app
            .get_json("/api/v2/dags/daily/dagRuns?run_type=backfill&order_by=logical_date")
            .await;
        assert_eq!(runs["total_entries"], 4, "{runs}");
        let run = &runs["dag_runs"][0];
        assert_eq!(run["dag_run_id"], "backfill__2024-01-01T00:00:00+00:00");
        assert_eq!(run["triggered_by"], "backfill");
        assert_eq!(run["triggering_user_name"], ADMIN_USER);
        assert_eq!(run["conf"], json!({"source": "backfill"}));
        assert_eq!(run["data_interval_end"], "2024-01-02T00:00:00Z");
        let rows = dag_run::Entity::find()
            .filter(dag_run::Column::BackfillId.eq(id))
            .count(app.db.conn())
            .await
            .unwrap();
        assert_eq!(rows, 4);
        assert_eq!(
            tis(&app, "daily", "backfill__2024-01-01T00:00:00+00:00").await["only"].0,
            "none"
        );

        // One backfill at a time per DAG.
        let (status, answer) = post(&app, &app.client, "/api/v2/backfills", range.clone()).await;
        assert_eq!(status, 409, "{answer}");

        // Read, list, pause, unpause.
        let (status, got) = app.get_json(&format!("/api/v2/backfills/{id}")).await;
        assert_eq!((status, &got["id"]), (200, &json!(id)));
        let (status, _) = app.get_json("/api/v2/backfills/99999").await;
        assert_eq!(status, 404);
        let (status, _) = app.get_json("/api/v2/backfills/abc").await;
        assert_eq!(status, 422);
        let (status, listed) = send(
            &app,
            &viewer,
            reqwest::Method::GET,
            "/api/v2/backfills?dag_id=daily",
            None,
        )
        .await;
        assert_eq!((status, &listed["total_entries"]), (200, &json!(1)));
        let (_, listed) = app.get_json("/api/v2/backfills?dag_id=manual").await;
        assert_eq!(listed["total_entries"], 0);
        let (status, _) = app.get_json("/api/v2/backfills?order_by=color").await;
        assert_eq!(status, 400);
        let put = |what: &str| format!("/api/v2/backfills/{id}/{what}");
        let (status, _) = send(&app, &viewer, reqwest::Method::PUT, &put("pause"), None).await;
        assert_eq!(status, 403);
        let (status, b) = send(&app, &app.client, reqwest::Method::PUT, &put("pause"), None).await;
        assert_eq!((status, &b["is_paused"]), (200, &json!(true)));
        let (status, b) = send(
            &app,
            &app.client,
            reqwest::Method::PUT,
            &put("unpause"),
            None,
        )
        .await;
        assert_eq!((status, &b["is_paused"]), (200, &json!(false)));

        // Cancel: the queued runs fail, the backfill is complete; nothing more to change.
        let (status, b) = send(
            &app,
            &app.client,
            reqwest::Method::PUT,
            &put("cancel"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{b}");
        assert!(b["completed_at"].is_string(), "{b}");
        let (_, runs) = app
            .get_json("/api/v2/dags/daily/dagRuns?run_type=backfill&state=failed")
            .await;
        assert_eq!(runs["total_entries"], 4, "{runs}");
        let (status, _) = send(&app, &app.client, reqwest::Method::PUT, &put("pause"), None).await;
        assert_eq!(status, 409);
        let (status, _) = send(
            &app,
            &app.client,
            reqwest::Method::PUT,
            "/api/v2/backfills/99999/cancel",
            None,
        )
        .await;
        assert_eq!(status, 404);

        // Reprocessing: the failed runs come back, the queued one on Jan 3rd never does.
        let mut again = range.clone();
        again["reprocess_behavior"] = json!("failed");
        let (_, dry) = post(
            &app,
            &app.client,
            "/api/v2/backfills/dry_run",
            again.clone(),
        )
        .await;
        assert_eq!(dry["total_entries"], 4, "{dry}");
        let (_, dry) = post(
            &app,
            &app.client,
            "/api/v2/backfills/dry_run",
            range.clone(),
        )
        .await;
        assert_eq!(dry["total_entries"], 0, "{dry}");
        let (status, second) = post(&app, &app.client, "/api/v2/backfills", again).await;
        assert_eq!(status, 200, "{second}");
        let (_, runs) = app
            .get_json("/api/v2/dags/daily/dagRuns?run_type=backfill&state=queued")
            .await;
        assert_eq!(runs["total_entries"], 4, "{runs}");
        let rows = dag_run::Entity::find()
            .filter(dag_run::Column::BackfillId.eq(second["id"].as_i64().unwrap()))
            .count(app.db.conn())
            .await
            .unwrap();
        assert_eq!(rows, 4);

        for event in [
            "create_backfill",
            "pause_backfill",
            "unpause_backfill",
            "cancel_backfill",
        ] {
            assert!(audit_count(&app, event).await >= 1, "{event}");
        }
        assert_eq!(audit_count(&app, "create_backfill").await, 2);
    }
);

db_test!(
    a_backfill_runs_at_most_its_max_active_runs_at_once,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(
            &app,
            "slow_daily",
            "dag_id: slow_daily\nschedule: \"@daily\"\nstart_date: 2024-01-01\ncatchup: false\nis_paused_upon_creation: false\ntasks:\n  - id: nap\n    operator: bash\n    with: {bash_command: 'sleep 0.3'}\n",
        )
        .await;
        let body = json!({"dag_id": "slow_daily", "from_date": "2024-01-01T00:00:00Z",
            "to_date": "2024-01-04T00:00:00Z", "max_active_runs": 1});
        let (status, backfill) = post(&app, &app.client, "/api/v2/backfills", body).await;
        assert_eq!(status, 200, "{backfill}");
        let id = backfill["id"].as_i64().unwrap();
        let started = std::time::Instant::now();
        let mut most = 0;
        loop {
            let runs = dag_run::Entity::find()
                .filter(dag_run::Column::BackfillId.eq(id))
                .all(app.db.conn())
                .await
                .unwrap();
            assert_eq!(runs.len(), 4);
            let running = runs.iter().filter(|r| r.state == "running").count();
            most = most.max(running);
            if runs.iter().all(|r| r.state == "success") {
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "backfill did not finish: {runs:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(most, 1, "max_active_runs 1 was exceeded");
        // The scheduler marks the backfill completed with its last run.
        let waited = std::time::Instant::now();
        loop {
            let row = updraft::store::entities::backfill::Entity::find_by_id(id)
                .one(app.db.conn())
                .await
                .unwrap()
                .unwrap();
            if row.completed_at.is_some() {
                break;
            }
            assert!(
                waited.elapsed() < PATIENCE,
                "the backfill was never completed: {row:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
);

db_test!(
    backfill_runs_yield_to_other_runs_of_the_dag,
    |backend| async move {
        let app = spawn_app(backend).await;
        // Paused, so that everything is queued before anything starts; one run at a time.
        write_dag(
            &app,
            "yielding",
            "dag_id: yielding\nschedule: \"@daily\"\nstart_date: 2024-01-01\ncatchup: false\nis_paused_upon_creation: true\nmax_active_runs: 1\ntasks:\n  - {id: only, operator: bash, with: {bash_command: 'true'}}\n",
        )
        .await;
        let body = json!({"dag_id": "yielding", "from_date": "2024-01-01T00:00:00Z",
            "to_date": "2024-01-03T00:00:00Z", "max_active_runs": 3});
        let (status, backfill) = post(&app, &app.client, "/api/v2/backfills", body).await;
        assert_eq!(status, 200, "{backfill}");
        trigger(&app, "yielding", json!({"dag_run_id": "manual_one"})).await;
        unpause(&app, "yielding").await;
        let started = std::time::Instant::now();
        loop {
            let runs = dag_run::Entity::find()
                .filter(dag_run::Column::DagId.eq("yielding"))
                .all(app.db.conn())
                .await
                .unwrap();
            if runs
                .iter()
                .filter(|r| r.backfill_id.is_some() || r.run_id == "manual_one")
                .all(|r| r.state == "success")
            {
                let manual = runs.iter().find(|r| r.run_id == "manual_one").unwrap();
                for r in runs.iter().filter(|r| r.backfill_id.is_some()) {
                    assert!(
                        manual.start_date < r.start_date,
                        "the manual run starts before backfill run {}: {runs:?}",
                        r.run_id
                    );
                }
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "runs did not finish: {runs:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
);

db_test!(
    a_backfill_run_backwards_starts_its_latest_run_first,
    |backend| async move {
        let app = spawn_app(backend).await;
        write_dag(
            &app,
            "backwards",
            "dag_id: backwards\nschedule: \"@daily\"\nstart_date: 2024-01-01\ncatchup: false\nis_paused_upon_creation: false\ntasks:\n  - {id: only, operator: bash, with: {bash_command: 'true'}}\n",
        )
        .await;
        let body = json!({"dag_id": "backwards", "from_date": "2024-01-01T00:00:00Z",
            "to_date": "2024-01-03T00:00:00Z", "max_active_runs": 1, "run_backwards": true});
        let (status, backfill) = post(&app, &app.client, "/api/v2/backfills", body).await;
        assert_eq!(status, 200, "{backfill}");
        let id = backfill["id"].as_i64().unwrap();
        let started = std::time::Instant::now();
        loop {
            let mut runs = dag_run::Entity::find()
                .filter(dag_run::Column::BackfillId.eq(id))
                .all(app.db.conn())
                .await
                .unwrap();
            if runs.iter().all(|r| r.state == "success") {
                runs.sort_by_key(|r| r.start_date);
                let order: Vec<_> = runs.iter().map(|r| r.logical_date).collect();
                let mut latest_first = order.clone();
                latest_first.sort_by(|a, b| b.cmp(a));
                assert_eq!(order, latest_first, "{runs:?}");
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "runs did not finish: {runs:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
);
