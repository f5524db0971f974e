//! Which DAGs a list (or a bulk patch) covers: Airflow's `get_dags` query parameters.
//!
//! Column filters run in SQL; tags, owners and the last run's state are matched here, and the
//! page is cut after sorting, so `total_entries` counts every match. A DAG folder holds
//! hundreds of DAGs, not millions: reading their rows is cheap.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QuerySelect};
use serde::Deserialize;
use updraft_shared::state::DagRunState;

use super::view::{owners_of, tags_of, timetable_type, BUNDLE_NAME};
use crate::api::query::{self, Page};
use crate::api::ApiError;
use crate::server::AppState;
use crate::store::dags::dag;
use crate::store::entities::dag_run;

/// The query of `GET /api/v2/dags` and `PATCH /api/v2/dags`. Parameters Airflow's clients
/// may send that mean nothing here (assets, favorites) are accepted and match as Airflow
/// would match a deployment without any.
#[derive(Debug, Default, Deserialize)]
pub struct DagListQuery {
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `any` (the default) or `all`.
    pub tags_match_mode: Option<String>,
    #[serde(default)]
    pub owners: Vec<String>,
    pub dag_id_pattern: Option<String>,
    pub dag_id_prefix_pattern: Option<String>,
    pub dag_display_name_pattern: Option<String>,
    pub dag_display_name_prefix_pattern: Option<String>,
    /// Default true: DAGs whose file is gone are left out.
    pub exclude_stale: Option<bool>,
    /// Airflow 2's name of the opposite of `exclude_stale`.
    pub only_active: Option<bool>,
    pub paused: Option<bool>,
    pub has_import_errors: Option<bool>,
    #[serde(default)]
    pub last_dag_run_state: Vec<String>,
    pub bundle_name: Option<String>,
    pub bundle_version: Option<String>,
    pub has_asset_schedule: Option<bool>,
    pub asset_dependency: Option<String>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub dag_run_start_date_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub dag_run_start_date_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub dag_run_start_date_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub dag_run_start_date_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub dag_run_end_date_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub dag_run_end_date_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub dag_run_end_date_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub dag_run_end_date_lt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub dag_run_state: Vec<String>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    pub order_by: Vec<String>,
    pub is_favorite: Option<bool>,
    #[serde(default)]
    pub timetable_type: Vec<String>,
    /// `PATCH /api/v2/dags` only: the fields to change (just `is_paused`).
    #[serde(default)]
    pub update_mask: Vec<String>,
}

/// The newest run of a DAG, for `last_dag_run_state` and sorting by it.
#[derive(Debug, Clone)]
pub struct LastRun {
    pub state: String,
    pub start_date: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    DagId,
    NextDagrun,
    LastRunState,
    LastRunStartDate,
    IsPaused,
    Fileloc,
    LastParsedTime,
}

const SORT_KEYS: [(&str, SortKey); 10] = [
    ("dag_id", SortKey::DagId),
    ("dag_display_name", SortKey::DagId),
    ("next_dagrun", SortKey::NextDagrun),
    ("last_run_state", SortKey::LastRunState),
    ("state", SortKey::LastRunState),
    ("last_run_start_date", SortKey::LastRunStartDate),
    ("start_date", SortKey::LastRunStartDate),
    ("is_paused", SortKey::IsPaused),
    ("fileloc", SortKey::Fileloc),
    ("last_parsed_time", SortKey::LastParsedTime),
];

