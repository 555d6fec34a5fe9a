//! A panic inside a step (its builder, its future, or a compensation) is a failure of that
//! step: completed steps are undone last-first, the journal records the failure and the run's
//! end, and the report names the panic.

use std::sync::{Arc, Mutex};

use ops_core::clock::SimulatedClock;
use ops_core::engine::*;
use serde_json::json;

fn runner(journal: Arc<MemoryJournal>) -> Runner {
    Runner::new()
        .with_clock(Arc::new(SimulatedClock::starting_at(
            "2026-03-01T09:00:00Z".parse().unwrap(),
        )))
        .with_journal(journal)
}

/// A mutation that records its effect and undoes it.
fn mutation(name: &'static str, log: Arc<Mutex<Vec<String>>>) -> Step {
    let undo_log = log.clone();
    Step::mutate(name, move |_| {
        let log = log.clone();
        Ok(Action::new("do", json!({}), async move {
            log.lock().unwrap().push(format!("do {name}"));
            Ok(())
        }))
    })
    .compensate(move |_| {
        let log = undo_log.clone();
        Ok(Action::new("undo", json!({}), async move {
            log.lock().unwrap().push(format!("undo {name}"));
            Ok(())
        }))
    })
}

async fn run_and_journal(rb: &Runbook) -> (RunReport, Vec<JournalEvent>) {
    let journal = Arc::new(MemoryJournal::new());
    let report = runner(journal.clone())
        .run(rb, Mode::Execute)
        .await
        .expect("a panicking step is a failed run, not an error of the runner");
    let events = journal
        .events(&JournalFilter::run(report.run_id.clone()))
        .await
        .unwrap();
    (report, events)
}

fn assert_failed_by_panic(report: &RunReport, events: &[JournalEvent], step: &str, text: &str) {
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    let error = report.error.as_ref().expect("the report names the error");
    assert_eq!(error.kind, "panicked");
    assert!(error.message.contains(text), "{}", error.message);
    let failed = events.iter().any(|e| {
        matches!(&e.kind, EventKind::StepFailed { step: s, error, .. }
            if s == step && error.kind == "panicked" && error.message.contains(text))
    });
    assert!(failed, "the journal records the step's panic: {events:#?}");
    assert!(
        matches!(
            events.last().map(|e| &e.kind),
            Some(EventKind::RunFinished {
                outcome: RunOutcome::Failed,
                ..
            })
        ),
        "the journal ends with run_finished"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_a_step_future_fails_the_step_and_undoes_earlier_mutations() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let rb = Runbook::new("panics", "svc")
        .step(mutation("first", log.clone()))
        .step(mutation("second", log.clone()))
        .step(Step::mutate("boom", |_| {
            Ok(Action::new("boom", json!({}), async {
                let limit: Option<u32> = std::hint::black_box(None);
                // The kind of bug the engine must survive: an unwrap on a value that is absent.
                Ok(limit.expect("the limit was never set"))
            }))
        }))
        .step(mutation("never", log.clone()));
    let (report, events) = run_and_journal(&rb).await;
    assert_failed_by_panic(&report, &events, "boom", "the limit was never set");
    assert_eq!(
        *log.lock().unwrap(),
        ["do first", "do second", "undo second", "undo first"],
        "completed mutations are undone last-first; nothing after the panic runs"
    );
    let compensated = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::CompensationSucceeded { .. }))
        .count();
    assert_eq!(compensated, 2);
}

#[tokio::test(start_paused = true)]
async fn a_panic_while_building_a_step_fails_it_like_an_error() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let rb = Runbook::new("panics", "svc")
        .step(mutation("first", log.clone()))
        .step(Step::read("build-boom", |_| {
            let stages: Vec<u8> = Vec::new();
            let _ = stages[3];
            Ok(Action::new("never", json!({}), async { Ok(()) }))
        }));
    let (report, events) = run_and_journal(&rb).await;
    assert_failed_by_panic(&report, &events, "build-boom", "index out of bounds");
    assert_eq!(*log.lock().unwrap(), ["do first", "undo first"]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_compensation_is_recorded_and_the_others_still_run() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let rb = Runbook::new("panics", "svc")
        .step(mutation("first", log.clone()))
        .step(
            Step::mutate("second", |_| {
                Ok(Action::new("do", json!({}), async { Ok(()) }))
            })
            .compensate(|_| {
                Ok(Action::new("undo", json!({}), async {
                    panic!("undo went wrong");
                    #[allow(unreachable_code)]
                    Ok(())
                }))
            }),
        )
        .step(Step::mutate("fails", |_| {
            Ok(Action::new("fails", json!({}), async {
                Err::<(), _>(ops_core::Error::new(
                    "test",
                    "fails",
                    ops_core::ErrorKind::Forbidden {
                        detail: "no".into(),
                    },
                ))
            }))
        }));
    let (report, events) = run_and_journal(&rb).await;
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    let undo_failed = events.iter().any(|e| {
        matches!(&e.kind, EventKind::CompensationFailed { step, error, .. }
            if step == "second" && error.kind == "panicked" && error.message.contains("undo went wrong"))
    });
    assert!(undo_failed, "{events:#?}");
    assert_eq!(*log.lock().unwrap(), ["do first", "undo first"]);
    assert!(matches!(
        events.last().map(|e| &e.kind),
        Some(EventKind::RunFinished { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_a_dry_run_build_is_a_failed_plan() {
    let rb = Runbook::new("panics", "svc").step(Step::mutate("build-boom", |_| {
        let none: Option<&str> = std::hint::black_box(None);
        let target = none.unwrap();
        Ok(Action::new("deploy", json!({ "target": target }), async {
            Ok(())
        }))
    }));
    let journal = Arc::new(MemoryJournal::new());
    let report = runner(journal).run(&rb, Mode::DryRun).await.unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.error.unwrap().kind, "panicked");
}
