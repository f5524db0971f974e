//! Listing task instances: `GET .../dagRuns/{dag_run_id}/taskInstances` (query filters) and
//! `POST .../taskInstances/list` (the same filters in a body), with Airflow's names.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, JoinType, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Deserialize;
use updraft_shared::api::{TaskInstanceCollectionResponse, TaskInstancesBatchBody};
use updraft_shared::state::TaskInstanceState;

use super::common::{find_dag, find_run, operator_stored, responses};
use crate::api::query::{self, Page};
use crate::api::ApiError;
use crate::server::AppState;
use crate::store::dags::dag_version;
use crate::store::entities::{dag_run, task_instance};

/// The query of `get_task_instances` (Airflow's names; unknown parameters are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    #[serde(default, deserialize_with = "query::one_or_many")]
    pub order_by: Vec<String>,
    pub task_id: Option<String>,
    #[serde(default)]
    pub state: Vec<String>,
    #[serde(default)]
    pub pool: Vec<String>,
    #[serde(default)]
    pub queue: Vec<String>,
    #[serde(default)]
    pub executor: Vec<String>,
    #[serde(default)]
    pub operator: Vec<String>,
    #[serde(default)]
    pub version_number: Vec<i32>,
    #[serde(default)]
    pub try_number: Vec<i32>,
    #[serde(default)]
    pub map_index: Vec<i32>,
    pub task_display_name_pattern: Option<String>,
    pub task_display_name_prefix_pattern: Option<String>,
    pub dag_id_pattern: Option<String>,
    pub dag_id_prefix_pattern: Option<String>,
    pub run_id_pattern: Option<String>,
    pub run_id_prefix_pattern: Option<String>,
    pub pool_name_pattern: Option<String>,
    pub pool_name_prefix_pattern: Option<String>,
    pub queue_name_pattern: Option<String>,
    pub queue_name_prefix_pattern: Option<String>,
    pub operator_name_pattern: Option<String>,
    pub operator_name_prefix_pattern: Option<String>,
    pub rendered_map_index_pattern: Option<String>,
    pub rendered_map_index_prefix_pattern: Option<String>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub run_after_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub run_after_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub run_after_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub run_after_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub logical_date_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub logical_date_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub logical_date_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub logical_date_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub start_date_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub start_date_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub start_date_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub start_date_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub end_date_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub end_date_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub end_date_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub end_date_lte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub updated_at_gt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub updated_at_gte: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub updated_at_lt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_datetime")]
    pub updated_at_lte: Option<DateTime<Utc>>,
    pub duration_gt: Option<f64>,
    pub duration_gte: Option<f64>,
    pub duration_lt: Option<f64>,
    pub duration_lte: Option<f64>,
}

/// A column to sort by: the task instance's own or its run's.
#[derive(Debug, Clone, Copy)]
enum SortKey {
    Ti(task_instance::Column),
    Run(dag_run::Column),
}

const SORT_KEYS: &[(&str, SortKey)] = {
    use dag_run::Column as R;
    use task_instance::Column as T;
    use SortKey::{Run, Ti};
    &[
        ("id", Ti(T::Id)),
        ("state", Ti(T::State)),
        ("duration", Ti(T::Duration)),
        ("start_date", Ti(T::StartDate)),
        ("end_date", Ti(T::EndDate)),
        ("map_index", Ti(T::MapIndex)),
        ("rendered_map_index", Ti(T::MapIndex)),
        ("try_number", Ti(T::TryNumber)),
        ("max_tries", Ti(T::MaxTries)),
        ("task_id", Ti(T::TaskId)),
        ("task_display_name", Ti(T::TaskId)),
        ("dag_id", Ti(T::DagId)),
        ("run_id", Ti(T::RunId)),
        ("dag_run_id", Ti(T::RunId)),
        ("pool", Ti(T::Pool)),
        ("pool_slots", Ti(T::PoolSlots)),
        ("queue", Ti(T::Queue)),
        ("priority_weight", Ti(T::PriorityWeight)),
        ("operator", Ti(T::Operator)),
        ("operator_name", Ti(T::Operator)),
        ("hostname", Ti(T::Hostname)),
        ("queued_when", Ti(T::QueuedDttm)),
        ("scheduled_when", Ti(T::ScheduledDttm)),
        ("updated_at", Ti(T::UpdatedAt)),
        ("logical_date", Run(R::LogicalDate)),
        ("run_after", Run(R::RunAfter)),
        ("data_interval_start", Run(R::DataIntervalStart)),
        ("data_interval_end", Run(R::DataIntervalEnd)),
    ]
};

