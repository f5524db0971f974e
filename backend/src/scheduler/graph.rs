//! A DAG's task graph as the scheduler uses it: direct upstream/downstream by index, a
//! topological order, Airflow's effective priority weights, and run ids.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use updraft_shared::dag::{Dag, WeightRule};
use updraft_shared::state::DagRunType;

/// Task indexes follow the order of `dag.tasks`.
#[derive(Debug, Clone)]
pub struct TaskGraph {
    pub upstream: Vec<Vec<usize>>,
    pub downstream: Vec<Vec<usize>>,
    index: HashMap<String, usize>,
}

impl TaskGraph {
    /// Builds the graph of a parsed (so acyclic, with known dependencies) DAG.
    pub fn of(dag: &Dag) -> Self {
        let index: HashMap<String, usize> = dag
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        let mut upstream = vec![Vec::new(); dag.tasks.len()];
        let mut downstream = vec![Vec::new(); dag.tasks.len()];
        for (i, task) in dag.tasks.iter().enumerate() {
            for dep in &task.depends_on {
                if let Some(&j) = index.get(dep) {
                    if !upstream[i].contains(&j) {
                        upstream[i].push(j);
                        downstream[j].push(i);
                    }
                }
            }
        }
        Self {
            upstream,
            downstream,
            index,
        }
    }

    pub fn index_of(&self, task_id: &str) -> Option<usize> {
        self.index.get(task_id).copied()
    }

    /// Tasks with no upstream: where a run starts.
    pub fn roots(&self) -> Vec<usize> {
        (0..self.upstream.len())
            .filter(|i| self.upstream[*i].is_empty())
            .collect()
    }

    /// Every task after all of its upstream tasks (Kahn's algorithm, stable by file order).
    pub fn topological_order(&self) -> Vec<usize> {
        let mut missing: Vec<usize> = self.upstream.iter().map(Vec::len).collect();
        let mut ready: std::collections::BTreeSet<usize> = self.roots().into_iter().collect();
        let mut order = Vec::with_capacity(missing.len());
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &d in &self.downstream[i] {
                missing[d] -= 1;
                if missing[d] == 0 {
                    ready.insert(d);
                }
            }
        }
        order
    }

    /// All tasks reachable from `start` following `edges` (not including `start`).
    fn reachable(&self, start: usize, edges: &[Vec<usize>]) -> Vec<bool> {
        let mut seen = vec![false; edges.len()];
        let mut stack = edges[start].clone();
        while let Some(i) = stack.pop() {
            if !seen[i] {
                seen[i] = true;
                stack.extend(edges[i].iter().copied());
            }
        }
        seen
    }

    /// Airflow's effective priority of each task: with `downstream` (the default) its own
    /// weight plus every task downstream of it, with `upstream` plus every task upstream,
    /// with `absolute` its own. Default weight 1.
    pub fn priority_weights(&self, dag: &Dag) -> Vec<i64> {
        let own: Vec<i64> = dag
            .tasks
            .iter()
            .map(|t| {
                t.args
                    .priority_weight
                    .or(dag.default_args.priority_weight)
                    .unwrap_or(1) as i64
            })
            .collect();
        dag.tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let rule = t
                    .args
                    .weight_rule
                    .or(dag.default_args.weight_rule)
                    .unwrap_or(WeightRule::Downstream);
                let others = match rule {
                    WeightRule::Absolute => return own[i],
                    WeightRule::Downstream => self.reachable(i, &self.downstream),
                    WeightRule::Upstream => self.reachable(i, &self.upstream),
                };
                own[i]
                    + others
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| **r)
                        .map(|(j, _)| own[j])
                        .sum::<i64>()
            })
            .collect()
    }
}

/// Airflow's run id: `scheduled__2024-01-01T00:00:00+00:00`.
pub fn run_id(kind: DagRunType, logical_date: DateTime<Utc>) -> String {
    format!("{}__{}", kind.as_str(), crate::timefmt::iso(logical_date))
}

#[cfg(test)]
mod tests {
    use super::*;
    use updraft_shared::dag::parse_dag;

    fn dag(tasks: &str, extra: &str) -> Dag {
        parse_dag(format!("dag_id: g\n{extra}tasks:\n{tasks}").as_bytes()).unwrap()
    }

    const DIAMOND: &str = "  - {id: a, operator: empty}\n  - {id: b, operator: empty, depends_on: [a]}\n  - {id: c, operator: empty, depends_on: [a]}\n  - {id: d, operator: empty, depends_on: [b, c]}\n";

    #[test]
    fn edges_roots_and_order() {
        let d = dag(DIAMOND, "");
        let g = TaskGraph::of(&d);
        assert_eq!(g.roots(), [0]);
        assert_eq!(g.upstream[3], [1, 2]);
        assert_eq!(g.downstream[0], [1, 2]);
        assert_eq!(g.topological_order(), [0, 1, 2, 3]);
        assert_eq!(g.index_of("c"), Some(2));
    }

    #[test]
    fn priority_weights_follow_airflow_rules() {
        // downstream (default): a = 1 + b + c + d = 4; d = 1.
        let d = dag(DIAMOND, "");
        assert_eq!(TaskGraph::of(&d).priority_weights(&d), [4, 2, 2, 1]);
        let d = dag(DIAMOND, "default_args: {weight_rule: upstream}\n");
        assert_eq!(TaskGraph::of(&d).priority_weights(&d), [1, 2, 2, 4]);
        let d = dag(
            DIAMOND,
            "default_args: {weight_rule: absolute, priority_weight: 7}\n",
        );
        assert_eq!(TaskGraph::of(&d).priority_weights(&d), [7, 7, 7, 7]);
    }

    #[test]
    fn run_ids_look_like_airflow_ones() {
        let t = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            run_id(DagRunType::Scheduled, t),
            "scheduled__2024-01-01T00:00:00+00:00"
        );
        assert_eq!(
            run_id(DagRunType::Manual, t),
            "manual__2024-01-01T00:00:00+00:00"
        );
    }
}
