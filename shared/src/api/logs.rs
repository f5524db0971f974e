//! Task logs (Airflow's `TaskInstancesLogResponse`).
