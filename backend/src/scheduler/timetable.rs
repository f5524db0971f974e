//! Timetables: when a DAG's scheduled runs happen, with Airflow's data intervals.
//!
//! A cron schedule cuts time into intervals between consecutive ticks, read in the DAG's time
//! zone. A run covers one interval: its `logical_date` is the interval's start, and it is due
//! (`run_after`) at the interval's end. Like Airflow, schedules that fire every hour keep a
//! real hour between ticks across DST changes (no hour skipped or doubled); the others follow
//! the wall clock (a daily 02:30 run happens at 03:30 on the day 02:30 does not exist).

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use updraft_shared::dag::parse::PRESETS;
use updraft_shared::dag::Dag;

/// The period of data a run covers: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataInterval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The next run a timetable wants: its interval and when it may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DagRunInfo {
    pub data_interval: DataInterval,
    pub run_after: DateTime<Utc>,
}

impl DagRunInfo {
    /// Airflow's `logical_date`: the start of the data interval.
    pub fn logical_date(&self) -> DateTime<Utc> {
        self.data_interval.start
    }
}

/// Bounds on scheduled runs: the DAG's `start_date`, `end_date` and `catchup`.
#[derive(Debug, Clone, Copy)]
pub struct Restriction {
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
    pub catchup: bool,
}

