//! DAGs from the DAG folder: `dag` (one row per dag_id, never deleted: a removed file makes it
//! stale), `dag_version` (one row per distinct content, so runs can record what they ran) and
//! `import_error` (one row per broken file, removed when fixed). Names follow Airflow's tables.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

// Column names mirror Airflow's `dag` table, hence `DagId` inside `Dag`.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Dag {
    Table,
    DagId,
    Fileloc,
    Description,
    Owners,
    Tags,
    Schedule,
    Timezone,
    IsPaused,
    IsStale,
    HasImportErrors,
    MaxActiveRuns,
    MaxActiveTasks,
    CurrentVersionId,
    LastParsedTime,
    CreatedAt,
    NextDagrun,
    NextDagrunDataIntervalStart,
    NextDagrunDataIntervalEnd,
    NextDagrunCreateAfter,
}

#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden, Clone, Copy)]
enum DagVersion {
    Table,
    Id,
    DagId,
    VersionNumber,
    ContentHash,
    Fileloc,
    Source,
    DagJson,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ImportError {
    Table,
    Id,
    Filename,
    Timestamp,
    StackTrace,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Dag::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Dag::DagId)
                            .string_len(250)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Dag::Fileloc).string_len(2000).not_null())
                    .col(ColumnDef::new(Dag::Description).text())
                    .col(ColumnDef::new(Dag::Owners).string_len(2000).not_null())
                    .col(ColumnDef::new(Dag::Tags).text().not_null())
                    .col(ColumnDef::new(Dag::Schedule).string_len(1000))
                    .col(ColumnDef::new(Dag::Timezone).string_len(100).not_null())
                    .col(ColumnDef::new(Dag::IsPaused).boolean().not_null())
                    .col(
                        ColumnDef::new(Dag::IsStale)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Dag::HasImportErrors)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Dag::MaxActiveRuns).integer().not_null())
                    .col(ColumnDef::new(Dag::MaxActiveTasks).integer().not_null())
                    .col(ColumnDef::new(Dag::CurrentVersionId).big_integer())
                    .col(ColumnDef::new(Dag::LastParsedTime).timestamp_with_time_zone())
                    .col(
                        ColumnDef::new(Dag::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Dag::NextDagrun).timestamp_with_time_zone())
                    .col(
                        ColumnDef::new(Dag::NextDagrunDataIntervalStart).timestamp_with_time_zone(),
                    )
                    .col(ColumnDef::new(Dag::NextDagrunDataIntervalEnd).timestamp_with_time_zone())
                    .col(ColumnDef::new(Dag::NextDagrunCreateAfter).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dag_fileloc")
                    .table(Dag::Table)
                    .col(Dag::Fileloc)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DagVersion::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(DagVersion::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(DagVersion::DagId).string_len(250).not_null())
                    .col(
                        ColumnDef::new(DagVersion::VersionNumber)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DagVersion::ContentHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DagVersion::Fileloc)
                            .string_len(2000)
                            .not_null(),
                    )
                    .col(ColumnDef::new(DagVersion::Source).text().not_null())
                    .col(ColumnDef::new(DagVersion::DagJson).text().not_null())
                    .col(
                        ColumnDef::new(DagVersion::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_dag_version_dag")
                            .from(DagVersion::Table, DagVersion::DagId)
                            .to(Dag::Table, Dag::DagId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, [first, second]) in [
            (
                "uq_dag_version_hash",
                [DagVersion::DagId, DagVersion::ContentHash],
            ),
            (
                "uq_dag_version_number",
                [DagVersion::DagId, DagVersion::VersionNumber],
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(DagVersion::Table)
                        .col(first)
                        .col(second)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ImportError::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ImportError::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ImportError::Filename)
                            .string_len(2000)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(ImportError::Timestamp)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ImportError::StackTrace).text().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ImportError::Table.into_iden(),
            DagVersion::Table.into_iden(),
            Dag::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
