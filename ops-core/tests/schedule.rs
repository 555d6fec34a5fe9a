//! The schedule arithmetic: next occurrences, time zones and DST, leap years, month ends,
//! jitter, deadlines and catch-up. Property tests over random instants from 1970 to 2200.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use ops_core::ErrorKind;
use ops_core::runbooks::RunbookConfig;
use ops_core::schedule::{CatchUp, Schedule, ScheduleConfig};
use proptest::prelude::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 1970 to 2200.
    (0i64..7_258_118_400).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap())
}

const PATTERNS: &[&str] = &[
    "0 9 * * *",
    "0 9-17 * * MON-FRI",
    "*/15 * * * *",
    "30 2 * * SUN",
    "0 3 1 1,4,7,10 *",
    "0 0 L * *",
    "0 2 * * SUN#1",
    "0 12 15W * *",
    "@hourly",
    "30 */6 * * *",
];
const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_next_occurrence_is_after_now_and_they_only_increase(
        p in 0..PATTERNS.len(),
        z in 0..ZONES.len(),
        t in instant(),
    ) {
        let s = Schedule::cron(PATTERNS[p], ZONES[z]).unwrap();
        let mut last = t;
        for _ in 0..20 {
            let next = s.next_after(last).unwrap().expect("these patterns never end");
            prop_assert!(next > last, "{} in {}: {next} after {last}", PATTERNS[p], ZONES[z]);
            last = next;
        }
    }

    #[test]
    fn a_daily_0230_job_runs_once_every_local_day_dst_or_not(
        z in 0..ZONES.len(),
        year in 1971i32..2199,
    ) {
        let zone: chrono_tz::Tz = ZONES[z].parse().unwrap();
        let s = Schedule::cron("30 2 * * *", ZONES[z]).unwrap();
        // Both DST changes of the northern and southern hemispheres fall in March-April or
        // September-November: walk those months of the year.
        for (from, to) in [((3, 1), (4, 30)), ((9, 20), (11, 10))] {
            let first = NaiveDate::from_ymd_opt(year, from.0, from.1).unwrap();
            let last = NaiveDate::from_ymd_opt(year, to.0, to.1).unwrap();
            // Midnight itself is skipped where DST begins at 00:00 (Santiago, Havana): 01:00.
            let start = [0, 1]
                .iter()
                .find_map(|h| zone.from_local_datetime(&first.and_hms_opt(*h, 0, 0).unwrap()).earliest())
                .unwrap()
                .with_timezone(&Utc);
            let mut per_day: BTreeMap<NaiveDate, u32> = BTreeMap::new();
            let mut t = start;
            loop {
                t = s.next_after(t).unwrap().unwrap();
                let local = t.with_timezone(&zone);
                if local.date_naive() > last {
                    break;
                }
                *per_day.entry(local.date_naive()).or_default() += 1;
                // Never earlier than 02:30 local; later only when 02:30 did not exist.
                prop_assert!((local.hour(), local.minute()) >= (2, 30), "{local}");
            }
            let days = (last - first).num_days() + 1;
            prop_assert_eq!(per_day.len() as i64, days, "a day skipped in {}", ZONES[z]);
            prop_assert!(per_day.values().all(|n| *n == 1), "a day doubled: {:?}", per_day);
        }
    }

    #[test]
    fn the_29th_of_february_comes_in_leap_years_only(year in 1970i32..2190) {
        let s = Schedule::cron("0 0 29 2 *", "UTC").unwrap();
        let next = s.next_after(Utc.with_ymd_and_hms(year, 3, 1, 0, 0, 0).unwrap()).unwrap().unwrap();
        let leap = |y: i32| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let expected = (year + 1..).find(|y| leap(*y)).unwrap();
        prop_assert_eq!(next, Utc.with_ymd_and_hms(expected, 2, 29, 0, 0, 0).unwrap());
    }

    #[test]
    fn month_ends_are_the_last_day_and_the_31st_skips_short_months(t in instant()) {
        let last = Schedule::cron("0 0 L * *", "UTC").unwrap();
        let thirty_first = Schedule::cron("0 0 31 * *", "UTC").unwrap();
        let l = last.next_after(t).unwrap().unwrap();
        prop_assert_eq!((l + chrono::Duration::days(1)).month(), (l.month() % 12) + 1, "{} is the month's last day", l);
        let d = thirty_first.next_after(t).unwrap().unwrap();
        prop_assert_eq!(d.day(), 31);
        prop_assert!(d - t <= chrono::Duration::days(62), "at most two months ahead: {} after {}", d, t);
    }

    #[test]
    fn every_occurrence_is_either_run_or_missed_never_both_never_neither(
        p in 0..PATTERNS.len(),
        since in instant(),
        gap in 0i64..40 * 86_400,
        policy in 0..3usize,
        limit in 1u32..5,
        max in 1usize..200,
    ) {
        let config = ScheduleConfig {
            cron: PATTERNS[p].into(),
            catch_up: [CatchUp::Once, CatchUp::All, CatchUp::Skip][policy],
            catch_up_limit: limit,
            jitter: Duration::from_secs(90),
            ..ScheduleConfig::default()
        };
        let s = Schedule::new(config).unwrap();
        let now = since + chrono::Duration::seconds(gap);
        let due = s.due("job", since, now, max).unwrap();
        let mut all: Vec<_> = due.run.iter().chain(&due.missed).copied().collect();
        all.sort();
        // Exactly the occurrences in (since, through], each once.
        let mut expected = Vec::new();
        let mut t = since;
        while let Some(o) = s.next_after(t).unwrap() {
            if o > due.through { break; }
            expected.push(o);
            t = o;
        }
        prop_assert_eq!(&all, &expected);
        prop_assert!(all.len() <= max);
        prop_assert!(due.run.iter().all(|o| s.start_of("job", *o) <= now));
        prop_assert!(due.run.windows(2).all(|w| w[0] < w[1]));
        let late_run = due.run.iter().filter(|o| now > s.deadline_of("job", **o).unwrap()).count();
        match [CatchUp::Once, CatchUp::All, CatchUp::Skip][policy] {
            CatchUp::Once => prop_assert!(late_run <= 1),
            CatchUp::All => prop_assert!(late_run <= limit as usize),
            CatchUp::Skip => prop_assert_eq!(late_run, 0),
        }
    }

    #[test]
    fn any_text_as_a_pattern_or_zone_is_a_config_error_not_a_panic(
        cron in "\\PC{0,40}",
        zone in "\\PC{0,20}",
    ) {
        let config = ScheduleConfig { cron, time_zone: zone, ..ScheduleConfig::default() };
        if let Err(e) = Schedule::new(config) {
            prop_assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{e}");
        }
    }
}

