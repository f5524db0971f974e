//! Backfills (Airflow's `Backfill*` models).
