//! Variables at rest: values always written encrypted with the Fernet keyring; rows an older
//! writer left in clear (`is_encrypted` false) read as they are.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::secrets::{SecretError, Secrets};
use crate::store::entities::variable;
use crate::store::{Db, StoreError};

pub use variable::{Column, Model};

pub async fn find(conn: &impl ConnectionTrait, key: &str) -> Result<Option<Model>, DbErr> {
    variable::Entity::find()
        .filter(Column::Key.eq(key))
        .one(conn)
        .await
}

/// The keys among `keys` that exist.
pub async fn existing_keys(
    conn: &impl ConnectionTrait,
    keys: &[String],
) -> Result<Vec<Model>, DbErr> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    variable::Entity::find()
        .filter(Column::Key.is_in(keys.iter().cloned()))
        .all(conn)
        .await
}

/// One page of variables matching `filter`, and how many match in all.
pub async fn page(
    conn: &impl ConnectionTrait,
    filter: Option<sea_orm::Condition>,
    order: &[(Column, sea_orm::Order)],
    limit: u64,
    offset: u64,
) -> Result<(Vec<Model>, u64), DbErr> {
    let mut query = variable::Entity::find();
    if let Some(f) = filter {
        query = query.filter(f);
    }
    let total = query.clone().count(conn).await?;
    for (col, dir) in order {
        query = query.order_by(*col, dir.clone());
    }
    let rows = query
        .order_by_asc(Column::Id)
        .limit(limit)
        .offset(offset)
        .all(conn)
        .await?;
    Ok((rows, total))
}

/// Inserts a variable, its value encrypted.
pub async fn insert(
    conn: &impl ConnectionTrait,
    secrets: &Secrets,
    key: &str,
    plain: &str,
    description: Option<String>,
) -> Result<Model, DbErr> {
    variable::ActiveModel {
        key: Set(key.to_string()),
        val: Set(secrets.encrypt(plain)),
        description: Set(description),
        is_encrypted: Set(true),
        ..Default::default()
    }
    .insert(conn)
    .await
}

/// Changes a variable: a new plain value (encrypted here) and/or a new description.
pub async fn update(
    conn: &impl ConnectionTrait,
    secrets: &Secrets,
    row: Model,
    plain: Option<&str>,
    description: Option<Option<String>>,
) -> Result<Model, DbErr> {
    let mut active: variable::ActiveModel = row.into();
    if let Some(plain) = plain {
        active.val = Set(secrets.encrypt(plain));
        active.is_encrypted = Set(true);
    }
    if let Some(description) = description {
        active.description = Set(description);
    }
    active.update(conn).await
}

/// Deletes by key; the number of rows removed.
pub async fn delete(conn: &impl ConnectionTrait, key: &str) -> Result<u64, DbErr> {
    Ok(variable::Entity::delete_many()
        .filter(Column::Key.eq(key))
        .exec(conn)
        .await?
        .rows_affected)
}

/// A row's value as plain text.
pub fn plain(secrets: &Secrets, row: &Model) -> Result<String, SecretError> {
    secrets.reveal(&row.val, row.is_encrypted)
}

/// Every variable as `(key, plain value)`, for templates (`{{ var.value.x }}`).
pub async fn all_variables_plain(
    db: &Db,
    secrets: &Secrets,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = variable::Entity::find().all(db.conn()).await?;
    rows.into_iter()
        .map(|row| {
            let value = plain(secrets, &row).map_err(|e| undecryptable("variable", &row.key, e))?;
            Ok((row.key, value))
        })
        .collect()
}

/// A secret that cannot be read, as a store error naming it (the task fails with this cause).
pub fn undecryptable(what: &str, name: &str, e: SecretError) -> StoreError {
    StoreError::Db(DbErr::Custom(format!("{what} {name}: {e}")))
}
