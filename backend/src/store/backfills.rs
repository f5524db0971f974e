//! Backfills (Airflow 3's): runs of a scheduled DAG over a past range of logical dates,
//! created at once as queued `backfill` runs. What a request means (the checks Airflow makes,
//! the dates the DAG's timetable gives, which existing runs are run again), creating one with
//! its audit entry, and when one is complete. For the API and the CLI alike.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::prelude::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use updraft_shared::api::{BackfillPostBody, ReprocessBehavior};
use updraft_shared::state::{DagRunState, DagRunType};

use crate::scheduler::graph::run_id;
use crate::scheduler::loaded::{DagCache, LoadedDag};
use crate::scheduler::timetable::{DagRunInfo, Restriction, Timetable};
use crate::scheduler::trigger::{self, TriggerError};
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::{backfill, dag_run};
use crate::store::run_ops::{self, OpError};
use crate::store::runs::{self, CreateRunError, NewRun};
use crate::store::{Db, StoreError};

/// More runs than this in one backfill is a mistake in the range, not a plan.
const MAX_RUNS: usize = 10_000;

/// The runs a backfill makes: each date with the run it reprocesses, if any.
pub struct Plan {
    pub dag: Arc<LoadedDag>,
    pub conf: serde_json::Map<String, serde_json::Value>,
    pub behavior: ReprocessBehavior,
    pub items: Vec<(DagRunInfo, Option<dag_run::Model>)>,
}

/// Whether a backfill runs an existing run again (Airflow's `_get_dag_run_no_create_reason`):
/// never one still queued or running.
fn reprocesses(run: &dag_run::Model, behavior: ReprocessBehavior) -> bool {
    match DagRunState::parse(&run.state) {
        Some(DagRunState::Failed) => behavior != ReprocessBehavior::None,
        Some(DagRunState::Success) => behavior == ReprocessBehavior::Completed,
        _ => false,
    }
}

