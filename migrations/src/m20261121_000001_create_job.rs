//! `job`: one row per running Updraft component (scheduler, triggerer, DAG processor, …)
//! with its heartbeat, as Airflow's `job` table. The health endpoint reads it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

// Column names mirror Airflow's `job` table, hence `JobType` inside `Job`.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Job {
    Table,
    Id,
    JobType,
    State,
    Hostname,
    Pid,
    StartDate,
    EndDate,
    LatestHeartbeat,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Job::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Job::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Job::JobType).string_len(30).not_null())
                    .col(ColumnDef::new(Job::State).string_len(20).not_null())
                    .col(ColumnDef::new(Job::Hostname).string_len(500).not_null())
                    .col(ColumnDef::new(Job::Pid).integer().not_null())
                    .col(
                        ColumnDef::new(Job::StartDate)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Job::EndDate).timestamp_with_time_zone())
                    .col(
                        ColumnDef::new(Job::LatestHeartbeat)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_type_heartbeat")
                    .table(Job::Table)
                    .col(Job::JobType)
                    .col(Job::LatestHeartbeat)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Job::Table).to_owned())
            .await
    }
}
