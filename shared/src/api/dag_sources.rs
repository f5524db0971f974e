//! Updraft's DAG file upload and validation.