/// Checks the request as Airflow does and works out the runs (a dry run's answer).
pub async fn plan(db: &Db, cache: &DagCache, body: &BackfillPostBody) -> Result<Plan, OpError> {
    if body.from_date > body.to_date {
        return Err(OpError::Invalid(format!(
            "from_date ({}) is after to_date ({}): swap them",
            crate::timefmt::iso(body.from_date),
            crate::timefmt::iso(body.to_date)
        )));
    }
    if body.max_active_runs < 1 {
        return Err(OpError::Invalid(
            "max_active_runs must be at least 1".into(),
        ));
    }
    let conf = match &body.dag_run_conf {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(OpError::Invalid(
                "dag_run_conf must be a JSON object like {\"key\": \"value\"}".into(),
            ))
        }
    };
    let dag = trigger::runnable_dag(db, cache, &body.dag_id)
        .await
        .map_err(|e| match e {
            TriggerError::NotFound(_) => {
                OpError::NotFound(format!("Could not find dag {}", body.dag_id))
            }
            TriggerError::Store(e) => OpError::Store(e),
            other => OpError::BadRequest(other.to_string()),
        })?;
    let timetable = match &dag.timetable {
        Ok(t @ Timetable::Cron(_)) => t,
        Ok(_) => {
            return Err(OpError::Conflict(format!(
                "{} has no schedule to backfill: it needs a cron or preset schedule such as @daily",
                body.dag_id
            )))
        }
        Err(e) => {
            return Err(OpError::BadRequest(format!(
                "the schedule of {} is invalid: {e}",
                body.dag_id
            )))
        }
    };
    let behavior = body.reprocess_behavior.unwrap_or_default();
    let depends_on_past = (0..dag.dag.tasks.len()).any(|i| dag.depends_on_past(i));
    if depends_on_past && body.run_backwards {
        return Err(OpError::Invalid(
            "Backfill cannot be run in reverse when the DAG has tasks where depends_on_past=True."
                .into(),
        ));
    }
    if depends_on_past && behavior == ReprocessBehavior::None {
        return Err(OpError::Invalid(
            "DAG has tasks for which depends_on_past=True. You must set reprocess behavior to reprocess completed or reprocess failed.".into(),
        ));
    }
    let now = Utc::now();
    if body.from_date >= now && body.to_date >= now {
        return Err(OpError::Invalid(
            "Backfill cannot be executed for future dates.".into(),
        ));
    }
    trigger::check_params(&dag.dag.params, &conf)
        .map_err(|e| OpError::BadRequest(format!("dag_run_conf: {e}")))?;

    // Airflow's `iter_dagrun_infos_between` with catchup, keeping intervals already over.
    let restriction = Restriction {
        earliest: Some(body.from_date),
        latest: Some(body.to_date),
        catchup: true,
    };
    let mut infos = Vec::new();
    let mut last = None;
    while let Some(info) = timetable.next_dagrun_info(last, restriction, now) {
        if info.data_interval.end >= now {
            break;
        }
        if infos.len() == MAX_RUNS {
            return Err(OpError::Invalid(format!(
                "the range holds more than {MAX_RUNS} runs of {}: backfill a shorter range",
                body.dag_id
            )));
        }
        last = Some(info.data_interval);
        infos.push(info);
    }
    let mut existing: HashMap<DateTime<Utc>, dag_run::Model> = dag_run::Entity::find()
        .filter(dag_run::Column::DagId.eq(&body.dag_id))
        .filter(dag_run::Column::LogicalDate.gte(body.from_date))
        .filter(dag_run::Column::LogicalDate.lte(body.to_date))
        .all(db.conn())
        .await?
        .into_iter()
        .filter_map(|r| Some((r.logical_date?, r)))
        .collect();
    let mut items: Vec<(DagRunInfo, Option<dag_run::Model>)> = infos
        .into_iter()
        .filter_map(|info| match existing.remove(&info.logical_date()) {
            None => Some((info, None)),
            Some(run) => reprocesses(&run, behavior).then_some((info, Some(run))),
        })
        .collect();
    if body.run_backwards {
        items.reverse();
    }
    Ok(Plan {
        dag,
        conf,
        behavior,
        items,
    })
}

/// A backfill created.
pub struct Created {
    pub id: i64,
    /// Tries of reprocessed runs taken from their workers (to stop them).
    pub taken: Vec<i64>,
}

