//! The engine's tables, named after Airflow's: `dag_run`, `task_instance` (the current try of
//! each task of a run, with the worker's lease), `task_instance_history` (one row per finished
//! try), `xcom`, `slot_pool` (with `default_pool`), `variable` and `connection`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum DagRun {
    Table,
    Id,
    DagId,
    RunId,
    RunType,
    State,
    LogicalDate,
    DataIntervalStart,
    DataIntervalEnd,
    RunAfter,
    QueuedAt,
    StartDate,
    EndDate,
    Conf,
    Note,
    TriggeredBy,
    DagVersionId,
    BackfillId,
    ClearNumber,
    LastSchedulingDecision,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskInstance {
    Table,
    Id,
    DagRunId,
    DagId,
    RunId,
    TaskId,
    MapIndex,
    State,
    TryNumber,
    MaxTries,
    StartDate,
    EndDate,
    Duration,
    Operator,
    Pool,
    PoolSlots,
    Queue,
    PriorityWeight,
    Hostname,
    QueuedDttm,
    ScheduledDttm,
    NextRetryAt,
    LeaseOwner,
    LeaseExpiresAt,
    RenderedFields,
    DagVersionId,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskInstanceHistory {
    Table,
    Id,
    TaskInstanceId,
    DagRunId,
    DagId,
    RunId,
    TaskId,
    MapIndex,
    TryNumber,
    MaxTries,
    State,
    StartDate,
    EndDate,
    Duration,
    Operator,
    Pool,
    PoolSlots,
    Queue,
    PriorityWeight,
    Hostname,
    RenderedFields,
    DagVersionId,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Xcom {
    Table,
    DagRunId,
    TaskId,
    MapIndex,
    Key,
    DagId,
    RunId,
    Value,
    Timestamp,
}

#[derive(DeriveIden, Clone, Copy)]
enum SlotPool {
    Table,
    Id,
    Pool,
    Slots,
    Description,
    IncludeDeferred,
}

#[derive(DeriveIden, Clone, Copy)]
enum Variable {
    Table,
    Id,
    Key,
    Val,
    Description,
    IsEncrypted,
}

#[derive(DeriveIden, Clone, Copy)]
enum Connection {
    Table,
    Id,
    ConnId,
    ConnType,
    Description,
    Host,
    Schema,
    Login,
    Password,
    Port,
    Extra,
    IsEncrypted,
    IsExtraEncrypted,
}

fn id<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn string<T: Iden + 'static>(col: T, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).not_null().to_owned()
}

fn time<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

fn int<T: Iden + 'static>(col: T) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().to_owned()
}