/// The filters both list endpoints end up with.
pub struct Filters {
    pub cond: Condition,
    pub version_numbers: Vec<i32>,
}

impl Default for Filters {
    fn default() -> Self {
        Self {
            cond: Condition::all(),
            version_numbers: Vec::new(),
        }
    }
}

impl Filters {
    fn add(&mut self, c: Condition) {
        self.cond = std::mem::replace(&mut self.cond, Condition::all()).add(c);
    }

    fn add_opt(&mut self, c: Option<Condition>) {
        if let Some(c) = c {
            self.add(c);
        }
    }

    fn any_of<C: ColumnTrait, V: Into<sea_orm::Value> + Clone>(&mut self, col: C, values: &[V]) {
        if !values.is_empty() {
            self.add(Condition::all().add(col.is_in(values.iter().cloned())));
        }
    }

    fn range<C: ColumnTrait, V: Into<sea_orm::Value> + Copy>(
        &mut self,
        col: C,
        [gt, gte, lt, lte]: [Option<V>; 4],
    ) {
        let mut c = Condition::all();
        if let Some(v) = gt {
            c = c.add(col.gt(v));
        }
        if let Some(v) = gte {
            c = c.add(col.gte(v));
        }
        if let Some(v) = lt {
            c = c.add(col.lt(v));
        }
        if let Some(v) = lte {
            c = c.add(col.lte(v));
        }
        self.add(c);
    }

    /// Task instances with no executor: a filter on executors matches none.
    fn executors(&mut self, executors: &[String]) {
        if !executors.is_empty() {
            self.add(never());
        }
    }
}

fn never() -> Condition {
    Condition::all().add(Expr::val(1).eq(0))
}

/// `x_prefix_pattern`: values starting with any of the `|` alternatives, case-insensitively.
fn prefix<C: ColumnTrait>(col: C, raw: Option<&str>) -> Option<Condition> {
    let raw = raw?.trim();
    if raw.is_empty() || raw == "~" {
        return None;
    }
    let mut any = Condition::any();
    for alt in raw.split('|').map(str::trim).filter(|a| !a.is_empty()) {
        let lowered: SimpleExpr = Func::lower(Expr::col((col.entity_name(), col))).into();
        any = any.add(lowered.like(format!("{}%", alt.to_lowercase())));
    }
    Some(any)
}

/// `state` values: Airflow's names, `no_status`/`none` for "no state yet". 422 otherwise.
fn state_filter(raw: &[Option<String>]) -> Result<Option<Condition>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let mut named = Vec::new();
    let mut none = false;
    for s in raw {
        match s.as_deref().map(str::trim) {
            None | Some("no_status" | "none" | "None" | "null") => none = true,
            Some(s) if TaskInstanceState::parse(s).is_some() || s == "awaiting_input" => {
                named.push(s.to_string())
            }
            Some(s) => {
                let valid: Vec<&str> = TaskInstanceState::ALL.iter().map(|s| s.as_str()).collect();
                return Err(ApiError::Unprocessable(format!(
                    "Invalid value for state: {s:?}. Valid values are {}, and no_status for task instances without a state",
                    valid.join(", ")
                )));
            }
        }
    }
    let mut any = Condition::any();
    if !named.is_empty() {
        any = any.add(task_instance::Column::State.is_in(named));
    }
    if none {
        any = any.add(task_instance::Column::State.is_null());
    }
    Ok(Some(any))
}

