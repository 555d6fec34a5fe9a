//! Change control: the stopped line and freezes refuse every mutating run but emergencies,
//! window-only runbooks wait for (or are refused outside) their window, checks are never held,
//! and every switch and decision is in the journal with who set it. Window arithmetic is
//! property-tested, DST included.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ops_core::ErrorKind;
use ops_core::clock::{Clock, ManualClock, SharedClock};
use ops_core::engine::{
    Action, Category, EventKind, Journal, JournalFilter, MemoryJournal, Mode, RunControl,
    RunOutcome, Runbook, Runner, Step, run_summaries,
};
use ops_core::schedule::*;
use proptest::prelude::*;

/// Monday 30 November 2026, 10:00 UTC.
fn monday() -> DateTime<Utc> {
    "2026-11-30T10:00:00Z".parse().unwrap()
}

fn calendar() -> ChangeCalendarConfig {
    let mut c = ChangeCalendarConfig::default();
    c.windows.insert(
        "db-maintenance".into(),
        WindowConfig {
            opens: "0 2 * * SUN".into(),
            time_zone: "UTC".into(),
            lasts: Duration::from_secs(2 * 3600),
        },
    );
    c.freezes.push(Freeze {
        name: "year-end".into(),
        from: "2026-12-20T00:00:00Z".parse().unwrap(),
        until: "2027-01-04T00:00:00Z".parse().unwrap(),
        reason: "year-end trading".into(),
    });
    c
}

struct World {
    clock: Arc<ManualClock>,
    journal: Arc<MemoryJournal>,
    control: Arc<ChangeControl>,
    runner: Runner,
}

fn world() -> World {
    let clock = Arc::new(ManualClock::starting_at(monday()));
    let journal = Arc::new(MemoryJournal::new());
    let shared: SharedClock = clock.clone();
    let control =
        Arc::new(ChangeControl::new(calendar(), journal.clone(), shared.clone()).unwrap());
    let runner = Runner::new()
        .with_clock(shared)
        .with_journal(journal.clone())
        .with_change_control(control.clone());
    World {
        clock,
        journal,
        control,
        runner,
    }
}

