//! Airflow's API has UUIDs where Updraft has integer row ids (task instances, DAG versions):
//! each maps to a fixed UUID and back, so ids stay stable and no column is needed.

use uuid::Uuid;

const TASK_INSTANCE: u64 = 0x7570_6472_6166_7401; // "updraft" + kind
const DAG_VERSION: u64 = 0x7570_6472_6166_7602;

fn to_uuid(kind: u64, id: i64) -> String {
    Uuid::from_u64_pair(kind, id as u64)
        .hyphenated()
        .to_string()
}

fn from_uuid(kind: u64, s: &str) -> Option<i64> {
    let (high, low) = Uuid::parse_str(s.trim()).ok()?.as_u64_pair();
    (high == kind).then_some(low as i64)
}

pub fn task_instance_uuid(id: i64) -> String {
    to_uuid(TASK_INSTANCE, id)
}

pub fn task_instance_id(uuid: &str) -> Option<i64> {
    from_uuid(TASK_INSTANCE, uuid)
}

pub fn dag_version_uuid(id: i64) -> String {
    to_uuid(DAG_VERSION, id)
}

pub fn dag_version_id(uuid: &str) -> Option<i64> {
    from_uuid(DAG_VERSION, uuid)
}

/// A stored DAG version as the API shows it.
pub fn dag_version_response(
    v: &crate::store::dags::dag_version::Model,
) -> updraft_shared::api::DagVersionResponse {
    updraft_shared::api::DagVersionResponse {
        id: dag_version_uuid(v.id),
        version_number: v.version_number,
        dag_id: v.dag_id.clone(),
        bundle_name: Some("dags-folder".into()),
        bundle_version: None,
        created_at: v.created_at,
        dag_display_name: v.dag_id.clone(),
        bundle_url: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_kinds_do_not_mix() {
        let u = task_instance_uuid(42);
        assert_eq!(Uuid::parse_str(&u).unwrap().hyphenated().to_string(), u);
        assert_eq!(task_instance_id(&u), Some(42));
        assert_eq!(dag_version_id(&u), None);
        assert_eq!(dag_version_id(&dag_version_uuid(7)), Some(7));
        assert_eq!(task_instance_id("nope"), None);
    }
}
