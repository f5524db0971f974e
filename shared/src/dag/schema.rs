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
            "One DAG per file. Keys and meanings follow Apache Airflow. Operator settings go under `with:`.".into(),
        );
    }
    // A task's keys come from flattened parts (its own, the operator's tag, default_args
    // overrides), which `additionalProperties` cannot close; `unevaluatedProperties` can.
    if let Some(task) = schema
        .pointer_mut("/$defs/Task")
        .and_then(|t| t.as_object_mut())
    {
        task.insert("unevaluatedProperties".into(), false.into());
    }
    // A param is a spec ({default, type, enum, …}) or just its default value, of any type.
    if let Some(params) = schema
        .pointer_mut("/properties/params")
        .and_then(|p| p.as_object_mut())
    {
        params.insert(
            "additionalProperties".into(),
            serde_json::json!({"anyOf": [{"$ref": "#/$defs/Param"}, {"description": "the default value itself"}]}),
        );
    }
    schema
}

pub fn dag_schema_pretty() -> String {
    let mut text =
        serde_json::to_string_pretty(&dag_schema()).expect("a JSON value always serializes");
    text.push('\n');
    text
}

#[cfg(all(test, feature = "parser"))]
mod tests {
    use super::*;
    use crate::dag::parse::*;

    fn keys(schema: &serde_json::Value, pointer: &str) -> Vec<String> {
        let mut keys: Vec<String> = schema
            .pointer(pointer)
            .and_then(|p| p.as_object())
            .unwrap_or_else(|| panic!("{pointer} missing"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn parser_checks_exactly_the_keys_the_schema_publishes() {
        let s = dag_schema();
        assert_eq!(keys(&s, "/properties"), sorted(DAG_KEYS));
        assert_eq!(
            keys(&s, "/$defs/TaskArgs/properties"),
            sorted(TASK_ARG_KEYS)
        );
        let mut task_keys = keys(&s, "/$defs/Task/properties");
        task_keys.extend(["operator".to_string(), "with".to_string()]);
        task_keys.sort();
        let mut expected: Vec<&str> = TASK_OWN_KEYS.to_vec();
        expected.extend_from_slice(TASK_ARG_KEYS);
        assert_eq!(task_keys, sorted(&expected));
        assert_eq!(
            keys(&s, "/$defs/BashOperator/properties"),
            sorted(BASH_KEYS)
        );
        assert_eq!(
            keys(&s, "/$defs/PythonOperator/properties"),
            sorted(PYTHON_KEYS)
        );
        assert_eq!(keys(&s, "/$defs/Param/properties"), sorted(PARAM_KEYS));
        assert_eq!(
            keys(&s, "/$defs/Notification/properties"),
            sorted(NOTIFICATION_KEYS)
        );
    }

    #[test]
    fn operator_names_match_the_schema() {
        let s = dag_schema();
        let variants = s.pointer("/$defs/Task/oneOf").unwrap().as_array().unwrap();
        let names: Vec<&str> = variants
            .iter()
            .map(|v| {
                v.pointer("/properties/operator/const")
                    .unwrap()
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(names, crate::dag::Operator::NAMES);
    }
}
