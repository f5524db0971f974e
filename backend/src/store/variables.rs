//! Variables at rest: values always written encrypted with the Fernet keyring; rows an older
//! writer left in clear (`is_encrypted` false) read as they are.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr,
    EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::secrets::{SecretError, Secrets};
use crate::store::entities::variable;
use crate::store::{Db, StoreError};

pub use variable::{Column, Model};

pub async fn find(conn: &impl ConnectionTrait, key: &str) -> Result<Option<Model>, DbErr> {
    find_named::<variable::Entity>(conn, Column::Key, key).await
}

/// The rows whose keys are among `keys`.
pub async fn existing_keys(
    conn: &impl ConnectionTrait,
    keys: &[String],
) -> Result<Vec<Model>, DbErr> {
    existing_named::<variable::Entity>(conn, Column::Key, keys).await
}

/// One page of variables matching `filter`, and how many match in all.
pub async fn page(
    conn: &impl ConnectionTrait,
    filter: Option<Condition>,
    order: &[(Column, Order)],
    limit: u64,
    offset: u64,
) -> Result<(Vec<Model>, u64), DbErr> {
    page_of::<variable::Entity>(conn, filter, order, Column::Id, limit, offset).await
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
    delete_named::<variable::Entity>(conn, Column::Key, key).await
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

// ---------------------------------------------------------------------------------------
// Rows named by a unique text column (variables, connections and pools alike)
// ---------------------------------------------------------------------------------------

/// The row whose `col` is `name`.
pub(crate) async fn find_named<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    col: E::Column,
    name: &str,
) -> Result<Option<E::Model>, DbErr> {
    E::find().filter(col.eq(name)).one(conn).await
}

/// The rows whose `col` is among `names`.
pub(crate) async fn existing_named<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    col: E::Column,
    names: &[String],
) -> Result<Vec<E::Model>, DbErr> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    E::find()
        .filter(col.is_in(names.iter().cloned()))
        .all(conn)
        .await
}

/// Deletes the row whose `col` is `name`; the number of rows removed.
pub(crate) async fn delete_named<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    col: E::Column,
    name: &str,
) -> Result<u64, DbErr> {
    Ok(E::delete_many()
        .filter(col.eq(name))
        .exec(conn)
        .await?
        .rows_affected)
}

/// One page of rows matching `filter` in `order` (then by `id`, so pages are stable), and
/// how many match in all.
pub(crate) async fn page_of<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    filter: Option<Condition>,
    order: &[(E::Column, Order)],
    id: E::Column,
    limit: u64,
    offset: u64,
) -> Result<(Vec<E::Model>, u64), DbErr>
where
    E::Model: Sync,
{
    let mut query = E::find();
    if let Some(f) = filter {
        query = query.filter(f);
    }
    let total = query.clone().count(conn).await?;
    for (col, dir) in order {
        query = query.order_by(*col, dir.clone());
    }
    let rows = query
        .order_by_asc(id)
        .limit(limit)
        .offset(offset)
        .all(conn)
        .await?;
    Ok((rows, total))
}
