//! Updraft's integration tests: one binary (linking is the slow part), one module per area.
//!
//! Run them with `scripts/test.sh`, which starts the real PostgreSQL server the `postgres`
//! variants need (`UPDRAFT_TEST_PG_URL`) and builds the UI the browser tests look at.

mod engine_helpers;
mod helpers;

mod api;
mod browser;
mod cli;
mod config_errors;
mod dag_folder;
mod dags_cli;
mod db;
mod engine;
mod engine_more;
mod openapi;
mod paas;
