//! `GET /api/v2/monitor/health` (public): Airflow 3's `HealthInfoResponse`.
//!
//! As in Airflow the answer is 200 whatever the components' states; each component says
//! `healthy`, `unhealthy`, or null when it is not deployed.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use updraft_shared::api::{
    BaseInfoResponse, DagProcessorInfoResponse, HealthInfoResponse, SchedulerInfoResponse,
    TriggererInfoResponse, HEALTHY, UNHEALTHY,
};

use crate::server::AppState;
use crate::store::job::{self, JobType};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/monitor/health").get(get_health));
}

/// Get the health of the metadata database and of the scheduler, triggerer and DAG processor.
#[utoipa::path(
    get,
    path = "/api/v2/monitor/health",
    operation_id = "get_health",
    tag = "Monitor",
    security(()),
    responses((status = 200, description = "Successful Response", body = HealthInfoResponse))
)]
pub async fn get_health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(health(&state).await)
}

pub async fn health(state: &AppState) -> HealthInfoResponse {
    let db = &state.db;
    let metadatabase = match tokio::time::timeout(Duration::from_secs(5), db.ping()).await {
        Ok(Ok(())) => HEALTHY,
        Ok(Err(e)) => {
            tracing::warn!("health: metadata database ping failed: {e}");
            UNHEALTHY
        }
        Err(_) => {
            tracing::warn!("health: metadata database ping timed out after 5s");
            UNHEALTHY
        }
    };
    let threshold = state.config.settings.scheduler.health_check_threshold;
    let now = Utc::now();
    // Without a database there are no heartbeats to read: Airflow then reports the
    // scheduler unhealthy and the optional components unknown.
    let beat = |job_type| async move {
        if metadatabase != HEALTHY {
            return None;
        }
        job::latest_heartbeat(db, job_type)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(
                    "health: reading {} heartbeats failed: {e}",
                    job_type.as_str()
                );
                None
            })
    };
    let status = |latest: Option<DateTime<Utc>>, unknown: Option<&str>| match latest {
        Some(at) if (now - at).to_std().unwrap_or_default() <= threshold => {
            Some(HEALTHY.to_string())
        }
        Some(_) => Some(UNHEALTHY.to_string()),
        None => unknown.map(str::to_string),
    };
    let fmt =
        |at: Option<DateTime<Utc>>| at.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, false));

    let scheduler = beat(JobType::Scheduler).await;
    let triggerer = beat(JobType::Triggerer).await;
    let dag_processor = beat(JobType::DagProcessor).await;
    HealthInfoResponse {
        metadatabase: BaseInfoResponse {
            status: Some(metadatabase.to_string()),
        },
        scheduler: SchedulerInfoResponse {
            status: status(scheduler, Some(UNHEALTHY)),
            latest_scheduler_heartbeat: fmt(scheduler),
        },
        triggerer: TriggererInfoResponse {
            status: status(triggerer, None),
            latest_triggerer_heartbeat: fmt(triggerer),
        },
        dag_processor: DagProcessorInfoResponse {
            status: status(dag_processor, None),
            latest_dag_processor_heartbeat: fmt(dag_processor),
        },
    }
}
