//! Trigger rules: given the states of a task's upstream tasks, may it run, must it wait, or
//! is its fate already decided (skipped, upstream_failed)? Airflow's `TriggerRuleDep` with
//! `flag_upstream_failed`, as a pure function so every rule is pinned by a table of cases.

use updraft_shared::dag::TriggerRule;

/// How many direct upstream tasks are in each finished state. Upstream tasks that are still
/// running or not started count only in `total`. `removed` ones are left out of `total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamStates {
    pub total: usize,
    pub success: usize,
    pub skipped: usize,
    pub failed: usize,
    pub upstream_failed: usize,
}

impl UpstreamStates {
    /// Upstream tasks in a final state.
    pub fn done(&self) -> usize {
        self.success + self.skipped + self.failed + self.upstream_failed
    }

    pub fn all_done(&self) -> bool {
        self.done() >= self.total
    }

    fn any_failed(&self) -> bool {
        self.failed + self.upstream_failed > 0
    }
}

/// What the scheduler does with a task whose upstream looks like this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not yet: some upstream task has still to finish (or the rule cannot hold yet).
    Wait,
    /// The rule holds: queue the task.
    Run,
    /// The rule can never hold because of skips: mark it skipped (skips propagate).
    Skip,
    /// The rule can never hold because of failures: mark it upstream_failed.
    UpstreamFailed,
}

/// Evaluates `rule` for a task with these upstream states. A task without upstream tasks runs.
pub fn evaluate(rule: TriggerRule, up: UpstreamStates) -> Decision {
    use Decision::*;
    use TriggerRule as R;
    if up.total == 0 {
        return Run;
    }
    let done = up.all_done();
    match rule {
        R::AllSuccess => {
            if up.any_failed() {
                UpstreamFailed
            } else if up.skipped > 0 {
                Skip
            } else if up.success >= up.total {
                Run
            } else {
                Wait
            }
        }
        R::AllFailed => {
            if up.success + up.skipped > 0 {
                Skip
            } else if up.failed + up.upstream_failed >= up.total {
                Run
            } else {
                Wait
            }
        }
        R::AllDone => {
            if done {
                Run
            } else {
                Wait
            }
        }
        R::AllDoneMinOneSuccess => {
            // Airflow: a skipped upstream decides at once (skipped); otherwise all must be
            // done with at least one success.
            if up.skipped > 0 {
                Skip
            } else if !done {
                Wait
            } else if up.success > 0 {
                Run
            } else {
                UpstreamFailed
            }
        }
        R::AllSkipped => {
            if up.success + up.failed + up.upstream_failed > 0 {
                Skip
            } else if up.skipped >= up.total {
                Run
            } else {
                Wait
            }
        }
        R::OneSuccess => {
            if up.success > 0 {
                Run
            } else if done && up.skipped >= up.total {
                Skip
            } else if done {
                UpstreamFailed
            } else {
                Wait
            }
        }
        R::OneFailed => {
            if up.any_failed() {
                Run
            } else if done {
                Skip
            } else {
                Wait
            }
        }
        R::OneDone => {
            if up.success + up.failed > 0 {
                Run
            } else if done {
                Skip
            } else {
                Wait
            }
        }
        R::NoneFailed => {
            if up.any_failed() {
                UpstreamFailed
            } else if up.success + up.skipped >= up.total {
                Run
            } else {
                Wait
            }
        }
        R::NoneFailedMinOneSuccess => {
            if up.any_failed() {
                UpstreamFailed
            } else if up.skipped >= up.total {
                Skip
            } else if done {
                Run
            } else {
                Wait
            }
        }
        R::NoneSkipped => {
            if up.skipped > 0 {
                Skip
            } else if done {
                Run
            } else {
                Wait
            }
        }
        R::Always => Run,
    }
}

#[cfg(test)]
mod tests {
    use super::Decision::*;
    use super::*;
    use TriggerRule as R;

    /// (total, success, skipped, failed, upstream_failed)
    fn up(t: usize, s: usize, sk: usize, f: usize, uf: usize) -> UpstreamStates {
        UpstreamStates {
            total: t,
            success: s,
            skipped: sk,
            failed: f,
            upstream_failed: uf,
        }
    }

    fn check(rule: R, cases: &[(UpstreamStates, Decision)]) {
        for (states, expected) in cases {
            assert_eq!(
                evaluate(rule, *states),
                *expected,
                "{rule:?} with {states:?}"
            );
        }
    }

    #[test]
    fn no_upstream_always_runs() {
        for (_, rule) in TriggerRule::ALL {
            assert_eq!(evaluate(rule, up(0, 0, 0, 0, 0)), Run);
        }
    }

    #[test]
    fn all_success() {
        check(
            R::AllSuccess,
            &[
                (up(2, 1, 0, 0, 0), Wait),
                (up(2, 2, 0, 0, 0), Run),
                (up(2, 1, 1, 0, 0), Skip),
                (up(3, 1, 0, 0, 0).with_skipped(1), Skip),
                (up(2, 0, 0, 1, 0), UpstreamFailed),
                (up(2, 0, 0, 0, 1), UpstreamFailed),
                (up(2, 0, 1, 1, 0), UpstreamFailed),
            ],
        );
    }

