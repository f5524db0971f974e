//! `updraft users create|list|delete|set-role` and `updraft rotate-fernet-key`.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};

use super::Failure;
use crate::auth::{password, Role};
use crate::config::Config;
use crate::secrets::Secrets;
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::{connection, variable};
use crate::store::{users, Db};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user (the first admin: `updraft users create --username admin --role admin --password-stdin`)
    Create(CreateArgs),
    /// List users and their roles
    List,
    /// Change a user's role
    SetRole {
        #[arg(long)]
        username: String,
        /// viewer, user, op or admin
        #[arg(long)]
        role: String,
    },
    /// Set a user's password (read like `create` reads it)
    ResetPassword {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Delete a user
    Delete {
        #[arg(long)]
        username: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    username: String,
    /// viewer, user, op or admin
    #[arg(long)]
    role: String,
    #[arg(long, default_value = "")]
    firstname: String,
    #[arg(long, default_value = "")]
    lastname: String,
    #[arg(long, default_value = "")]
    email: String,
    #[command(flatten)]
    password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// The password (visible to other users of this machine in `ps`: prefer the next two)
    #[arg(long, conflicts_with_all = ["password_file", "password_stdin"])]
    password: Option<String>,
    /// Read the password from this file (first line)
    #[arg(long, value_name = "PATH", conflicts_with = "password_stdin")]
    password_file: Option<PathBuf>,
    /// Read the password from standard input (first line)
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArgs {
    fn read(&self) -> Result<String, Failure> {
        let raw = if let Some(p) = &self.password {
            p.clone()
        } else if let Some(path) = &self.password_file {
            std::fs::read_to_string(path).map_err(|e| {
                Failure::Usage(format!(
                    "--password-file {}: cannot read it ({e})",
                    path.display()
                ))
            })?
        } else if self.password_stdin {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Failure::Usage(format!("--password-stdin: cannot read ({e})")))?;
            s
        } else {
            return Err(Failure::Usage(
                "give the password with --password-stdin, --password-file PATH or --password"
                    .into(),
            ));
        };
        let password = raw.lines().next().unwrap_or("").to_string();
        password::check_strength(&password).map_err(Failure::Usage)?;
        Ok(password)
    }
}

fn role_arg(raw: &str) -> Result<Role, Failure> {
    Role::parse(raw).ok_or_else(|| {
        Failure::Usage(format!(
            "--role {raw}: no such role; use viewer, user, op or admin"
        ))
    })
}

fn who() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}

pub async fn users_command(config: Config, cmd: UsersCommand) -> Result<(), Failure> {
    let db = Db::connect(&config.database_url, &config.settings.database).await?;
    db.migrate().await?;
    let result = users_on(&db, cmd).await;
    db.close().await;
    result
}

async fn users_on(db: &Db, cmd: UsersCommand) -> Result<(), Failure> {
    match cmd {
        UsersCommand::Create(args) => {
            let role = role_arg(&args.role)?;
            let password = args.password.read()?;
            if users::find(db, &args.username).await?.is_some() {
                return Err(Failure::Failed(format!(
                    "user {} already exists (change it with `updraft users set-role` or `reset-password`)",
                    args.username
                )));
            }
            let hash = password::hash(&password)?;
            let txn = db
                .conn()
                .begin()
                .await
                .map_err(crate::store::StoreError::from)?;
            audit::record(
                &txn,
                AuditEntry::new("cli_users_create", &who())
                    .extra(serde_json::json!({"username": args.username, "role": role.as_str()})),
            )
            .await?;
            users::insert(
                &txn,
                users::NewUser {
                    username: &args.username,
                    password_hash: hash,
                    role: role.as_str(),
                    first_name: &args.firstname,
                    last_name: &args.lastname,
                    email: &args.email,
                },
            )
            .await?;
            txn.commit().await.map_err(crate::store::StoreError::from)?;
            println!("User {} created with role {}", args.username, role.as_str());
        }
        UsersCommand::List => {
            let (rows, _) = users::list(db, i64::MAX as u64, 0).await?;
            println!(
                "{:<30} {:<8} {:<30} last login",
                "username", "role", "email"
            );
            for u in rows {
                println!(
                    "{:<30} {:<8} {:<30} {}",
                    u.username,
                    u.role,
                    u.email,
                    u.last_login
                        .map(crate::timefmt::iso)
                        .unwrap_or_else(|| "never".into())
                );
            }
        }
        UsersCommand::SetRole { username, role } => {
            let role = role_arg(&role)?;
            change(db, &username, "cli_users_set_role", Some(role), None).await?;
            println!("User {username} now has role {}", role.as_str());
        }
        UsersCommand::ResetPassword { username, password } => {
            let hash = password::hash(&password.read()?)?;
            change(db, &username, "cli_users_reset_password", None, Some(hash)).await?;
            println!("Password of {username} changed");
        }
        UsersCommand::Delete { username } => {
            let txn = db
                .conn()
                .begin()
                .await
                .map_err(crate::store::StoreError::from)?;
            audit::record(
                &txn,
                AuditEntry::new("cli_users_delete", &who())
                    .extra(serde_json::json!({"username": username})),
            )
            .await?;
            if !users::delete(&txn, &username).await? {
                return Err(Failure::Failed(format!("user {username} does not exist")));
            }
            txn.commit().await.map_err(crate::store::StoreError::from)?;
            println!("User {username} deleted");
        }
    }
    Ok(())
}

