//! Users of the API and UI (`ab_user`).

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::entities::user;
use super::{Db, StoreError};

pub async fn find(db: &Db, username: &str) -> Result<Option<user::Model>, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db.conn())
        .await?)
}

pub async fn list(db: &Db, limit: u64, offset: u64) -> Result<(Vec<user::Model>, u64), StoreError> {
    let total = user::Entity::find().count(db.conn()).await?;
    let rows = user::Entity::find()
        .order_by_asc(user::Column::Username)
        .limit(limit)
        .offset(offset)
        .all(db.conn())
        .await?;
    Ok((rows, total))
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: String,
    pub role: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
}

pub async fn insert(conn: &impl ConnectionTrait, new: NewUser<'_>) -> Result<(), StoreError> {
    let now = Utc::now();
    user::Entity::insert(user::ActiveModel {
        username: Set(new.username.to_string()),
        password_hash: Set(new.password_hash),
        role: Set(new.role.to_string()),
        first_name: Set(new.first_name.to_string()),
        last_name: Set(new.last_name.to_string()),
        email: Set(new.email.to_string()),
        active: Set(true),
        created_on: Set(now),
        changed_on: Set(now),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Changes role and/or password hash; returns whether the user exists.
pub async fn update(
    conn: &impl ConnectionTrait,
    username: &str,
    role: Option<&str>,
    password_hash: Option<String>,
) -> Result<bool, StoreError> {
    let mut q = user::Entity::update_many()
        .col_expr(user::Column::ChangedOn, Expr::value(Utc::now()))
        .filter(user::Column::Username.eq(username));
    if let Some(role) = role {
        q = q.col_expr(user::Column::Role, Expr::value(role));
    }
    if let Some(hash) = password_hash {
        q = q.col_expr(user::Column::PasswordHash, Expr::value(hash));
    }
    Ok(q.exec(conn).await?.rows_affected > 0)
}

pub async fn delete(conn: &impl ConnectionTrait, username: &str) -> Result<bool, StoreError> {
    Ok(user::Entity::delete_many()
        .filter(user::Column::Username.eq(username))
        .exec(conn)
        .await?
        .rows_affected
        > 0)
}

pub async fn count_admins(conn: &impl ConnectionTrait) -> Result<u64, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Role.eq("Admin"))
        .count(conn)
        .await?)
}

pub async fn touch_login(db: &Db, username: &str) -> Result<(), StoreError> {
    user::Entity::update_many()
        .col_expr(user::Column::LastLogin, Expr::value(Utc::now()))
        .filter(user::Column::Username.eq(username))
        .exec(db.conn())
        .await?;
    Ok(())
}
