//! Connections (Airflow's `Connection*` models).
