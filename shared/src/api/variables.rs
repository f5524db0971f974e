//! Variables (Airflow's `Variable*` models).
