//! Resuming runs from the journal after a crash, a failure or a cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use ops_core::engine::*;
use ops_core::{Error, ErrorKind, Result};
use serde_json::json;

/// A journal whose process "dies" after `left` appends: later appends fail, as they would if
/// the process had been killed, leaving the journal as it was at that moment.
struct DiesAfter {
    inner: Arc<MemoryJournal>,
    left: AtomicUsize,
}

#[async_trait]
impl Journal for DiesAfter {
    async fn append(&self, event: &JournalEvent) -> Result<()> {
        if self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(Error::new(
                "test",
                "append",
                ErrorKind::Io {
                    kind: std::io::ErrorKind::BrokenPipe,
                    message: "killed".into(),
                },
            ));
        }
        self.inner.append(event).await
    }
    async fn events(&self, f: &JournalFilter) -> Result<Vec<JournalEvent>> {
        self.inner.events(f).await
    }
}

struct Counters {
    a: Arc<AtomicUsize>,
    b: Arc<AtomicUsize>,
    c: Arc<AtomicUsize>,
}

impl Counters {
    fn new() -> Self {
        Self {
            a: Arc::default(),
            b: Arc::default(),
            c: Arc::default(),
        }
    }
    fn get(&self) -> (usize, usize, usize) {
        (
            self.a.load(Ordering::SeqCst),
            self.b.load(Ordering::SeqCst),
            self.c.load(Ordering::SeqCst),
        )
    }
}

/// read-a (outputs 41) → b (of `b_kind`) → c (uses a's output).
fn runbook(k: &Counters, b_kind: StepKind) -> Runbook {
    let (a, b, c) = (k.a.clone(), k.b.clone(), k.c.clone());
    let b_build = move |_: &StepContext| {
        let b = b.clone();
        Ok(Action::new("b", json!({}), async move {
            Ok(b.fetch_add(1, Ordering::SeqCst))
        }))
    };
    let b_step = match b_kind {
        StepKind::Read => Step::read("b", b_build),
        StepKind::Mutate { idempotent: true } => Step::mutate("b", b_build).idempotent(),
        StepKind::Mutate { idempotent: false } => Step::mutate("b", b_build),
    };
    let mut rb = Runbook::new("rb", "svc");
    // After a resume, c reads a's output through its handle from the journal's JSON.
    let read_a: Output<i64> = rb.add_step(Step::read("read-a", move |_| {
        let a = a.clone();
        Ok(Action::new("a", json!({}), async move {
            a.fetch_add(1, Ordering::SeqCst);
            Ok(41_i64)
        }))
    }));
    rb.step(b_step).step(Step::mutate("c", move |ctx| {
        let n = ctx.get(&read_a)?;
        let c = c.clone();
        Ok(Action::new("c", json!({ "n": n + 1 }), async move {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(n + 1)
        }))
    }))
}

/// Runs until the process "dies" while `b` is in flight (b's effect has happened, its success
/// is not journaled). Returns the surviving journal and the run id.
async fn crash_during_b(k: &Counters, b_kind: StepKind) -> (Arc<MemoryJournal>, String) {
    let inner = Arc::new(MemoryJournal::new());
    // run_started, a started, a succeeded, b started: then the process dies.
    let dying = Arc::new(DiesAfter {
        inner: inner.clone(),
        left: AtomicUsize::new(4),
    });
    let err = Runner::new()
        .with_journal(dying)
        .run_with(
            &runbook(k, b_kind),
            Mode::Execute,
            &RunControl::new(),
            Some("run-1".into()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Io { .. }),
        "a run that cannot journal is an error: {err}"
    );
    assert_eq!(k.get(), (1, 1, 0));
    (inner, "run-1".into())
}

#[tokio::test]
async fn resume_after_a_crash_skips_done_steps_and_reruns_an_in_flight_read() {
    let k = Counters::new();
    let (journal, run_id) = crash_during_b(&k, StepKind::Read).await;
    let report = Runner::new()
        .with_journal(journal.clone())
        .resume(&runbook(&k, StepKind::Read), &run_id, &RunControl::new())
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(
        k.get(),
        (1, 2, 1),
        "a is not repeated, the in-flight read b re-runs, c runs once"
    );
    assert_eq!(report.resumptions, 1);
    assert_eq!(report.steps[1].attempts, 2);
    // c used a's output, restored from the journal.
    let events = journal.events(&JournalFilter::run(&run_id)).await.unwrap();
    let c_out = events.iter().find_map(|e| match &e.kind {
        EventKind::StepSucceeded { step, output, .. } if step == "c" => Some(output.clone()),
        _ => None,
    });
    assert_eq!(c_out, Some(json!(42)));
}