    #[test]
    fn all_failed() {
        check(
            R::AllFailed,
            &[
                (up(2, 0, 0, 1, 0), Wait),
                (up(2, 0, 0, 1, 1), Run),
                (up(2, 1, 0, 1, 0), Skip),
                (up(2, 0, 1, 0, 0), Skip),
            ],
        );
    }

    #[test]
    fn all_done() {
        check(
            R::AllDone,
            &[
                (up(3, 1, 1, 0, 0), Wait),
                (up(3, 1, 1, 1, 0), Run),
                (up(2, 0, 0, 0, 2), Run),
            ],
        );
    }

    #[test]
    fn all_done_min_one_success() {
        check(
            R::AllDoneMinOneSuccess,
            &[
                (up(2, 1, 0, 0, 0), Wait),
                (up(2, 1, 0, 1, 0), Run),
                (up(2, 0, 0, 1, 1), UpstreamFailed),
                // Any skipped upstream skips it at once, as in Airflow (apache/airflow#59925).
                (up(2, 1, 1, 0, 0), Skip),
                (up(2, 0, 1, 1, 0), Skip),
                (up(3, 0, 1, 0, 0), Skip),
                (up(2, 0, 2, 0, 0), Skip),
            ],
        );
    }

    #[test]
    fn all_skipped() {
        check(
            R::AllSkipped,
            &[
                (up(2, 0, 1, 0, 0), Wait),
                (up(2, 0, 2, 0, 0), Run),
                (up(2, 1, 0, 0, 0), Skip),
                (up(2, 0, 1, 1, 0), Skip),
            ],
        );
    }

    #[test]
    fn one_success() {
        check(
            R::OneSuccess,
            &[
                (up(3, 0, 0, 0, 0), Wait),
                (up(3, 1, 0, 0, 0), Run),
                (up(2, 0, 1, 0, 0), Wait),
                (up(2, 0, 2, 0, 0), Skip),
                (up(2, 0, 1, 1, 0), UpstreamFailed),
            ],
        );
    }

    #[test]
    fn one_failed() {
        check(
            R::OneFailed,
            &[
                (up(3, 1, 0, 0, 0), Wait),
                (up(3, 0, 0, 1, 0), Run),
                (up(3, 0, 0, 0, 1), Run),
                (up(2, 1, 1, 0, 0), Skip),
            ],
        );
    }

    #[test]
    fn one_done() {
        check(
            R::OneDone,
            &[
                (up(2, 0, 1, 0, 0), Wait),
                (up(2, 1, 0, 0, 0), Run),
                (up(2, 0, 0, 1, 0), Run),
                (up(2, 0, 2, 0, 0), Skip),
                (up(2, 0, 1, 0, 1), Skip),
            ],
        );
    }

    #[test]
    fn none_failed() {
        check(
            R::NoneFailed,
            &[
                (up(2, 1, 0, 0, 0), Wait),
                (up(2, 1, 1, 0, 0), Run),
                (up(2, 0, 2, 0, 0), Run),
                (up(2, 1, 0, 1, 0), UpstreamFailed),
            ],
        );
    }

    #[test]
    fn none_failed_min_one_success_is_the_branch_join() {
        check(
            R::NoneFailedMinOneSuccess,
            &[
                (up(2, 1, 0, 0, 0), Wait),
                (up(2, 1, 1, 0, 0), Run),
                (up(2, 0, 2, 0, 0), Skip),
                (up(2, 0, 1, 0, 1), UpstreamFailed),
            ],
        );
    }

    #[test]
    fn none_skipped() {
        check(
            R::NoneSkipped,
            &[
                (up(2, 1, 0, 0, 0), Wait),
                (up(2, 1, 0, 1, 0), Run),
                (up(2, 0, 1, 0, 0), Skip),
            ],
        );
    }

    #[test]
    fn always_runs_even_before_upstream_finishes() {
        check(
            R::Always,
            &[(up(2, 0, 0, 0, 0), Run), (up(2, 0, 0, 2, 0), Run)],
        );
    }

    #[test]
    fn skips_and_failures_propagate_down_a_chain() {
        // a (skipped) → b (all_success) → c (all_success): b is skipped, then c.
        assert_eq!(evaluate(R::AllSuccess, up(1, 0, 1, 0, 0)), Skip);
        // …and c sees b skipped, exactly as b saw a.
        assert_eq!(evaluate(R::NoneFailed, up(1, 0, 1, 0, 0)), Run);
        // a (failed) → b → c: upstream_failed all the way, and an all_done cleanup still runs.
        assert_eq!(evaluate(R::AllSuccess, up(1, 0, 0, 1, 0)), UpstreamFailed);
        assert_eq!(evaluate(R::AllSuccess, up(1, 0, 0, 0, 1)), UpstreamFailed);
        assert_eq!(evaluate(R::AllDone, up(1, 0, 0, 0, 1)), Run);
    }

    impl UpstreamStates {
        fn with_skipped(mut self, n: usize) -> Self {
            self.skipped = n;
            self
        }
    }
}