/// Creates the backfill `plan` works out for `body`, its new runs queued and the runs it
/// reprocesses cleared, with `entry` (event and owner; the DAG and the request are added,
/// the conf as `shown_conf`, secrets masked) in the same transaction. Conflict while another
/// backfill of the DAG is unfinished.
pub async fn create(
    db: &Db,
    body: &BackfillPostBody,
    plan: Plan,
    entry: AuditEntry,
    shown_conf: serde_json::Value,
) -> Result<Created, OpError> {
    let unfinished = backfill::Entity::find()
        .filter(backfill::Column::DagId.eq(&body.dag_id))
        .filter(backfill::Column::CompletedAt.is_null())
        .all(db.conn())
        .await?;
    if completed_at(db.conn(), &unfinished)
        .await?
        .iter()
        .any(Option::is_none)
    {
        return Err(OpError::Conflict(format!(
            "There is already a running backfill for dag {}: cancel it or wait for it to end",
            body.dag_id
        )));
    }
    let now = crate::timefmt::now();
    let conf_text = serde_json::Value::Object(plan.conf.clone()).to_string();
    let triggering_user = entry.owner.clone();
    let txn = db.conn().begin().await?;
    audit::record(
        &txn,
        entry.dag(&body.dag_id).extra(serde_json::json!({
            "from_date": body.from_date,
            "to_date": body.to_date,
            "run_backwards": body.run_backwards,
            "reprocess_behavior": plan.behavior.as_str(),
            "max_active_runs": body.max_active_runs,
            "dag_run_conf": shown_conf,
            "runs": plan.items.len(),
        })),
    )
    .await?;
    let id = backfill::Entity::insert(backfill::ActiveModel {
        dag_id: Set(body.dag_id.clone()),
        from_date: Set(body.from_date),
        to_date: Set(body.to_date),
        dag_run_conf: Set(conf_text),
        is_paused: Set(false),
        reprocess_behavior: Set(plan.behavior.as_str().into()),
        max_active_runs: Set(body.max_active_runs),
        run_backwards: Set(body.run_backwards),
        created_at: Set(now),
        completed_at: Set(None),
        updated_at: Set(now),
        triggering_user: Set(triggering_user),
        ..Default::default()
    })
    .exec(&txn)
    .await?
    .last_insert_id;
    let mut taken = Vec::new();
    for (info, existing) in &plan.items {
        match existing {
            Some(run) => {
                let tis = run_ops::clearable(&txn, run.id, false, false).await?;
                taken.extend(run_ops::clear(&txn, run, &tis, Some(&plan.dag), now).await?);
                dag_run::Entity::update_many()
                    .col_expr(dag_run::Column::BackfillId, Expr::value(id))
                    .col_expr(
                        dag_run::Column::RunType,
                        Expr::value(DagRunType::Backfill.as_str()),
                    )
                    .col_expr(dag_run::Column::TriggeredBy, Expr::value("backfill"))
                    .filter(dag_run::Column::Id.eq(run.id))
                    .exec(&txn)
                    .await?;
            }
            None => {
                let new = NewRun {
                    run_id: run_id(DagRunType::Backfill, info.logical_date()),
                    run_type: DagRunType::Backfill,
                    logical_date: Some(info.logical_date()),
                    data_interval: Some(info.data_interval),
                    run_after: info.run_after,
                    conf: plan.conf.clone(),
                    note: None,
                    triggered_by: "backfill".into(),
                    state: DagRunState::Queued,
                    queue_override: None,
                    backfill_id: Some(id),
                    audit: None,
                };
                runs::create_run_in(&txn, &plan.dag, new, now)
                    .await
                    .map_err(|e| match e {
                        CreateRunError::Duplicate { .. } => OpError::Conflict(e.to_string()),
                        CreateRunError::Store(e) => OpError::Store(e),
                    })?;
            }
        }
    }
    txn.commit().await?;
    Ok(Created { id, taken })
}

/// When each backfill ended: when cancelled, or when its last run finished (a backfill whose
/// runs have all finished is complete even before anything recorded it); None while running.
pub async fn completed_at(
    conn: &impl ConnectionTrait,
    rows: &[backfill::Model],
) -> Result<Vec<Option<DateTime<Utc>>>, StoreError> {
    let open: Vec<i64> = rows
        .iter()
        .filter(|b| b.completed_at.is_none())
        .map(|b| b.id)
        .collect();
    // backfill id → (any run unfinished, latest end)
    let mut progress: HashMap<i64, (bool, Option<DateTime<Utc>>)> = HashMap::new();
    if !open.is_empty() {
        let runs: Vec<(Option<i64>, String, Option<DateTime<Utc>>)> = dag_run::Entity::find()
            .select_only()
            .columns([
                dag_run::Column::BackfillId,
                dag_run::Column::State,
                dag_run::Column::EndDate,
            ])
            .filter(dag_run::Column::BackfillId.is_in(open))
            .into_tuple()
            .all(conn)
            .await?;
        for (id, run_state, end) in runs {
            let Some(id) = id else { continue };
            let entry = progress.entry(id).or_default();
            entry.0 |= !DagRunState::parse(&run_state).is_some_and(DagRunState::is_finished);
            entry.1 = entry.1.max(end);
        }
    }
    Ok(rows
        .iter()
        .map(|b| {
            b.completed_at.or_else(|| match progress.get(&b.id) {
                Some((true, _)) => None,
                Some((false, end)) => Some(end.unwrap_or(b.created_at)),
                None => Some(b.created_at),
            })
        })
        .collect())
}