/// The DAGs matching `q`, sorted, one page of them, and how many match in all.
pub async fn select(
    state: &AppState,
    q: &DagListQuery,
) -> Result<(Vec<dag::Model>, i64), ApiError> {
    let sort = query::order_by(&q.order_by, &SORT_KEYS, "dag_id")?;
    let tags_all = match q.tags_match_mode.as_deref().map(str::trim) {
        None | Some("") | Some("any") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::Unprocessable(format!(
                "tags_match_mode: {other:?} is not one of `any`, `all`"
            )))
        }
    };
    let last_states = run_states("last_dag_run_state", &q.last_dag_run_state)?;
    let run_states_filter = run_states("dag_run_state", &q.dag_run_state)?;
    let page = Page::new(&state.config.settings.api, q.limit, q.offset);

    // What this deployment has none of: no assets, no favorites, one unversioned bundle.
    let matches_nothing = q.bundle_name.as_deref().is_some_and(|b| b != BUNDLE_NAME)
        || q.bundle_version.as_deref().is_some_and(|v| !v.is_empty())
        || q.has_asset_schedule == Some(true)
        || q.asset_dependency.as_deref().is_some_and(|a| !a.is_empty())
        || q.is_favorite == Some(true);
    if matches_nothing {
        return Ok((Vec::new(), 0));
    }

    let mut cond = Condition::all();
    let exclude_stale = q.exclude_stale.or(q.only_active).unwrap_or(true);
    if exclude_stale {
        cond = cond.add(dag::Column::IsStale.eq(false));
    }
    if let Some(paused) = q.paused {
        cond = cond.add(dag::Column::IsPaused.eq(paused));
    }
    if let Some(errors) = q.has_import_errors {
        cond = cond.add(dag::Column::HasImportErrors.eq(errors));
    }
    // The display name is the dag_id.
    for raw in [&q.dag_id_pattern, &q.dag_display_name_pattern] {
        if let Some(c) = query::pattern(dag::Column::DagId, raw.as_deref()) {
            cond = cond.add(c);
        }
    }
    for raw in [&q.dag_id_prefix_pattern, &q.dag_display_name_prefix_pattern] {
        if let Some(c) = prefix(dag::Column::DagId, raw.as_deref()) {
            cond = cond.add(c);
        }
    }
    let mut rows = dag::Entity::find()
        .filter(cond)
        .all(state.db.conn())
        .await?;

    if let Some(with_runs) = dags_with_matching_runs(state, q, &run_states_filter).await? {
        rows.retain(|d| with_runs.contains(&d.dag_id));
    }
    if !q.tags.is_empty() {
        rows.retain(|d| {
            let tags = tags_of(d);
            let has = |t: &String| tags.contains(t);
            if tags_all {
                q.tags.iter().all(has)
            } else {
                q.tags.iter().any(has)
            }
        });
    }
    if !q.owners.is_empty() {
        rows.retain(|d| owners_of(d).iter().any(|o| q.owners.contains(o)));
    }
    if !q.timetable_type.is_empty() {
        rows.retain(|d| {
            let kind = timetable_type(d.schedule.as_deref());
            q.timetable_type
                .iter()
                .any(|t| t == kind || t.rsplit('.').next() == Some(kind))
        });
    }

    let needs_last_run = !last_states.is_empty()
        || sort
            .iter()
            .any(|(k, _)| matches!(k, SortKey::LastRunState | SortKey::LastRunStartDate));
    let last_runs = if needs_last_run {
        last_runs(state, &rows).await?
    } else {
        HashMap::new()
    };
    if !last_states.is_empty() {
        rows.retain(|d| {
            last_runs
                .get(&d.dag_id)
                .is_some_and(|r| last_states.contains(&r.state))
        });
    }

    rows.sort_by(|a, b| {
        sort.iter()
            .map(|(key, order)| {
                let o = compare(*key, a, b, &last_runs);
                if *order == Order::Desc {
                    o.reverse()
                } else {
                    o
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.dag_id.cmp(&b.dag_id))
    });
    let total = rows.len() as i64;
    let page_rows = rows
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .collect();
    Ok((page_rows, total))
}

/// Values of a `DagRunState` list parameter, checked (422 names the bad one).
fn run_states(param: &str, raw: &[String]) -> Result<Vec<String>, ApiError> {
    raw.iter()
        .flat_map(|r| r.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            DagRunState::parse(s)
                .map(|st| st.as_str().to_string())
                .ok_or_else(|| {
                    ApiError::Unprocessable(format!(
                        "{param}: {s:?} is not a DAG run state; use one of: queued, running, success, failed"
                    ))
                })
        })
        .collect()
}

/// A `*_prefix_pattern` filter: the value starts with the text (case-insensitive).
fn prefix<C: ColumnTrait>(col: C, raw: Option<&str>) -> Option<Condition> {
    let raw = raw?.trim();
    if raw.is_empty() || raw == "~" {
        return None;
    }
    let lowered: SimpleExpr = Func::lower(Expr::col((col.entity_name(), col))).into();
    Some(Condition::all().add(lowered.like(format!("{}%", raw.to_lowercase()))))
}

