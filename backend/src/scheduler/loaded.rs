//! A DAG version ready for the engine: the parsed model, its graph, each task's effective
//! settings (`default_args` merged under the task's own) and priority weights. Versions never
//! change once stored, so they are cached by id for the life of the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::EntityTrait;
use updraft_shared::dag::{Dag, TaskArgs, TriggerRule};

use super::graph::TaskGraph;
use chrono::{DateTime, Utc};

use super::timetable::{DataInterval, Restriction, Timetable};
use crate::store::dags::dag_version;
use crate::store::{Db, StoreError};

/// Airflow's default `retry_delay`.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(300);
pub const DEFAULT_POOL: &str = "default_pool";
pub const DEFAULT_QUEUE: &str = "default";

#[derive(Debug)]
pub struct LoadedDag {
    pub version_id: i64,
    pub dag: Dag,
    pub graph: TaskGraph,
    /// Effective settings per task, by task index.
    pub args: Vec<TaskArgs>,
    pub weights: Vec<i64>,
    pub timetable: Result<Timetable, String>,
    /// Tasks with no downstream: they decide a finished run's state.
    pub leaves: Vec<usize>,
    /// The DAG file's folder relative to the DAG folder (scripts are found from there).
    pub fileloc: String,
}

impl LoadedDag {
    pub fn new(version_id: i64, dag: Dag, fileloc: String) -> Self {
        let graph = TaskGraph::of(&dag);
        let weights = graph.priority_weights(&dag);
        let args = dag
            .tasks
            .iter()
            .map(|t| merge(&dag.default_args, &t.args))
            .collect();
        let leaves = (0..dag.tasks.len())
            .filter(|i| graph.downstream[*i].is_empty())
            .collect();
        let timetable = Timetable::of(&dag);
        Self {
            version_id,
            dag,
            graph,
            args,
            weights,
            timetable,
            leaves,
            fileloc,
        }
    }

    /// The data interval of a manual run at `run_after` (Airflow's
    /// `infer_manual_data_interval`; the instant itself if the schedule does not parse).
    pub fn manual_interval(&self, run_after: DateTime<Utc>) -> DataInterval {
        match &self.timetable {
            Ok(t) => t.infer_manual_data_interval(run_after),
            Err(_) => DataInterval {
                start: run_after,
                end: run_after,
            },
        }
    }

    pub fn restriction(&self) -> Restriction {
        Restriction::of(&self.dag)
    }

    pub fn trigger_rule(&self, i: usize) -> TriggerRule {
        self.args[i].trigger_rule.unwrap_or(TriggerRule::AllSuccess)
    }

    pub fn retries(&self, i: usize) -> u32 {
        self.args[i].retries.unwrap_or(0)
    }

    pub fn pool(&self, i: usize) -> &str {
        self.args[i].pool.as_deref().unwrap_or(DEFAULT_POOL)
    }

    pub fn pool_slots(&self, i: usize) -> u32 {
        self.args[i].pool_slots.unwrap_or(1).max(1)
    }

    pub fn queue(&self, i: usize) -> &str {
        self.args[i].queue.as_deref().unwrap_or(DEFAULT_QUEUE)
    }

    pub fn depends_on_past(&self, i: usize) -> bool {
        self.args[i].depends_on_past.unwrap_or(false)
    }

    pub fn owner(&self, i: usize) -> String {
        self.args[i]
            .owner
            .clone()
            .or_else(|| self.dag.owner.clone())
            .unwrap_or_else(|| "updraft".into())
    }

    /// Airflow's wait before retry number `try_number` + 1: `retry_delay`, doubled after each
    /// failed try with `retry_exponential_backoff`, capped by `max_retry_delay`.
    pub fn retry_delay(&self, i: usize, try_number: u32) -> Duration {
        let args = &self.args[i];
        let base = args
            .retry_delay
            .map(|d| d.as_std())
            .unwrap_or(DEFAULT_RETRY_DELAY);
        let mut delay = base;
        if args.retry_exponential_backoff.unwrap_or(false) {
            let factor = 2u32.saturating_pow(try_number.saturating_sub(1).min(30));
            delay = base.saturating_mul(factor);
        }
        if let Some(max) = args.max_retry_delay {
            delay = delay.min(max.as_std());
        }
        delay
    }
}

/// A task's own settings over the DAG's `default_args`.
fn merge(defaults: &TaskArgs, own: &TaskArgs) -> TaskArgs {
    macro_rules! pick {
        ($($field:ident),*) => {
            TaskArgs { $($field: own.$field.clone().or_else(|| defaults.$field.clone())),* }
        };
    }
    pick!(
        owner,
        retries,
        retry_delay,
        retry_exponential_backoff,
        max_retry_delay,
        execution_timeout,
        pool,
        pool_slots,
        priority_weight,
        weight_rule,
        depends_on_past,
        trigger_rule,
        queue
    )
}

/// Loaded DAG versions by id.
#[derive(Debug, Default)]
pub struct DagCache {
    versions: Mutex<HashMap<i64, Arc<LoadedDag>>>,
}

impl DagCache {
    pub async fn get(&self, db: &Db, version_id: i64) -> Result<Arc<LoadedDag>, StoreError> {
        if let Some(found) = self.versions.lock().expect("cache lock").get(&version_id) {
            return Ok(found.clone());
        }
        let row = dag_version::Entity::find_by_id(version_id)
            .one(db.conn())
            .await?
            .ok_or_else(|| {
                StoreError::Db(sea_orm::DbErr::RecordNotFound(format!(
                    "DAG version {version_id}"
                )))
            })?;
        let dag: Dag = serde_json::from_str(&row.dag_json).map_err(|e| {
            StoreError::Db(sea_orm::DbErr::Custom(format!(
                "DAG version {version_id} of {} cannot be read: {e}",
                row.dag_id
            )))
        })?;
        let loaded = Arc::new(LoadedDag::new(version_id, dag, row.fileloc));
        self.versions
            .lock()
            .expect("cache lock")
            .insert(version_id, loaded.clone());
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use updraft_shared::dag::parse_dag;

    fn loaded(yaml: &str) -> LoadedDag {
        LoadedDag::new(1, parse_dag(yaml.as_bytes()).unwrap(), "d.yaml".into())
    }

    #[test]
    fn task_settings_override_default_args() {
        let d = loaded(
            "dag_id: d\ndefault_args: {retries: 2, pool: p, queue: q}\ntasks:\n  - {id: a, operator: empty}\n  - {id: b, operator: empty, retries: 0, pool: other}\n",
        );
        assert_eq!((d.retries(0), d.pool(0), d.queue(0)), (2, "p", "q"));
        assert_eq!((d.retries(1), d.pool(1), d.queue(1)), (0, "other", "q"));
        assert_eq!(d.leaves, [0, 1]);
    }

    #[test]
    fn retry_delays_follow_airflow() {
        let d = loaded("dag_id: d\ntasks:\n  - {id: a, operator: empty}\n");
        assert_eq!(d.retry_delay(0, 1), DEFAULT_RETRY_DELAY);
        let d = loaded(
            "dag_id: d\ndefault_args: {retry_delay: 10s, retry_exponential_backoff: true, max_retry_delay: 1m}\ntasks:\n  - {id: a, operator: empty}\n",
        );
        let secs: Vec<u64> = (1..=5).map(|t| d.retry_delay(0, t).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 60, 60]);
        // A huge try number neither overflows nor panics.
        assert_eq!(d.retry_delay(0, u32::MAX).as_secs(), 60);
    }
}
