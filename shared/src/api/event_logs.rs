//! The audit log (Airflow's `EventLog*` models).
