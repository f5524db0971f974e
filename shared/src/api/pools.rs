//! Pools (Airflow's `Pool*` models).