#[test]
fn dst_in_berlin_spring_forward_runs_after_the_gap_and_fall_back_runs_once() {
    let s = Schedule::cron("30 2 * * *", "Europe/Berlin").unwrap();
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist, it runs at 03:00 (01:00Z).
    let spring = s.next_after(at("2026-03-28T12:00:00Z")).unwrap().unwrap();
    assert_eq!(spring, at("2026-03-29T01:00:00Z"));
    // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice, it runs once.
    let first = s.next_after(at("2026-10-24T12:00:00Z")).unwrap().unwrap();
    assert_eq!(first, at("2026-10-25T00:30:00Z"), "the first 02:30 (CEST)");
    let next = s.next_after(first).unwrap().unwrap();
    assert_eq!(next, at("2026-10-26T01:30:00Z"), "not again at 02:30 CET");
}

#[test]
fn a_missed_night_catches_up_once_and_journals_the_rest_as_missed() {
    let s = Schedule::cron("0 * * * *", "UTC").unwrap(); // hourly, deadline: the next hour
    let due = s
        .due(
            "backup",
            at("2026-11-30T00:00:00Z"),
            at("2026-11-30T06:20:00Z"),
            100,
        )
        .unwrap();
    // 01:00 to 05:00 were missed; 06:00 is on time (its deadline is 07:00), so no catch-up.
    assert_eq!(due.run, [at("2026-11-30T06:00:00Z")]);
    assert_eq!(due.missed.len(), 5);
    assert_eq!(due.through, at("2026-11-30T06:00:00Z"));

    let daily = Schedule::new(ScheduleConfig {
        cron: "0 9 * * *".into(),
        deadline: Some(Duration::from_secs(3600)),
        ..ScheduleConfig::default()
    })
    .unwrap();
    // Down from Friday to Monday 08:00: Saturday's and Sunday's 09:00 missed, the latest runs.
    let due = daily
        .due(
            "check",
            at("2026-11-27T09:30:00Z"),
            at("2026-11-30T08:00:00Z"),
            100,
        )
        .unwrap();
    assert_eq!(due.run, [at("2026-11-29T09:00:00Z")]);
    assert_eq!(due.missed, [at("2026-11-28T09:00:00Z")]);
}

#[test]
fn jitter_is_the_same_on_every_replica_and_within_its_bound() {
    let s = Schedule::new(ScheduleConfig {
        cron: "0 * * * *".into(),
        jitter: Duration::from_secs(300),
        ..ScheduleConfig::default()
    })
    .unwrap();
    let o = at("2026-11-30T10:00:00Z");
    let start = s.start_of("health-check", o);
    assert_eq!(start, s.start_of("health-check", o), "deterministic");
    assert!(start >= o && start < o + chrono::Duration::seconds(300));
    let spread: std::collections::BTreeSet<_> = (0..50)
        .map(|i| s.start_of(&format!("job-{i}"), o))
        .collect();
    assert!(
        spread.len() > 40,
        "different schedules start apart: {}",
        spread.len()
    );
    // Not due before its start.
    let due = s
        .due(
            "health-check",
            o - chrono::Duration::seconds(1),
            start - chrono::Duration::milliseconds(1),
            10,
        )
        .unwrap();
    assert!(due.run.is_empty() && due.through < o);
}

#[test]
fn bad_settings_are_refused_by_field() {
    let field = |toml: &str| match ScheduleConfig::from_toml(toml) {
        Err(e) => e.to_string(),
        Ok(c) => panic!("accepted {c:?}"),
    };
    assert!(field("cron = \"61 * * * *\"").contains("cron"));
    assert!(field("cron = \"0 0 31 2 *\"").contains("never matches"));
    assert!(field("time_zone = \"Mars/Olympus\"").contains("time_zone"));
    assert!(field("deadline = \"0s\"").contains("deadline"));
    assert!(field("catch_up_limit = 0").contains("catch_up_limit"));
    assert!(field("jitter = \"400d\"").contains("jitter"));
    assert!(field("overlap = \"sometimes\"").contains("overlap"));
    let ok = ScheduleConfig::from_toml(
        "cron = \"0 2 * * SUN#1\"\ntime_zone = \"Europe/Berlin\"\njitter = \"5m\"\ndeadline = \"2h\"\noverlap = \"queue\"\ncatch_up = \"all\"\ncatch_up_limit = 3",
    )
    .unwrap();
    assert_eq!(ok.catch_up_limit, 3);
}
