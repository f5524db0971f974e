//! Users (`ab_user`, as Airflow's FAB auth manager names it), the audit log (`log`, Airflow's
//! name), backfills (`backfill`) and a note on task instances (Airflow 3 has one).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum AbUser {
    Table,
    Id,
    Username,
    PasswordHash,
    Role,
    FirstName,
    LastName,
    Email,
    Active,
    CreatedOn,
    ChangedOn,
    LastLogin,
}

#[derive(DeriveIden, Clone, Copy)]
enum Log {
    Table,
    Id,
    Dttm,
    Event,
    Owner,
    DagId,
    TaskId,
    RunId,
    MapIndex,
    TryNumber,
    LogicalDate,
    Extra,
}

#[derive(DeriveIden, Clone, Copy)]
enum Backfill {
    Table,
    Id,
    DagId,
    FromDate,
    ToDate,
    DagRunConf,
    IsPaused,
    ReprocessBehavior,
    MaxActiveRuns,
    RunBackwards,
    CreatedAt,
    CompletedAt,
    UpdatedAt,
    TriggeringUser,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskInstance {
    Table,
    Note,
}

fn id<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn time<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use AbUser as U;
        manager
            .create_table(
                Table::create()
                    .table(U::Table)
                    .col(id(U::Id))
                    .col(ColumnDef::new(U::Username).string_len(512).not_null())
                    .col(ColumnDef::new(U::PasswordHash).string_len(512).not_null())
                    .col(ColumnDef::new(U::Role).string_len(20).not_null())
                    .col(
                        ColumnDef::new(U::FirstName)
                            .string_len(256)
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(U::LastName)
                            .string_len(256)
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(U::Email)
                            .string_len(512)
                            .not_null()
                            .default(""),
                    )
                    .col(ColumnDef::new(U::Active).boolean().not_null().default(true))
                    .col(time(U::CreatedOn).not_null())
                    .col(time(U::ChangedOn).not_null())
                    .col(time(U::LastLogin))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_ab_user_username")
                    .table(U::Table)
                    .col(U::Username)
                    .unique()
                    .to_owned(),
            )
            .await?;

        use Log as L;
        manager
            .create_table(
                Table::create()
                    .table(L::Table)
                    .col(id(L::Id))
                    .col(time(L::Dttm).not_null())
                    .col(ColumnDef::new(L::Event).string_len(60).not_null())
                    .col(ColumnDef::new(L::Owner).string_len(500))
                    .col(ColumnDef::new(L::DagId).string_len(250))
                    .col(ColumnDef::new(L::TaskId).string_len(250))
                    .col(ColumnDef::new(L::RunId).string_len(250))
                    .col(ColumnDef::new(L::MapIndex).integer())
                    .col(ColumnDef::new(L::TryNumber).integer())
                    .col(time(L::LogicalDate))
                    .col(ColumnDef::new(L::Extra).text())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_log_dttm")
                    .table(L::Table)
                    .col(L::Dttm)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_log_dag_id")
                    .table(L::Table)
                    .col(L::DagId)
                    .to_owned(),
            )
            .await?;

        use Backfill as B;
        manager
            .create_table(
                Table::create()
                    .table(B::Table)
                    .col(id(B::Id))
                    .col(ColumnDef::new(B::DagId).string_len(250).not_null())
                    .col(time(B::FromDate).not_null())
                    .col(time(B::ToDate).not_null())
                    .col(ColumnDef::new(B::DagRunConf).text().not_null())
                    .col(
                        ColumnDef::new(B::IsPaused)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(B::ReprocessBehavior)
                            .string_len(20)
                            .not_null(),
                    )
                    .col(ColumnDef::new(B::MaxActiveRuns).integer().not_null())
                    .col(
                        ColumnDef::new(B::RunBackwards)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(time(B::CreatedAt).not_null())
                    .col(time(B::CompletedAt))
                    .col(time(B::UpdatedAt).not_null())
                    .col(ColumnDef::new(B::TriggeringUser).string_len(512))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_backfill_dag_id")
                    .table(B::Table)
                    .col(B::DagId)
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(TaskInstance::Table)
                    .add_column(ColumnDef::new(TaskInstance::Note).text())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TaskInstance::Table)
                    .drop_column(TaskInstance::Note)
                    .to_owned(),
            )
            .await?;
        for table in [
            Backfill::Table.into_iden(),
            Log::Table.into_iden(),
            AbUser::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
