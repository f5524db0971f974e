//! XCom entries (Airflow's `XCom*` models).
