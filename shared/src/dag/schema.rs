//! The JSON Schema of DAG files, generated from the model. `updraft dags schema` prints it;
//! `docs/dag.schema.json` is that output, and a test fails when they differ.

/// Where the published schema lives, for the yaml-language-server comment in DAG files.
pub const SCHEMA_PATH: &str = "docs/dag.schema.json";

pub fn dag_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(super::model::Dag).to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), "Updraft DAG file".into());
        obj.insert(
            "description".into(),
            "One DAG per file. Keys and meanings follow Apache Airflow.".into(),
        );
    }
    schema
}

pub fn dag_schema_pretty() -> String {
    let mut text = serde_json::to_string_pretty(&dag_schema()).expect("a JSON value always serializes");
    text.push('\n');
    text
}