async fn index<T: Iden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[T],
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create().name(name).table(table).to_owned();
    for col in cols {
        index.col(*col);
    }
    if unique {
        index.unique();
    }
    manager.create_index(index).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use DagRun as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(id(R::Id))
                    .col(string(R::DagId, 250))
                    .col(string(R::RunId, 250))
                    .col(string(R::RunType, 50))
                    .col(string(R::State, 50))
                    .col(time(R::LogicalDate))
                    .col(time(R::DataIntervalStart))
                    .col(time(R::DataIntervalEnd))
                    .col(time(R::RunAfter).not_null())
                    .col(time(R::QueuedAt))
                    .col(time(R::StartDate))
                    .col(time(R::EndDate))
                    .col(ColumnDef::new(R::Conf).text().not_null())
                    .col(ColumnDef::new(R::Note).text())
                    .col(ColumnDef::new(R::TriggeredBy).string_len(50))
                    .col(ColumnDef::new(R::DagVersionId).big_integer().not_null())
                    .col(ColumnDef::new(R::BackfillId).big_integer())
                    .col(int(R::ClearNumber).default(0))
                    .col(time(R::LastSchedulingDecision))
                    .col(time(R::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_dag_run_run_id",
            R::Table,
            &[R::DagId, R::RunId],
            true,
        )
        .await?;
        index(
            manager,
            "idx_dag_run_logical_date",
            R::Table,
            &[R::DagId, R::LogicalDate],
            false,
        )
        .await?;
        index(manager, "idx_dag_run_state", R::Table, &[R::State], false).await?;

        use TaskInstance as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .col(id(T::Id))
                    .col(ColumnDef::new(T::DagRunId).big_integer().not_null())
                    .col(string(T::DagId, 250))
                    .col(string(T::RunId, 250))
                    .col(string(T::TaskId, 250))
                    .col(int(T::MapIndex).default(-1))
                    .col(ColumnDef::new(T::State).string_len(20))
                    .col(int(T::TryNumber).default(0))
                    .col(int(T::MaxTries).default(0))
                    .col(time(T::StartDate))
                    .col(time(T::EndDate))
                    .col(ColumnDef::new(T::Duration).double())
                    .col(string(T::Operator, 100))
                    .col(string(T::Pool, 256))
                    .col(int(T::PoolSlots).default(1))
                    .col(string(T::Queue, 256))
                    .col(int(T::PriorityWeight).default(1))
                    .col(string(T::Hostname, 1000).default(""))
                    .col(time(T::QueuedDttm))
                    .col(time(T::ScheduledDttm))
                    .col(time(T::NextRetryAt))
                    .col(ColumnDef::new(T::LeaseOwner).big_integer())
                    .col(time(T::LeaseExpiresAt))
                    .col(ColumnDef::new(T::RenderedFields).text())
                    .col(ColumnDef::new(T::DagVersionId).big_integer().not_null())
                    .col(time(T::UpdatedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_task_instance_dag_run")
                            .from(T::Table, T::DagRunId)
                            .to(R::Table, R::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_task_instance",
            T::Table,
            &[T::DagRunId, T::TaskId, T::MapIndex],
            true,
        )
        .await?;
        index(
            manager,
            "idx_task_instance_state",
            T::Table,
            &[T::State],
            false,
        )
        .await?;
        index(
            manager,
            "idx_task_instance_dag_task",
            T::Table,
            &[T::DagId, T::TaskId],
            false,
        )
        .await?;

        use TaskInstanceHistory as H;
        manager
            .create_table(
                Table::create()
                    .table(H::Table)
                    .col(id(H::Id))
                    .col(ColumnDef::new(H::TaskInstanceId).big_integer().not_null())
                    .col(ColumnDef::new(H::DagRunId).big_integer().not_null())
                    .col(string(H::DagId, 250))
                    .col(string(H::RunId, 250))
                    .col(string(H::TaskId, 250))
                    .col(int(H::MapIndex).default(-1))
                    .col(int(H::TryNumber))
                    .col(int(H::MaxTries))
                    .col(ColumnDef::new(H::State).string_len(20))
                    .col(time(H::StartDate))
                    .col(time(H::EndDate))
                    .col(ColumnDef::new(H::Duration).double())
                    .col(string(H::Operator, 100))
                    .col(string(H::Pool, 256))
                    .col(int(H::PoolSlots))
                    .col(string(H::Queue, 256))
                    .col(int(H::PriorityWeight))
                    .col(string(H::Hostname, 1000))
                    .col(ColumnDef::new(H::RenderedFields).text())
                    .col(ColumnDef::new(H::DagVersionId).big_integer().not_null())
                    .col(time(H::UpdatedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_task_instance_history_dag_run")
                            .from(H::Table, H::DagRunId)
                            .to(R::Table, R::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_task_instance_history_try",
            H::Table,
            &[H::DagRunId, H::TaskId, H::MapIndex, H::TryNumber],
            true,
        )
        .await?;

        use Xcom as X;
        manager
            .create_table(
                Table::create()
                    .table(X::Table)
                    .col(ColumnDef::new(X::DagRunId).big_integer().not_null())
                    .col(string(X::TaskId, 250))
                    .col(int(X::MapIndex).default(-1))
                    .col(string(X::Key, 512))
                    .col(string(X::DagId, 250))
                    .col(string(X::RunId, 250))
                    .col(ColumnDef::new(X::Value).text().not_null())
                    .col(time(X::Timestamp).not_null())
                    .primary_key(
                        Index::create()
                            .col(X::DagRunId)
                            .col(X::TaskId)
                            .col(X::MapIndex)
                            .col(X::Key),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_xcom_dag_run")
                            .from(X::Table, X::DagRunId)
                            .to(R::Table, R::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        use SlotPool as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(id(P::Id))
                    .col(string(P::Pool, 256))
                    .col(int(P::Slots))
                    .col(ColumnDef::new(P::Description).text())
                    .col(
                        ColumnDef::new(P::IncludeDeferred)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        index(manager, "uq_slot_pool_pool", P::Table, &[P::Pool], true).await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(P::Table)
                    .columns([P::Pool, P::Slots, P::Description, P::IncludeDeferred])
                    .values_panic([
                        "default_pool".into(),
                        128.into(),
                        "Default pool".into(),
                        false.into(),
                    ])
                    .to_owned(),
            )
            .await?;

        use Variable as V;
        manager
            .create_table(
                Table::create()
                    .table(V::Table)
                    .col(id(V::Id))
                    .col(string(V::Key, 250))
                    .col(ColumnDef::new(V::Val).text().not_null())
                    .col(ColumnDef::new(V::Description).text())
                    .col(
                        ColumnDef::new(V::IsEncrypted)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        index(manager, "uq_variable_key", V::Table, &[V::Key], true).await?;

        use Connection as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(id(C::Id))
                    .col(string(C::ConnId, 250))
                    .col(string(C::ConnType, 500))
                    .col(ColumnDef::new(C::Description).text())
                    .col(ColumnDef::new(C::Host).string_len(500))
                    .col(ColumnDef::new(C::Schema).string_len(500))
                    .col(ColumnDef::new(C::Login).text())
                    .col(ColumnDef::new(C::Password).text())
                    .col(ColumnDef::new(C::Port).integer())
                    .col(ColumnDef::new(C::Extra).text())
                    .col(
                        ColumnDef::new(C::IsEncrypted)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(C::IsExtraEncrypted)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_connection_conn_id",
            C::Table,
            &[C::ConnId],
            true,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Xcom::Table.into_iden(),
            TaskInstanceHistory::Table.into_iden(),
            TaskInstance::Table.into_iden(),
            DagRun::Table.into_iden(),
            SlotPool::Table.into_iden(),
            Variable::Table.into_iden(),
            Connection::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