/// A runbook of `category` with one counted change.
fn change(name: &str, category: Category, count: Arc<AtomicU32>) -> Runbook {
    Runbook::new(name, "api")
        .with_category(category)
        .step(Step::mutate("change", move |_| {
            let count = count.clone();
            Ok(Action::new("change", serde_json::json!({}), async move {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
        }))
}

fn check(count: Arc<AtomicU32>) -> Runbook {
    Runbook::new("health-check", "api")
        .with_category(Category::Check)
        .step(Step::read("probe", move |_| {
            let count = count.clone();
            Ok(Action::new("probe", serde_json::json!({}), async move {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(true)
            }))
        }))
}

#[tokio::test]
async fn a_stopped_line_refuses_changes_but_not_rollbacks_checks_or_dry_runs() {
    let w = world();
    let n = Arc::new(AtomicU32::new(0));
    w.control
        .stop_the_line("alice", "payments are double-charging")
        .await
        .unwrap();

    let deploy = w
        .runner
        .run(
            &change("deploy", Category::Deploy, n.clone()),
            Mode::Execute,
        )
        .await
        .unwrap();
    assert_eq!(deploy.outcome, Some(RunOutcome::Failed));
    assert_eq!(
        n.load(Ordering::SeqCst),
        0,
        "the refused deploy changed nothing"
    );
    let error = deploy.error.as_ref().unwrap().message.clone();
    assert!(error.contains("line stopped set by alice"), "{error}");
    assert!(error.contains("payments are double-charging"), "{error}");
    assert_eq!(deploy.change_control[0].verdict, Verdict::Refused);
    assert_eq!(deploy.change_control[0].set_by.as_deref(), Some("alice"));

    let plan = w
        .runner
        .run(&change("deploy", Category::Deploy, n.clone()), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(plan.outcome, Some(RunOutcome::Planned));
    assert_eq!(
        plan.change_control[0].verdict,
        Verdict::Refused,
        "the plan says so"
    );

    let rollback = w
        .runner
        .run(
            &change("rollback", Category::Rollback, n.clone()),
            Mode::Execute,
        )
        .await
        .unwrap();
    assert_eq!(rollback.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(rollback.change_control[0].verdict, Verdict::Exempt);
    assert_eq!(n.load(Ordering::SeqCst), 1);

    // A restore marked as an emergency goes through; a rollback marked otherwise does not.
    let restore = change("restore", Category::Restore, n.clone()).emergency(true);
    assert!(
        w.runner
            .run(&restore, Mode::Execute)
            .await
            .unwrap()
            .error
            .is_none()
    );
    let held = change("rollback", Category::Rollback, n.clone()).emergency(false);
    assert!(
        w.runner
            .run(&held, Mode::Execute)
            .await
            .unwrap()
            .error
            .is_some()
    );
    assert_eq!(n.load(Ordering::SeqCst), 2);

    let probes = Arc::new(AtomicU32::new(0));
    let report = w
        .runner
        .run(&check(probes.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    assert!(report.change_control.is_empty(), "checks are not held");
    assert_eq!(probes.load(Ordering::SeqCst), 1);

    w.control
        .restart_the_line("bob", "fix deployed and verified")
        .await
        .unwrap();
    let deploy = w
        .runner
        .run(
            &change("deploy", Category::Deploy, n.clone()),
            Mode::Execute,
        )
        .await
        .unwrap();
    assert_eq!(deploy.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(deploy.change_control[0].verdict, Verdict::Allowed);

    // The switches are in the journal with who set them, and are not listed as runs.
    let switches = w
        .journal
        .events(&JournalFilter::run(CHANGE_CONTROL_RUN))
        .await
        .unwrap();
    let who: Vec<_> = switches
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ChangeControlSet { by, switch, .. } => Some((by.as_str(), switch.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        who,
        vec![
            ("alice", ChangeSwitch::LineStopped),
            ("bob", ChangeSwitch::LineRestarted)
        ]
    );
    let all = w.journal.events(&JournalFilter::default()).await.unwrap();
    assert!(
        run_summaries(&all)
            .iter()
            .all(|r| r.run_id != CHANGE_CONTROL_RUN)
    );
}

#[tokio::test]
async fn freezes_planned_and_set_at_run_time_hold_changes_while_they_last() {
    let w = world();
    let n = Arc::new(AtomicU32::new(0));
    let deploy = || change("deploy", Category::Deploy, n.clone());

    // The planned year-end freeze.
    w.clock.advance(Duration::from_secs(21 * 86_400)); // 21 December
    let r = w.runner.run(&deploy(), Mode::Execute).await.unwrap();
    assert_eq!(r.change_control[0].rule, "freeze year-end");
    assert_eq!(r.change_control[0].set_by.as_deref(), Some("config"));
    assert_eq!(
        r.change_control[0].until,
        Some("2027-01-04T00:00:00Z".parse().unwrap())
    );
    assert_eq!(r.outcome, Some(RunOutcome::Failed));

    // Lifted early by someone, with a reason.
    w.control
        .lift_freeze("year-end", "carol", "hotfix agreed with finance")
        .await
        .unwrap();
    let r = w.runner.run(&deploy(), Mode::Execute).await.unwrap();
    assert_eq!(r.outcome, Some(RunOutcome::Succeeded));

    // A freeze set at run time, until a time that then passes.
    let now = w.clock.now();
    w.control
        .freeze(
            Freeze {
                name: "incident-4711".into(),
                from: now,
                until: now + chrono::Duration::hours(4),
                reason: "incident under investigation".into(),
            },
            "dave",
        )
        .await
        .unwrap();
    let r = w.runner.run(&deploy(), Mode::Execute).await.unwrap();
    assert_eq!(r.change_control[0].set_by.as_deref(), Some("dave"));
    assert_eq!(r.outcome, Some(RunOutcome::Failed));
    w.clock.advance(Duration::from_secs(4 * 3600));
    let r = w.runner.run(&deploy(), Mode::Execute).await.unwrap();
    assert_eq!(r.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(n.load(Ordering::SeqCst), 2);

    // Bad input is a typed error naming the field.
    let bad = Freeze {
        name: "backwards".into(),
        from: now,
        until: now,
        reason: "x".into(),
    };
    let e = w.control.freeze(bad, "dave").await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { field, .. } if field == "until"));
    let e = w
        .control
        .lift_freeze("no-such-freeze", "dave", "x")
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NotFound { .. }));
    let e = w.control.stop_the_line(" ", "why").await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { field, .. } if field == "by"));
}

#[tokio::test]
async fn a_window_only_run_waits_for_its_window_or_is_refused() {
    let w = world();
    let n = Arc::new(AtomicU32::new(0));
    let maintenance = change("db-maintenance", Category::Maintenance, n.clone())
        .window_only("db-maintenance", OutsideWindow::Wait);

    // Monday 10:00: it waits until Sunday 02:00, then runs.
    let r = w.runner.run(&maintenance, Mode::Execute).await.unwrap();
    assert_eq!(r.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(n.load(Ordering::SeqCst), 1);
    let sunday: DateTime<Utc> = "2026-12-06T02:00:00Z".parse().unwrap();
    assert_eq!(
        w.clock.sleeps(),
        vec![(sunday - monday()).to_std().unwrap()]
    );
    let verdicts: Vec<_> = r.change_control.iter().map(|d| d.verdict).collect();
    assert_eq!(verdicts, vec![Verdict::Wait, Verdict::Allowed]);
    assert_eq!(r.change_control[0].until, Some(sunday));
    assert_eq!(
        r.change_control[1].until,
        Some(sunday + chrono::Duration::hours(2)),
        "allowed until the window closes"
    );

    // Inside the window it runs at once; after it, "refuse" fails saying when it opens next.
    let r = w.runner.run(&maintenance, Mode::Execute).await.unwrap();
    assert_eq!(r.change_control[0].verdict, Verdict::Allowed);
    w.clock.advance(Duration::from_secs(2 * 3600));
    let refusing = change("db-maintenance", Category::Maintenance, n.clone())
        .window_only("db-maintenance", OutsideWindow::Refuse);
    let r = w.runner.run(&refusing, Mode::Execute).await.unwrap();
    assert_eq!(r.outcome, Some(RunOutcome::Failed));
    let message = &r.error.as_ref().unwrap().message;
    assert!(message.contains("until 2026-12-13 02:00 UTC"), "{message}");
    assert_eq!(n.load(Ordering::SeqCst), 2);

    // A freeze set while a run waits holds it when the window opens.
    w.control
        .freeze(
            Freeze {
                name: "release-week".into(),
                from: w.clock.now(),
                until: "2026-12-14T00:00:00Z".parse().unwrap(),
                reason: "release week".into(),
            },
            "erin",
        )
        .await
        .unwrap();
    let r = w.runner.run(&maintenance, Mode::Execute).await.unwrap();
    assert_eq!(r.outcome, Some(RunOutcome::Failed));
    assert_eq!(r.change_control[0].rule, "freeze release-week");
    assert_eq!(n.load(Ordering::SeqCst), 2);

    // An unknown window is a typed failure of the run, not a silent pass.
    let unknown = change("x", Category::Maintenance, n.clone())
        .window_only("no-such-window", OutsideWindow::Wait);
    w.clock.advance(Duration::from_secs(30 * 86_400));
    let r = w.runner.run(&unknown, Mode::Execute).await.unwrap();
    assert_eq!(r.outcome, Some(RunOutcome::Failed));
    assert!(r.error.unwrap().message.contains("no-such-window"));
}

#[tokio::test]
async fn cancelling_a_run_that_waits_for_its_window_ends_it_cancelled() {
    // A real (paused) clock here: the wait must be a sleep the cancel can interrupt.
    tokio::time::pause();
    let clock: SharedClock = Arc::new(ops_core::clock::SimulatedClock::starting_at(monday()));
    let journal = Arc::new(MemoryJournal::new());
    let control = Arc::new(ChangeControl::new(calendar(), journal.clone(), clock.clone()).unwrap());
    let runner = Runner::new()
        .with_clock(clock)
        .with_journal(journal)
        .with_change_control(control);
    let n = Arc::new(AtomicU32::new(0));
    let rb = change("db-maintenance", Category::Maintenance, n.clone())
        .window_only("db-maintenance", OutsideWindow::Wait);
    let ctl = RunControl::new();
    let (r, ()) = tokio::join!(runner.run_with(&rb, Mode::Execute, &ctl, None), async {
        tokio::task::yield_now().await;
        ctl.cancel();
    });
    let r = r.unwrap();
    assert_eq!(r.outcome, Some(RunOutcome::Cancelled));
    assert_eq!(n.load(Ordering::SeqCst), 0);
}

#[test]
fn the_change_control_run_id_is_reserved() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let w = world();
    let e = rt
        .block_on(w.runner.run_with(
            &check(Arc::new(AtomicU32::new(0))),
            Mode::Execute,
            &RunControl::new(),
            Some(CHANGE_CONTROL_RUN.into()),
        ))
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { field, .. } if field == "run_id"));
}

#[test]
fn window_configs_are_checked() {
    let mk = |opens: &str, tz: &str, secs: u64| {
        Window::new("w", opens, tz, Duration::from_secs(secs)).map(|_| ())
    };
    assert!(mk("0 2 * * SUN", "UTC", 7200).is_ok());
    for (opens, tz, secs, field) in [
        ("0 2 * * SUN", "UTC", 0, "lasts"),
        ("0 2 * * SUN", "UTC", 8 * 86_400, "lasts"),
        ("not cron", "UTC", 60, "opens"),
        ("0 2 * * SUN", "Mars/Olympus", 60, "time_zone"),
    ] {
        let e = mk(opens, tz, secs).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::InvalidInput { field: f, .. } if f == field),
            "{opens} {tz} {secs}: {e}"
        );
    }
}