/// Filters of `dag_id`/`dag_run_id` path segments (`~` = all); 404 for an unknown DAG or run.
pub async fn path_scope(
    state: &AppState,
    dag_id: &str,
    run_id: &str,
) -> Result<Condition, ApiError> {
    use task_instance::Column as T;
    let mut cond = Condition::all();
    if dag_id != "~" {
        find_dag(state, dag_id).await?;
        cond = cond.add(T::DagId.eq(dag_id));
    }
    if run_id != "~" {
        if dag_id != "~" {
            // By the run's row id: the unique (dag_run_id, task_id, map_index) index serves it,
            // however long the DAG's history.
            let run = find_run(state, dag_id, run_id).await?;
            return Ok(Condition::all().add(T::DagRunId.eq(run.id)));
        } else {
            dag_run::Entity::find()
                .filter(dag_run::Column::RunId.eq(run_id))
                .one(state.db.conn())
                .await?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("DagRun with run_id: `{run_id}` was not found"))
                })?;
        }
        cond = cond.add(T::RunId.eq(run_id));
    }
    Ok(cond)
}

pub fn query_filters(q: &ListQuery) -> Result<Filters, ApiError> {
    use dag_run::Column as R;
    use task_instance::Column as T;
    let mut f = Filters::default();
    if let Some(task_id) = &q.task_id {
        f.add(Condition::all().add(T::TaskId.eq(task_id.as_str())));
    }
    let states: Vec<Option<String>> = q.state.iter().cloned().map(Some).collect();
    f.add_opt(state_filter(&states)?);
    f.any_of(T::Pool, &q.pool);
    f.any_of(T::Queue, &q.queue);
    let operators: Vec<String> = q.operator.iter().map(|o| operator_stored(o)).collect();
    f.any_of(T::Operator, &operators);
    f.any_of(T::TryNumber, &q.try_number);
    f.any_of(T::MapIndex, &q.map_index);
    f.executors(&q.executor);
    f.version_numbers = q.version_number.clone();
    for (col, pat, pre) in [
        (
            T::TaskId,
            &q.task_display_name_pattern,
            &q.task_display_name_prefix_pattern,
        ),
        (T::DagId, &q.dag_id_pattern, &q.dag_id_prefix_pattern),
        (T::RunId, &q.run_id_pattern, &q.run_id_prefix_pattern),
        (T::Pool, &q.pool_name_pattern, &q.pool_name_prefix_pattern),
        (
            T::Queue,
            &q.queue_name_pattern,
            &q.queue_name_prefix_pattern,
        ),
        (
            T::Operator,
            &q.operator_name_pattern,
            &q.operator_name_prefix_pattern,
        ),
    ] {
        f.add_opt(query::pattern(col, pat.as_deref()));
        f.add_opt(prefix(col, pre.as_deref()));
    }
    // No task instance has a rendered map index (nothing is mapped).
    for raw in [
        &q.rendered_map_index_pattern,
        &q.rendered_map_index_prefix_pattern,
    ] {
        if raw
            .as_deref()
            .is_some_and(|r| !r.trim().is_empty() && r.trim() != "~")
        {
            f.add(never());
        }
    }
    f.range(
        R::RunAfter,
        [
            q.run_after_gt,
            q.run_after_gte,
            q.run_after_lt,
            q.run_after_lte,
        ],
    );
    f.range(
        R::LogicalDate,
        [
            q.logical_date_gt,
            q.logical_date_gte,
            q.logical_date_lt,
            q.logical_date_lte,
        ],
    );
    f.range(
        T::StartDate,
        [
            q.start_date_gt,
            q.start_date_gte,
            q.start_date_lt,
            q.start_date_lte,
        ],
    );
    f.range(
        T::EndDate,
        [q.end_date_gt, q.end_date_gte, q.end_date_lt, q.end_date_lte],
    );
    f.range(
        T::UpdatedAt,
        [
            q.updated_at_gt,
            q.updated_at_gte,
            q.updated_at_lt,
            q.updated_at_lte,
        ],
    );
    f.range(
        T::Duration,
        [q.duration_gt, q.duration_gte, q.duration_lt, q.duration_lte],
    );
    Ok(f)
}

