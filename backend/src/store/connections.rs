//! Connections at rest: `password` and `extra` always written encrypted with the Fernet
//! keyring (`is_encrypted`, `is_extra_encrypted`); rows an older writer left in clear read as
//! they are.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, Condition, ConnectionTrait, DbErr, EntityTrait, Order,
};

use crate::secrets::{SecretError, Secrets};
use crate::store::entities::connection;
use crate::store::variables::{delete_named, existing_named, find_named, page_of};
use crate::store::{Db, StoreError};

pub use connection::{Column, Model};

/// A connection's fields in clear, as written by the API or read by templates.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PlainConnection {
    pub conn_id: String,
    pub conn_type: String,
    pub description: Option<String>,
    pub host: Option<String>,
    pub schema: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
    pub port: Option<i32>,
    pub extra: Option<String>,
}

impl std::fmt::Debug for PlainConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainConnection")
            .field("conn_id", &self.conn_id)
            .field("conn_type", &self.conn_type)
            .field("host", &self.host)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// A stored row in clear.
pub fn plain(secrets: &Secrets, row: &Model) -> Result<PlainConnection, SecretError> {
    Ok(PlainConnection {
        conn_id: row.conn_id.clone(),
        conn_type: row.conn_type.clone(),
        description: row.description.clone(),
        host: row.host.clone(),
        schema: row.schema.clone(),
        login: row.login.clone(),
        password: row
            .password
            .as_deref()
            .map(|p| secrets.reveal(p, row.is_encrypted))
            .transpose()?,
        port: row.port,
        extra: row
            .extra
            .as_deref()
            .map(|e| secrets.reveal(e, row.is_extra_encrypted))
            .transpose()?,
    })
}

pub async fn find(conn: &impl ConnectionTrait, conn_id: &str) -> Result<Option<Model>, DbErr> {
    find_named::<connection::Entity>(conn, Column::ConnId, conn_id).await
}

/// The rows whose ids are among `ids`.
pub async fn existing(conn: &impl ConnectionTrait, ids: &[String]) -> Result<Vec<Model>, DbErr> {
    existing_named::<connection::Entity>(conn, Column::ConnId, ids).await
}

/// One page of connections matching `filter`, and how many match in all.
pub async fn page(
    conn: &impl ConnectionTrait,
    filter: Option<Condition>,
    order: &[(Column, Order)],
    limit: u64,
    offset: u64,
) -> Result<(Vec<Model>, u64), DbErr> {
    page_of::<connection::Entity>(conn, filter, order, Column::Id, limit, offset).await
}

fn encrypted(secrets: &Secrets, c: &PlainConnection) -> connection::ActiveModel {
    connection::ActiveModel {
        conn_id: Set(c.conn_id.clone()),
        conn_type: Set(c.conn_type.clone()),
        description: Set(c.description.clone()),
        host: Set(c.host.clone()),
        schema: Set(c.schema.clone()),
        login: Set(c.login.clone()),
        password: Set(c.password.as_deref().map(|p| secrets.encrypt(p))),
        port: Set(c.port),
        extra: Set(c.extra.as_deref().map(|e| secrets.encrypt(e))),
        is_encrypted: Set(true),
        is_extra_encrypted: Set(true),
        ..Default::default()
    }
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    secrets: &Secrets,
    c: &PlainConnection,
) -> Result<Model, DbErr> {
    encrypted(secrets, c).insert(conn).await
}

/// Overwrites every field of the row `id` with `c` (secrets encrypted).
pub async fn replace(
    conn: &impl ConnectionTrait,
    secrets: &Secrets,
    id: i64,
    c: &PlainConnection,
) -> Result<Model, DbErr> {
    let mut active = encrypted(secrets, c);
    active.id = sea_orm::ActiveValue::Unchanged(id);
    active.update(conn).await
}

pub async fn delete(conn: &impl ConnectionTrait, conn_id: &str) -> Result<u64, DbErr> {
    delete_named::<connection::Entity>(conn, Column::ConnId, conn_id).await
}

/// Every connection in clear, for templates (`{{ conn.x.password }}`).
pub async fn all_connections_plain(
    db: &Db,
    secrets: &Secrets,
) -> Result<Vec<PlainConnection>, StoreError> {
    let rows = connection::Entity::find().all(db.conn()).await?;
    rows.iter()
        .map(|row| {
            plain(secrets, row).map_err(|e| {
                StoreError::Db(DbErr::Custom(format!("connection {}: {e}", row.conn_id)))
            })
        })
        .collect()
}