#[test]
fn a_window_in_a_dst_zone_opens_at_local_time_on_both_sides_of_the_change() {
    // Sunday 02:00–04:00 Berlin time: 01:00 UTC in winter, 00:00 UTC in summer.
    let w = Window::new(
        "w",
        "0 2 * * SUN",
        "Europe/Berlin",
        Duration::from_secs(2 * 3600),
    )
    .unwrap();
    let winter = Utc.with_ymd_and_hms(2026, 3, 22, 1, 30, 0).unwrap();
    assert!(w.open_at(winter).unwrap().is_some());
    let summer = Utc.with_ymd_and_hms(2026, 4, 5, 0, 30, 0).unwrap();
    assert!(w.open_at(summer).unwrap().is_some());
    // 29 March 2026: 02:00 does not exist in Berlin; the window opens at the first instant
    // after the gap (03:00 CEST = 01:00 UTC).
    let gap_day = w
        .next_open(Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap())
        .unwrap();
    assert_eq!(
        gap_day,
        Some(Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap())
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Open at t exactly when t is within `lasts` after the latest opening at or before t;
    /// the next opening is never before t and is open.
    #[test]
    fn window_membership_agrees_with_its_openings(
        secs in 0i64..(4 * 365 * 86_400),
        hour in 0u32..24,
        lasts in 60u64..(3 * 86_400),
        zone in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    ) {
        let t = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(secs);
        let w = Window::new("w", &format!("0 {hour} * * SAT,SUN"), zone, Duration::from_secs(lasts)).unwrap();
        let open = w.open_at(t).unwrap();
        if let Some(o) = open {
            prop_assert!(o.from <= t && t < o.until);
            prop_assert_eq!(o.until - o.from, chrono::Duration::seconds(lasts as i64));
        }
        let next = w.next_open(t).unwrap().unwrap();
        prop_assert!(next >= t);
        prop_assert_eq!(next == t, open.is_some());
        prop_assert!(w.open_at(next).unwrap().is_some());
        // Nothing opens strictly between t and next (checked at one instant in between).
        if next > t + chrono::Duration::seconds(1) {
            let mid = t + (next - t) / 2;
            prop_assert!(w.open_at(mid).unwrap().is_none(), "open at {} before next {}", mid, next);
        }
    }
}
