//! Migrations of the metadata database.
//!
//! Landed migrations are never edited: a schema change is a new module appended to
//! [`Migrator::migrations`]. Each one must work on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_create_job;
mod m20261121_000002_create_dag;
mod m20261121_000003_create_engine;
mod m20261121_000004_create_auth;
mod m20261121_000005_reclaims;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_job::Migration),
            Box::new(m20261121_000002_create_dag::Migration),
            Box::new(m20261121_000003_create_engine::Migration),
            Box::new(m20261121_000004_create_auth::Migration),
            Box::new(m20261121_000005_reclaims::Migration),
        ]
    }
}
