//! `task_instance.reclaims`: how often a try went back to the queue because its worker died
//! before it ended (bounded, so a task that kills its worker cannot loop forever).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TaskInstance {
    Table,
    Reclaims,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TaskInstance::Table)
                    .add_column(
                        ColumnDef::new(TaskInstance::Reclaims)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TaskInstance::Table)
                    .drop_column(TaskInstance::Reclaims)
                    .to_owned(),
            )
            .await
    }
}
