//! `job` rows: one per running component (scheduler, triggerer, DAG processor), each with a
//! heartbeat. Health reports a component healthy while its newest heartbeat is recent.

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder};

use super::{Db, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub job_type: String,
    pub state: String,
    pub hostname: String,
    pub pid: i32,
    pub start_date: DateTimeUtc,
    pub end_date: Option<DateTimeUtc>,
    pub latest_heartbeat: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Airflow's job types, as stored in `job.job_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobType {
    Scheduler,
    Triggerer,
    DagProcessor,
    /// Runs task instances; its job id owns their leases.
    Worker,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Scheduler => "SchedulerJob",
            JobType::Triggerer => "TriggererJob",
            JobType::DagProcessor => "DagProcessorJob",
            JobType::Worker => "WorkerJob",
        }
    }
}

/// Registers a running component and returns its job id.
pub async fn start(db: &Db, job_type: JobType, hostname: &str) -> Result<i64, StoreError> {
    let now = Utc::now();
    let row = ActiveModel {
        job_type: Set(job_type.as_str().to_string()),
        state: Set("running".into()),
        hostname: Set(hostname.to_string()),
        pid: Set(std::process::id() as i32),
        start_date: Set(now),
        end_date: Set(None),
        latest_heartbeat: Set(now),
        ..Default::default()
    }
    .insert(db.conn())
    .await?;
    Ok(row.id)
}

/// Records that the component is alive at `at`.
pub async fn heartbeat(db: &Db, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::LatestHeartbeat, Expr::value(at))
        .filter(Column::Id.eq(id))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// The newest heartbeat of any job of this type, if one ever ran.
pub async fn latest_heartbeat(
    db: &Db,
    job_type: JobType,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let newest = Entity::find()
        .filter(Column::JobType.eq(job_type.as_str()))
        .order_by_desc(Column::LatestHeartbeat)
        .one(db.conn())
        .await?;
    Ok(newest.map(|job| job.latest_heartbeat))
}
