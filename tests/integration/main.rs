//! Updraft's integration tests: one binary (linking is the slow part), one module per area.
//!
//! Run them with `scripts/test.sh`, which starts the real PostgreSQL server the `postgres`
//! variants need (`UPDRAFT_TEST_PG_URL`) and builds the UI the browser tests look at.

mod engine_helpers;
mod helpers;

mod api;
mod api_auth;
mod api_dag_runs;
mod api_dags;
mod api_logs_xcom;
mod api_task_instances;
mod api_variables_connections;
mod browser;
mod cli;
mod cli_ops;
mod config_errors;
mod contract;
mod dag_folder;
mod dags_cli;
mod db;
mod engine;
mod engine_more;
mod openapi;
mod paas;
mod roles;
mod scale_out;
