//! DAGs (Airflow's `DAG*` models).
