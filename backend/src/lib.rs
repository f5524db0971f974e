//! Updraft: a workflow orchestrator that does the job of Apache Airflow, in one binary.
//!
//! Modules by concern: `config` (layered settings), `store` (metadata database), `api` (REST,
//! Airflow-compatible), `ui` (the embedded web UI), `server` (HTTP plumbing), `cli` (commands).

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dag_processor;
pub mod engine;
pub mod logs;
pub mod operators;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod templating;
pub mod timefmt;
pub mod ui;
pub mod worker;

/// The Updraft version (the workspace's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit this binary was built from, when it was built from a checkout.
pub const GIT_VERSION: Option<&str> = option_env!("UPDRAFT_GIT_VERSION");