pub fn batch_filters(b: &TaskInstancesBatchBody) -> Result<Filters, ApiError> {
    use dag_run::Column as R;
    use task_instance::Column as T;
    let mut f = Filters::default();
    let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    f.any_of(T::DagId, &list(&b.dag_ids));
    f.any_of(T::RunId, &list(&b.dag_run_ids));
    f.any_of(T::TaskId, &list(&b.task_ids));
    f.any_of(T::Pool, &list(&b.pool));
    f.any_of(T::Queue, &list(&b.queue));
    f.executors(&list(&b.executor));
    if let Some(states) = &b.state {
        let states: Vec<Option<String>> = states
            .iter()
            .map(|s| s.map(|s| s.as_str().to_string()))
            .collect();
        f.add_opt(state_filter(&states)?);
    }
    f.range(
        R::RunAfter,
        [
            b.run_after_gt,
            b.run_after_gte,
            b.run_after_lt,
            b.run_after_lte,
        ],
    );
    f.range(
        R::LogicalDate,
        [
            b.logical_date_gt,
            b.logical_date_gte,
            b.logical_date_lt,
            b.logical_date_lte,
        ],
    );
    f.range(
        T::StartDate,
        [
            b.start_date_gt,
            b.start_date_gte,
            b.start_date_lt,
            b.start_date_lte,
        ],
    );
    f.range(
        T::EndDate,
        [b.end_date_gt, b.end_date_gte, b.end_date_lt, b.end_date_lte],
    );
    f.range(
        T::Duration,
        [b.duration_gt, b.duration_gte, b.duration_lt, b.duration_lte],
    );
    Ok(f)
}

/// One page of the task instances matching `scope` and `filters`, sorted by `order_by`
/// (default `map_index`; the id breaks ties).
pub async fn page(
    state: &AppState,
    scope: Condition,
    filters: Filters,
    order_by: &[String],
    page: Page,
) -> Result<TaskInstanceCollectionResponse, ApiError> {
    let sort = query::order_by(order_by, SORT_KEYS, "map_index")?;
    let conn = state.db.conn();
    let mut cond = scope.add(filters.cond);
    if !filters.version_numbers.is_empty() {
        let ids: Vec<i64> = dag_version::Entity::find()
            .select_only()
            .column(dag_version::Column::Id)
            .filter(dag_version::Column::VersionNumber.is_in(filters.version_numbers))
            .into_tuple()
            .all(conn)
            .await?;
        cond = cond.add(task_instance::Column::DagVersionId.is_in(ids));
    }
    let mut select = task_instance::Entity::find()
        .join(JoinType::InnerJoin, run_relation())
        .filter(cond);
    let total = select.clone().count(conn).await?;
    for (key, order) in sort {
        select = match key {
            SortKey::Ti(c) => select.order_by(c, order),
            SortKey::Run(c) => select.order_by(c, order),
        };
    }
    let tis = select
        .order_by(task_instance::Column::Id, Order::Asc)
        .limit(page.limit)
        // PostgreSQL's OFFSET is a bigint.
        .offset(page.offset.min(i64::MAX as u64))
        .all(conn)
        .await?;
    Ok(TaskInstanceCollectionResponse {
        task_instances: responses(conn, &tis).await?,
        total_entries: total as i64,
    })
}

/// task_instance → its dag_run (the entities declare no relations).
fn run_relation() -> sea_orm::RelationDef {
    task_instance::Entity::belongs_to(dag_run::Entity)
        .from(task_instance::Column::DagRunId)
        .to(dag_run::Column::Id)
        .into()
}