async fn change(
    db: &Db,
    username: &str,
    event: &str,
    role: Option<Role>,
    hash: Option<String>,
) -> Result<(), Failure> {
    let txn = db
        .conn()
        .begin()
        .await
        .map_err(crate::store::StoreError::from)?;
    audit::record(
        &txn,
        AuditEntry::new(event, &who()).extra(serde_json::json!({
            "username": username,
            "role": role.map(Role::as_str),
        })),
    )
    .await?;
    if !users::update(&txn, username, role.map(Role::as_str), hash).await? {
        return Err(Failure::Failed(format!("user {username} does not exist")));
    }
    txn.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(())
}

/// Re-encrypts every variable value and connection secret with the first key of
/// `core.fernet_key` (and encrypts values stored in clear). Run it after putting a new key in
/// front of the old one; afterwards the old key can be removed.
pub async fn rotate_fernet_key(config: Config) -> Result<(), Failure> {
    let secrets = Secrets::load(&config)?;
    let db = Db::connect(&config.database_url, &config.settings.database).await?;
    db.migrate().await?;
    let result = rotate(&db, &secrets).await;
    db.close().await;
    let (vars, conns) = result?;
    println!(
        "re-encrypted {vars} variable(s) and {conns} connection(s) with the first key of core.fernet_key"
    );
    Ok(())
}

async fn rotate(db: &Db, secrets: &Secrets) -> Result<(usize, usize), Failure> {
    let ring = secrets.keyring();
    let fresh = |stored: &str, encrypted: bool| -> Result<Option<String>, Failure> {
        if encrypted && ring.is_current(stored) {
            return Ok(None);
        }
        let plain = secrets
            .reveal(stored, encrypted)
            .map_err(|e| Failure::Failed(e.to_string()))?;
        Ok(Some(secrets.encrypt(&plain)))
    };
    let txn = db
        .conn()
        .begin()
        .await
        .map_err(crate::store::StoreError::from)?;
    audit::record(&txn, AuditEntry::new("cli_rotate_fernet_key", &who())).await?;
    let mut vars = 0;
    for v in variable::Entity::find()
        .all(&txn)
        .await
        .map_err(crate::store::StoreError::from)?
    {
        if let Some(val) = fresh(&v.val, v.is_encrypted)? {
            variable::Entity::update(variable::ActiveModel {
                id: Set(v.id),
                val: Set(val),
                is_encrypted: Set(true),
                ..Default::default()
            })
            .exec(&txn)
            .await
            .map_err(crate::store::StoreError::from)?;
            vars += 1;
        }
    }
    let mut conns = 0;
    for c in connection::Entity::find()
        .all(&txn)
        .await
        .map_err(crate::store::StoreError::from)?
    {
        let password = match &c.password {
            Some(p) => fresh(p, c.is_encrypted)?,
            None => None,
        };
        let extra = match &c.extra {
            Some(e) => fresh(e, c.is_extra_encrypted)?,
            None => None,
        };
        if password.is_none() && extra.is_none() {
            continue;
        }
        let mut row = connection::ActiveModel {
            id: Set(c.id),
            ..Default::default()
        };
        if let Some(p) = password {
            row.password = Set(Some(p));
            row.is_encrypted = Set(true);
        }
        if let Some(e) = extra {
            row.extra = Set(Some(e));
            row.is_extra_encrypted = Set(true);
        }
        connection::Entity::update(row)
            .exec(&txn)
            .await
            .map_err(crate::store::StoreError::from)?;
        conns += 1;
    }
    txn.commit().await.map_err(crate::store::StoreError::from)?;
    Ok((vars, conns))
}