impl Restriction {
    pub fn of(dag: &Dag) -> Self {
        Restriction {
            earliest: dag.start_date.map(|d| d.0),
            latest: dag.end_date.map(|d| d.0),
            catchup: dag.catchup,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Timetable {
    /// `schedule: null`: manual runs only.
    Manual,
    /// `@once`: one run, at the start date.
    Once,
    Cron(Box<CronTimetable>),
}

#[derive(Debug, Clone)]
pub struct CronTimetable {
    cron: croner::Cron,
    tz: Tz,
    /// The hour field covers all 24 hours: ticks keep real-time spacing across DST.
    every_hour: bool,
}

/// Ticks further apart than this are not searched for (a cron that matches only on
/// 29 February fires at least every 8 years).
const MAX_LOOKBACK_DAYS: i64 = 8 * 366 + 1;

impl Timetable {
    /// The timetable of a parsed (so already validated) DAG.
    pub fn of(dag: &Dag) -> Result<Self, String> {
        let Some(schedule) = dag.schedule.as_deref() else {
            return Ok(Timetable::Manual);
        };
        if schedule == "@once" {
            return Ok(Timetable::Once);
        }
        let expr = PRESETS
            .iter()
            .find(|(p, _)| *p == schedule)
            .and_then(|(_, c)| *c)
            .unwrap_or(schedule);
        let tz: Tz = dag
            .timezone
            .parse()
            .map_err(|_| format!("unknown time zone {}", dag.timezone))?;
        CronTimetable::new(expr, tz).map(|c| Timetable::Cron(Box::new(c)))
    }

    /// The run after `last` (the newest scheduled run's interval), or None when there is none
    /// (manual only, past the end date, or `@once` already done). `now` decides where a
    /// DAG without catchup starts.
    pub fn next_dagrun_info(
        &self,
        last: Option<DataInterval>,
        restriction: Restriction,
        now: DateTime<Utc>,
    ) -> Option<DagRunInfo> {
        match self {
            Timetable::Manual => None,
            Timetable::Once => {
                if last.is_some() {
                    return None;
                }
                let at = restriction.earliest?;
                Some(DagRunInfo {
                    data_interval: DataInterval { start: at, end: at },
                    run_after: at,
                })
            }
            Timetable::Cron(cron) => cron.next_dagrun_info(last, restriction, now),
        }
    }

    /// The interval of a run triggered by hand at `run_after`: the last complete interval for
    /// a cron schedule, the instant itself otherwise (Airflow's `infer_manual_data_interval`).
    pub fn infer_manual_data_interval(&self, run_after: DateTime<Utc>) -> DataInterval {
        match self {
            Timetable::Cron(cron) => cron.infer_manual_data_interval(run_after),
            _ => DataInterval {
                start: run_after,
                end: run_after,
            },
        }
    }
}

impl CronTimetable {
    pub fn new(expr: &str, tz: Tz) -> Result<Self, String> {
        let cron = croner::Cron::new(expr)
            .parse()
            .map_err(|e| format!("invalid cron expression `{expr}`: {e}"))?;
        let hour_field = expr.split_whitespace().nth(1).unwrap_or("*");
        let every_hour = matches!(hour_field, "*" | "*/1" | "0-23");
        Ok(Self {
            cron,
            tz,
            every_hour,
        })
    }

    fn naive(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }

    /// Wall-clock time in the zone → an instant; a time in a DST gap moves forward out of it,
    /// an ambiguous one takes its first occurrence (as Airflow's pendulum does).
    fn aware(&self, naive: NaiveDateTime) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            chrono::LocalResult::None => {
                // Read it with the offset in force before the gap: 02:30 in a gap from 02:00 to
                // 03:00 becomes 03:30 (pendulum's post-transition rule, which Airflow uses).
                use chrono::Offset;
                let before = self
                    .tz
                    .offset_from_utc_datetime(&(naive - Duration::days(1)))
                    .fix();
                Utc.from_utc_datetime(&(naive - Duration::seconds(before.local_minus_utc() as i64)))
            }
        }
    }

    /// The first naive tick strictly after `naive` (croner on a zone-less clock).
    fn naive_next(&self, naive: NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron
            .find_next_occurrence(&Utc.from_utc_datetime(&naive), false)
            .ok()
            .map(|t| t.naive_utc())
    }

    /// The last naive tick strictly before `naive`.
    fn naive_prev(&self, naive: NaiveDateTime) -> Option<NaiveDateTime> {
        for window in [1, 2, 32, 367, MAX_LOOKBACK_DAYS] {
            let from = naive - Duration::days(window);
            let mut tick = self
                .cron
                .find_next_occurrence(&Utc.from_utc_datetime(&from), true)
                .ok()?
                .naive_utc();
            if tick >= naive {
                continue;
            }
            // Walk forward to the last tick before `naive`; windows grow, so this stays short
            // relative to the schedule's own frequency.
            loop {
                match self.naive_next(tick) {
                    Some(next) if next < naive => tick = next,
                    _ => return Some(tick),
                }
            }
        }
        None
    }

    /// Airflow's `_get_next`: the first tick after `current`.
    pub fn next_after(&self, current: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let naive = self.naive(current);
        let next = self.naive_next(naive)?;
        Some(if self.every_hour {
            current + (next - naive)
        } else {
            self.aware(next)
        })
    }

    /// Airflow's `_get_prev`: the last tick before `current`.
    pub fn prev_before(&self, current: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let naive = self.naive(current);
        let prev = self.naive_prev(naive)?;
        Some(if self.every_hour {
            current - (naive - prev)
        } else {
            self.aware(prev)
        })
    }

    /// `current` if it is a tick, else the next tick.
    fn align_to_next(&self, current: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = self.next_after(current)?;
        if self.prev_before(next) == Some(current) {
            Some(current)
        } else {
            Some(next)
        }
    }

    /// `current` if it is a tick, else the previous tick.
    fn align_to_prev(&self, current: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let prev = self.prev_before(current)?;
        if self.next_after(prev) == Some(current) {
            Some(current)
        } else {
            Some(prev)
        }
    }

    /// Without catchup: the start of the latest interval that has already ended.
    fn skip_to_latest(
        &self,
        earliest: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let last_start = self.prev_before(now)?;
        let next_start = self.next_after(last_start)?;
        let new_start = if next_start == now {
            last_start
        } else {
            self.prev_before(last_start)?
        };
        match earliest {
            None => Some(new_start),
            Some(e) => Some(new_start.max(self.align_to_next(e)?)),
        }
    }

    fn next_dagrun_info(
        &self,
        last: Option<DataInterval>,
        restriction: Restriction,
        now: DateTime<Utc>,
    ) -> Option<DagRunInfo> {
        let start = if restriction.catchup {
            match last {
                Some(last) => last.end,
                None => self.align_to_next(restriction.earliest?)?,
            }
        } else {
            let latest = self.skip_to_latest(restriction.earliest, now)?;
            match last {
                Some(last) => latest.max(last.end),
                None => latest,
            }
        };
        if restriction.latest.is_some_and(|end| start > end) {
            return None;
        }
        let end = self.next_after(start)?;
        Some(DagRunInfo {
            data_interval: DataInterval { start, end },
            run_after: end,
        })
    }

    fn infer_manual_data_interval(&self, run_after: DateTime<Utc>) -> DataInterval {
        match self
            .align_to_prev(run_after)
            .and_then(|end| Some((self.prev_before(end)?, end)))
        {
            Some((start, end)) => DataInterval { start, end },
            None => DataInterval {
                start: run_after,
                end: run_after,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cron(expr: &str, tz: &str) -> CronTimetable {
        CronTimetable::new(expr, tz.parse().unwrap()).unwrap()
    }

    fn restriction(start: &str, catchup: bool) -> Restriction {
        Restriction {
            earliest: Some(utc(start)),
            latest: None,
            catchup,
        }
    }

    /// The first `n` intervals with catchup from `start`.
    fn intervals(t: &CronTimetable, start: &str, n: usize) -> Vec<DataInterval> {
        let mut out: Vec<DataInterval> = Vec::new();
        for _ in 0..n {
            let info = t
                .next_dagrun_info(
                    out.last().copied(),
                    restriction(start, true),
                    utc("2030-01-01T00:00:00Z"),
                )
                .unwrap();
            out.push(info.data_interval);
        }
        out
    }

    #[test]
    fn daily_catchup_starts_at_start_date_and_is_contiguous() {
        let t = cron("0 0 * * *", "UTC");
        let runs = intervals(&t, "2024-01-01T00:00:00Z", 3);
        assert_eq!(runs[0].start, utc("2024-01-01T00:00:00Z"));
        assert_eq!(runs[0].end, utc("2024-01-02T00:00:00Z"));
        assert_eq!(runs[2].start, utc("2024-01-03T00:00:00Z"));
        for pair in runs.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
    }

    #[test]
    fn a_start_date_between_ticks_aligns_to_the_next_tick() {
        let t = cron("0 6 * * *", "UTC");
        let runs = intervals(&t, "2024-01-01T07:00:00Z", 1);
        assert_eq!(runs[0].start, utc("2024-01-02T06:00:00Z"));
    }

    #[test]
    fn without_catchup_only_the_latest_complete_interval_runs() {
        let t = cron("0 0 * * *", "UTC");
        let now = utc("2024-03-10T12:00:00Z");
        let info = t
            .next_dagrun_info(None, restriction("2024-01-01T00:00:00Z", false), now)
            .unwrap();
        assert_eq!(info.data_interval.start, utc("2024-03-09T00:00:00Z"));
        assert_eq!(info.run_after, utc("2024-03-10T00:00:00Z"));
        // Exactly on a tick, the interval that just ended.
        let info = t
            .next_dagrun_info(
                None,
                restriction("2024-01-01T00:00:00Z", false),
                utc("2024-03-10T00:00:00Z"),
            )
            .unwrap();
        assert_eq!(info.data_interval.start, utc("2024-03-09T00:00:00Z"));
        // A start date in the future wins.
        let info = t
            .next_dagrun_info(None, restriction("2024-06-01T00:00:00Z", false), now)
            .unwrap();
        assert_eq!(info.data_interval.start, utc("2024-06-01T00:00:00Z"));
    }

    #[test]
    fn end_date_stops_the_schedule() {
        let t = cron("0 0 * * *", "UTC");
        let r = Restriction {
            earliest: Some(utc("2024-01-01T00:00:00Z")),
            latest: Some(utc("2024-01-02T00:00:00Z")),
            catchup: true,
        };
        let last = DataInterval {
            start: utc("2024-01-02T00:00:00Z"),
            end: utc("2024-01-03T00:00:00Z"),
        };
        assert!(t
            .next_dagrun_info(Some(last), r, utc("2030-01-01T00:00:00Z"))
            .is_none());
    }

    #[test]
    fn hourly_keeps_real_hours_across_the_autumn_change() {
        // Europe/Paris leaves summer time on 2024-10-27 at 03:00 CEST (01:00 UTC).
        let t = cron("0 * * * *", "Europe/Paris");
        let runs = intervals(&t, "2024-10-26T22:00:00Z", 6);
        for r in &runs {
            assert_eq!(r.end - r.start, Duration::hours(1), "{r:?}");
        }
        for pair in runs.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
    }

    #[test]
    fn daily_follows_the_wall_clock_across_dst() {
        // New York: 2024-03-10 has 23 hours, 2024-11-03 has 25.
        let t = cron("0 0 * * *", "America/New_York");
        let spring = intervals(&t, "2024-03-09T05:00:00Z", 2);
        assert_eq!(spring[0].start, utc("2024-03-09T05:00:00Z"));
        assert_eq!(spring[1].start, utc("2024-03-10T05:00:00Z"));
        assert_eq!(spring[1].end, utc("2024-03-11T04:00:00Z"));
        assert_eq!(spring[1].end - spring[1].start, Duration::hours(23));
        let autumn = intervals(&t, "2024-11-03T04:00:00Z", 1);
        assert_eq!(autumn[0].end - autumn[0].start, Duration::hours(25));
    }

    #[test]
    fn a_time_inside_a_dst_gap_moves_forward_and_nothing_repeats() {
        // 02:30 does not exist in Paris on 2024-03-31: that day's run is at 03:30 CEST.
        let t = cron("30 2 * * *", "Europe/Paris");
        let runs = intervals(&t, "2024-03-29T01:30:00Z", 4);
        let starts: Vec<_> = runs.iter().map(|r| r.start).collect();
        assert_eq!(
            starts,
            [
                utc("2024-03-29T01:30:00Z"),
                utc("2024-03-30T01:30:00Z"),
                utc("2024-03-31T01:30:00Z"),
                utc("2024-04-01T00:30:00Z"),
            ]
        );
        for pair in runs.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
    }

    #[test]
    fn monthly_and_yearly_presets_find_previous_ticks_far_back() {
        let t = cron("0 0 1 1 *", "UTC");
        assert_eq!(
            t.prev_before(utc("2024-06-01T00:00:00Z")),
            Some(utc("2024-01-01T00:00:00Z"))
        );
        let leap = cron("0 0 29 2 *", "UTC");
        assert_eq!(
            leap.prev_before(utc("2027-06-01T00:00:00Z")),
            Some(utc("2024-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn manual_runs_cover_the_last_complete_interval() {
        let t = Timetable::Cron(Box::new(cron("0 0 * * *", "UTC")));
        let i = t.infer_manual_data_interval(utc("2024-03-10T12:00:00Z"));
        assert_eq!(i.start, utc("2024-03-09T00:00:00Z"));
        assert_eq!(i.end, utc("2024-03-10T00:00:00Z"));
        let i = Timetable::Manual.infer_manual_data_interval(utc("2024-03-10T12:00:00Z"));
        assert_eq!(i.start, i.end);
    }

    #[test]
    fn once_runs_once_at_the_start_date() {
        let r = restriction("2024-01-01T00:00:00Z", false);
        let first = Timetable::Once
            .next_dagrun_info(None, r, utc("2030-01-01T00:00:00Z"))
            .unwrap();
        assert_eq!(first.logical_date(), utc("2024-01-01T00:00:00Z"));
        assert!(Timetable::Once
            .next_dagrun_info(Some(first.data_interval), r, utc("2030-01-01T00:00:00Z"))
            .is_none());
        assert!(Timetable::Manual
            .next_dagrun_info(None, r, utc("2030-01-01T00:00:00Z"))
            .is_none());
    }
}