#[tokio::test]
async fn an_in_flight_idempotent_mutation_reruns_without_asking() {
    let k = Counters::new();
    let (journal, run_id) = crash_during_b(&k, StepKind::Mutate { idempotent: true }).await;
    // The default approver denies everything: success proves nobody was asked.
    let report = Runner::new()
        .with_journal(journal)
        .resume(
            &runbook(&k, StepKind::Mutate { idempotent: true }),
            &run_id,
            &RunControl::new(),
        )
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(k.get(), (1, 2, 1));
}

#[tokio::test]
async fn an_in_flight_non_idempotent_mutation_reruns_only_when_approved() {
    let kind = StepKind::Mutate { idempotent: false };
    let k = Counters::new();
    let (journal, run_id) = crash_during_b(&k, kind).await;
    let mut no = MockApprover::new();
    no.expect_decide()
        .withf(|r| r.gate == "rerun:b" && r.prompt.contains("may or may not have taken effect"))
        .times(1)
        .returning(|_| {
            Ok(ApprovalDecision::Denied {
                by: "bob".into(),
                reason: "I checked: it ran".into(),
            })
        });
    let report = Runner::new()
        .with_journal(journal.clone())
        .with_approver(Arc::new(no))
        .resume(&runbook(&k, kind), &run_id, &RunControl::new())
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(
        k.get(),
        (1, 1, 0),
        "declined: b is not repeated and nothing after it runs"
    );
    assert!(
        report
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("finish by hand")
    );

    let report = Runner::new()
        .with_journal(journal)
        .with_approver(Arc::new(AutoApprove { by: "carol".into() }))
        .resume(&runbook(&k, kind), &run_id, &RunControl::new())
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(k.get(), (1, 2, 1));
    assert_eq!(report.resumptions, 2);
    assert!(
        report
            .approvals
            .iter()
            .any(|a| a.gate == "rerun:b" && a.approved && a.by == "carol")
    );
}

#[tokio::test]
async fn a_failed_run_resumes_from_the_failed_step_and_redoes_undone_steps() {
    let prepared = Arc::new(AtomicUsize::new(0));
    let tries = Arc::new(AtomicUsize::new(0));
    let make = || {
        let (p, t) = (prepared.clone(), tries.clone());
        Runbook::new("rb", "svc")
            .step(
                Step::mutate("prepare", move |_| {
                    let p = p.clone();
                    Ok(Action::new("prepare", json!({}), async move {
                        Ok(p.fetch_add(1, Ordering::SeqCst))
                    }))
                })
                .compensate(|_| Ok(Action::new("unprepare", json!({}), async { Ok(()) }))),
            )
            .step(Step::mutate("flaky", move |_| {
                let t = t.clone();
                Ok(Action::new("flaky", json!({}), async move {
                    if t.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(Error::new(
                            "test",
                            "flaky",
                            ErrorKind::Unavailable { retry_after: None },
                        ))
                    } else {
                        Ok(())
                    }
                }))
            }))
    };
    let journal = Arc::new(MemoryJournal::new());
    let runner = Runner::new().with_journal(journal);
    let first = runner.run(&make(), Mode::Execute).await.unwrap();
    assert_eq!(first.outcome, Some(RunOutcome::Failed));
    assert_eq!(first.steps[0].status, StepStatus::Compensated);
    let second = runner
        .resume(&make(), &first.run_id, &RunControl::new())
        .await
        .unwrap();
    assert_eq!(second.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(
        prepared.load(Ordering::SeqCst),
        2,
        "prepare was undone, so it runs again"
    );
    assert_eq!(tries.load(Ordering::SeqCst), 2);
    let again = runner
        .resume(&make(), &first.run_id, &RunControl::new())
        .await
        .unwrap_err();
    assert!(
        matches!(again.kind(), ErrorKind::InvalidInput { .. }),
        "a succeeded run is not resumed: {again}"
    );
}

#[tokio::test]
async fn resume_refuses_runs_it_cannot_continue() {
    let k = Counters::new();
    let journal = Arc::new(MemoryJournal::new());
    let runner = Runner::new().with_journal(journal);
    let missing = runner
        .resume(&runbook(&k, StepKind::Read), "nope", &RunControl::new())
        .await
        .unwrap_err();
    assert!(
        matches!(missing.kind(), ErrorKind::NotFound { .. }),
        "{missing}"
    );

    let dry = runner
        .run(&runbook(&k, StepKind::Read), Mode::DryRun)
        .await
        .unwrap();
    let err = runner
        .resume(
            &runbook(&k, StepKind::Read),
            &dry.run_id,
            &RunControl::new(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("dry run"), "{err}");

    let fresh = Counters::new();
    let (journal, run_id) = crash_during_b(&fresh, StepKind::Read).await;
    let other = Runbook::new("rb", "svc").step(Step::read("read-a", |_| {
        Ok(Action::new("a", json!({}), async { Ok(1) }))
    }));
    let err = Runner::new()
        .with_journal(journal)
        .resume(&other, &run_id, &RunControl::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("steps changed"), "{err}");
}
