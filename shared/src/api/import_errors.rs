//! Import errors (Airflow's `ImportError*` models).