/// The DAGs having at least one run that matches the `dag_run_*` parameters; None when none
/// of them was given.
async fn dags_with_matching_runs(
    state: &AppState,
    q: &DagListQuery,
    states: &[String],
) -> Result<Option<HashSet<String>>, ApiError> {
    use dag_run::Column as R;
    let bounds = [
        (R::StartDate, q.dag_run_start_date_gte, Cmp::Gte),
        (R::StartDate, q.dag_run_start_date_gt, Cmp::Gt),
        (R::StartDate, q.dag_run_start_date_lte, Cmp::Lte),
        (R::StartDate, q.dag_run_start_date_lt, Cmp::Lt),
        (R::EndDate, q.dag_run_end_date_gte, Cmp::Gte),
        (R::EndDate, q.dag_run_end_date_gt, Cmp::Gt),
        (R::EndDate, q.dag_run_end_date_lte, Cmp::Lte),
        (R::EndDate, q.dag_run_end_date_lt, Cmp::Lt),
    ];
    if states.is_empty() && bounds.iter().all(|(_, v, _)| v.is_none()) {
        return Ok(None);
    }
    let mut cond = Condition::all();
    if !states.is_empty() {
        cond = cond.add(R::State.is_in(states.iter().cloned()));
    }
    for (col, value, cmp) in bounds {
        if let Some(v) = value {
            cond = cond.add(match cmp {
                Cmp::Gte => col.gte(v),
                Cmp::Gt => col.gt(v),
                Cmp::Lte => col.lte(v),
                Cmp::Lt => col.lt(v),
            });
        }
    }
    let ids: Vec<String> = dag_run::Entity::find()
        .select_only()
        .column(R::DagId)
        .distinct()
        .filter(cond)
        .into_tuple()
        .all(state.db.conn())
        .await?;
    Ok(Some(ids.into_iter().collect()))
}

#[derive(Clone, Copy)]
enum Cmp {
    Gte,
    Gt,
    Lte,
    Lt,
}

/// The newest run (the last created) of each of `dags`.
pub async fn last_runs(
    state: &AppState,
    dags: &[dag::Model],
) -> Result<HashMap<String, LastRun>, ApiError> {
    use dag_run::Column as R;
    if dags.is_empty() {
        return Ok(HashMap::new());
    }
    let newest: Vec<Option<i64>> = dag_run::Entity::find()
        .select_only()
        .column_as(Expr::col(R::Id).max(), "id")
        .filter(R::DagId.is_in(dags.iter().map(|d| d.dag_id.clone())))
        .group_by(R::DagId)
        .into_tuple()
        .all(state.db.conn())
        .await?;
    let ids: Vec<i64> = newest.into_iter().flatten().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let runs: Vec<(String, String, Option<DateTime<Utc>>)> = dag_run::Entity::find()
        .select_only()
        .columns([R::DagId, R::State, R::StartDate])
        .filter(R::Id.is_in(ids))
        .into_tuple()
        .all(state.db.conn())
        .await?;
    Ok(runs
        .into_iter()
        .map(|(dag_id, state, start_date)| (dag_id, LastRun { state, start_date }))
        .collect())
}

/// One sort key, ascending, with nulls last (PostgreSQL's order; descending reverses it).
fn compare(
    key: SortKey,
    a: &dag::Model,
    b: &dag::Model,
    last: &HashMap<String, LastRun>,
) -> Ordering {
    fn nulls_last<T: Ord>(a: Option<T>, b: Option<T>) -> Ordering {
        match (a, b) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    let run = |d: &dag::Model| last.get(&d.dag_id);
    match key {
        SortKey::DagId => a.dag_id.cmp(&b.dag_id),
        SortKey::NextDagrun => nulls_last(a.next_dagrun, b.next_dagrun),
        SortKey::LastRunState => nulls_last(run(a).map(|r| &r.state), run(b).map(|r| &r.state)),
        SortKey::LastRunStartDate => nulls_last(
            run(a).and_then(|r| r.start_date),
            run(b).and_then(|r| r.start_date),
        ),
        SortKey::IsPaused => a.is_paused.cmp(&b.is_paused),
        SortKey::Fileloc => a.fileloc.cmp(&b.fileloc),
        SortKey::LastParsedTime => nulls_last(a.last_parsed_time, b.last_parsed_time),
    }
}
