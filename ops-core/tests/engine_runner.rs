//! The runner on tokio's paused clock: retries, timeouts, cancellation, compensation, dry
//! runs, approvals, pause, parallel groups.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ops_core::clock::{Clock, SimulatedClock, SystemClock};
use ops_core::contracts::*;
use ops_core::engine::*;
use ops_core::retry::RetryPolicy;
use ops_core::{Error, ErrorKind};
use serde_json::json;

fn clock() -> Arc<SimulatedClock> {
    Arc::new(SimulatedClock::starting_at(
        "2026-03-01T09:00:00Z".parse().unwrap(),
    ))
}

fn runner(journal: Arc<MemoryJournal>) -> Runner {
    Runner::new().with_clock(clock()).with_journal(journal)
}

fn unavailable() -> Error {
    Error::new("test", "call", ErrorKind::Unavailable { retry_after: None })
}

/// A step that counts its attempts and fails the first `failures` of them with `err`.
fn flaky(
    name: &str,
    kind: StepKind,
    calls: Arc<AtomicUsize>,
    failures: usize,
    err: fn() -> Error,
) -> Step {
    let build = move |_: &StepContext| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        Ok(Action::new("flaky", json!({}), async move {
            if n < failures { Err(err()) } else { Ok(n) }
        }))
    };
    match kind {
        StepKind::Read => Step::read(name, build),
        StepKind::Mutate { idempotent } => {
            let s = Step::mutate(name, build);
            if idempotent { s.idempotent() } else { s }
        }
    }
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: attempts,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(4),
        max_elapsed: Duration::from_secs(600),
        ..RetryPolicy::default()
    }
}

fn hang(name: &str) -> Step {
    Step::read(name, |_| {
        Ok(Action::new("hang", json!({}), async {
            SystemClock.sleep(Duration::from_secs(36_000)).await;
            Ok(())
        }))
    })
}

fn retried_waits(events: &[JournalEvent]) -> Vec<Duration> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepRetried { wait, .. } => Some(*wait),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn retries_with_backoff_then_succeeds() {
    let journal = Arc::new(MemoryJournal::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let rb = Runbook::new("rb", "svc")
        .step(flaky("read", StepKind::Read, calls.clone(), 2, unavailable).retry(policy(5)));
    let start = SystemClock.instant();
    let report = runner(journal.clone())
        .run(&rb, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(report.steps[0].attempts, 3);
    let waits = retried_waits(&journal.events(&JournalFilter::default()).await.unwrap());
    assert_eq!(waits.len(), 2);
    assert!(
        waits
            .iter()
            .all(|w| *w >= Duration::from_secs(1) && *w <= Duration::from_secs(4)),
        "{waits:?}"
    );
    let (elapsed, waited) = (
        SystemClock.instant() - start,
        waits.iter().sum::<Duration>(),
    );
    // tokio's timer rounds each sleep up to the next millisecond.
    assert!(
        elapsed >= waited && elapsed <= waited + Duration::from_millis(2),
        "the run waited the backoff: {elapsed:?} vs {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn ambiguous_failures_retry_only_idempotent_mutations() {
    for (idempotent, expected_calls) in [(false, 1), (true, 3)] {
        let calls = Arc::new(AtomicUsize::new(0));
        let step = flaky(
            "write",
            StepKind::Mutate { idempotent },
            calls.clone(),
            2,
            unavailable,
        )
        .retry(policy(5));
        let report = runner(Arc::new(MemoryJournal::new()))
            .run(&Runbook::new("rb", "svc").step(step), Mode::Execute)
            .await
            .unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            expected_calls,
            "idempotent={idempotent}"
        );
        let want = if idempotent {
            RunOutcome::Succeeded
        } else {
            RunOutcome::Failed
        };
        assert_eq!(report.outcome, Some(want));
    }
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_is_retried_within_the_step_deadline() {
    let journal = Arc::new(MemoryJournal::new());
    let rb = Runbook::new("rb", "svc").step(
        hang("slow")
            .retry(RetryPolicy {
                max_attempts: 10,
                initial_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(1),
                ..policy(10)
            })
            .attempt_timeout(Duration::from_secs(10))
            .deadline(Duration::from_secs(25)),
    );
    let start = SystemClock.instant();
    let report = runner(journal.clone())
        .run(&rb, Mode::Execute)
        .await
        .unwrap();
    let elapsed = SystemClock.instant() - start;
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].error.as_ref().unwrap().kind, "timeout");
    assert!(
        elapsed <= Duration::from_secs(25),
        "the retries never outlive the deadline: {elapsed:?}"
    );
    // 10 s attempts with 1 s waits: attempts start at 0, 11 and 22 s; the third is cut at 25 s.
    assert_eq!(report.steps[0].attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn cancellation_mid_step_compensates_and_records_cancelled() {
    let undone = Arc::new(AtomicUsize::new(0));
    let u = undone.clone();
    let rb = Runbook::new("rb", "svc")
        .step(
            Step::mutate("scale-up", |_| {
                Ok(Action::new("Deployer::scale", json!({"max": 10}), async {
                    Ok(())
                }))
            })
            .compensate(move |_| {
                let u = u.clone();
                Ok(Action::new(
                    "Deployer::scale",
                    json!({"max": 2}),
                    async move {
                        u.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    },
                ))
            }),
        )
        .step(hang("bake"))
        .step(Step::read("never", |_| {
            Ok(Action::new("x", json!({}), async { Ok(()) }))
        }));
    let control = RunControl::new();
    let r = runner(Arc::new(MemoryJournal::new()));
    let run = tokio::spawn({
        let control = control.clone();
        async move {
            r.run_with(&rb, Mode::Execute, &control, Some("run-c".into()))
                .await
        }
    });
    SystemClock.sleep(Duration::from_secs(5)).await;
    control.cancel();
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Cancelled));
    let status: Vec<StepStatus> = report.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        status,
        vec![
            StepStatus::Compensated,
            StepStatus::Cancelled,
            StepStatus::NotReached
        ]
    );
    assert_eq!(undone.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn compensations_run_in_reverse_and_a_failed_one_is_reported() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let step = |name: &'static str, fail_undo: bool| {
        let order = order.clone();
        Step::mutate(name, |_| Ok(Action::new("do", json!({}), async { Ok(()) }))).compensate(
            move |_| {
                let order = order.clone();
                Ok(Action::new(format!("undo {name}"), json!({}), async move {
                    order.lock().unwrap().push(name);
                    if fail_undo {
                        Err(Error::new(
                            "test",
                            "undo",
                            ErrorKind::Forbidden {
                                detail: String::new(),
                            },
                        ))
                    } else {
                        Ok(())
                    }
                }))
            },
        )
    };
    let rb = Runbook::new("rb", "svc")
        .step(step("a", false))
        .step(Step::read("look", |_| {
            Ok(Action::new("look", json!({}), async { Ok(()) }))
        }))
        .step(step("b", true))
        .step(step("c", false))
        .step(Step::mutate("d", |_| {
            Ok(Action::new("do", json!({}), async {
                Err::<(), _>(Error::new(
                    "test",
                    "d",
                    ErrorKind::Conflict {
                        detail: "etag".into(),
                    },
                ))
            }))
        }));
    let report = runner(Arc::new(MemoryJournal::new()))
        .run(&rb, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        vec!["c", "b", "a"],
        "last done, first undone; a failure does not stop the rest"
    );
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.error.as_ref().unwrap().kind, "conflict");
    let status: Vec<StepStatus> = report.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        status,
        vec![
            StepStatus::Compensated,
            StepStatus::Succeeded,
            StepStatus::CompensationFailed,
            StepStatus::Compensated,
            StepStatus::Failed
        ]
    );
    assert_eq!(
        report
            .compensations
            .iter()
            .map(|c| c.call.as_str())
            .collect::<Vec<_>>(),
        vec!["undo c", "undo b", "undo a"]
    );
    assert!(report.compensations[1].error.is_some());
}

fn state(release: &str) -> ServiceState {
    ServiceState {
        target: "api".into(),
        serving: true,
        traffic: vec![TrafficAllocation {
            release: release.into(),
            percent: 100,
        }],
        latest_ready: Some(release.into()),
        url: None,
        scale: None,
        etag: Some("\"7\"".into()),
    }
}

/// A canary-like runbook over a deployer: read, deploy, gate, shift traffic.
fn deploy_runbook(deployer: Arc<dyn Deployer>) -> Runbook {
    let d1 = deployer.clone();
    let d2 = deployer.clone();
    let d3 = deployer;
    let mut rb = Runbook::new("canary", "api");
    let current: Output<ServiceState> = rb.add_step(Step::read("current", move |_| {
        let d = d1.clone();
        Ok(Action::new("Deployer::current", json!({}), async move {
            d.current().await
        }))
    }));
    let deploy: Output<Release> = rb.add_step(Step::mutate("deploy", move |ctx| {
        let d = d2.clone();
        let stable = ctx.get(&current)?;
        let req = DeployRequest::new("api:1.1");
        Ok(Action::new(
            "Deployer::deploy",
            json!({"version": req.version, "stable": stable.primary_release(), "api_token": "tok-123"}),
            async move { d.deploy(&req).await },
        ))
    }));
    rb.gate("promote", "Shift 10% to the canary?")
        .step(Step::mutate("shift", move |ctx| {
            let d = d3.clone();
            let canary = ctx.get(&deploy)?;
            let split =
                TrafficSplit::new([(canary.id.clone(), 10), ("api-00001".to_string(), 90)])?;
            Ok(Action::new(
                "Deployer::set_traffic",
                json!(split),
                async move { d.set_traffic(&split).await },
            ))
        }))
}

/// A handle of the wrong type is a bug in the runbook: a dry run reports it as a failed step
/// naming the step whose output has another shape, not as "depends on an earlier planned step"
/// (which it once did, by an error string).
#[tokio::test(start_paused = true)]
async fn a_dry_run_reports_an_output_of_the_wrong_shape_as_a_failure() {
    let mut mock = MockDeployer::new();
    mock.expect_current()
        .times(1)
        .returning(|| Ok(state("api-00001")));
    let d = Arc::new(mock);
    let mut runbook = Runbook::new("wrong-shape", "api");
    runbook.add_step::<ServiceState>(Step::read("current", move |_| {
        let d = d.clone();
        Ok(Action::new("Deployer::current", json!({}), async move {
            d.current().await
        }))
    }));
    // A release is not a service state.
    let wrong: Output<Release> = Output::of("current");
    let runbook = runbook.step(Step::mutate("deploy", move |ctx| {
        let wrong = ctx.get(&wrong)?;
        Ok(Action::new(
            "Deployer::deploy",
            json!({"v": wrong.version}),
            async { Ok(()) },
        ))
    }));
    let report = runner(Arc::new(MemoryJournal::new()))
        .run(&runbook, Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert!(report.planned.is_empty(), "{:?}", report.planned);
    let deploy = report.steps.iter().find(|s| s.name == "deploy").unwrap();
    assert_eq!(deploy.status, StepStatus::Failed);
    let error = deploy.error.as_ref().unwrap();
    assert_eq!(error.kind, "invalid_input", "{error:?}");
    assert!(
        error.message.contains("current") && error.message.contains("another shape"),
        "{error:?}"
    );
}

/// Within a run a handle hands over the value the step produced, whatever its JSON would
/// decode to: a type whose JSON does not read back the same way shows it.
#[tokio::test(start_paused = true)]
async fn a_handle_hands_over_the_produced_value_without_a_json_round_trip() {
    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    struct OneWay {
        #[serde(skip_deserializing)]
        kept: String,
    }
    let mut rb = Runbook::new("typed", "api");
    let made: Output<OneWay> = rb.add_step(Step::read("make", |_| {
        Ok(Action::new("make", json!({}), async {
            Ok(OneWay {
                kept: "as made".into(),
            })
        }))
    }));
    let rb = rb.step(Step::read("use", move |ctx| {
        let value = ctx.get(&made)?;
        Ok(Action::new("use", json!({}), async move { Ok(value.kept) }))
    }));
    let report = runner(Arc::new(MemoryJournal::new()))
        .run(&rb, Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.outputs["use"], json!("as made"));
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_performs_no_mutation_and_plans_exact_calls() {
    let mut mock = MockDeployer::new();
    mock.expect_current()
        .times(1)
        .returning(|| Ok(state("api-00001")));
    mock.expect_deploy().never();
    mock.expect_set_traffic().never();
    mock.expect_scale().never();
    mock.expect_stop_serving().never();
    let approver = MockApprover::new(); // no expectations: asking it would panic
    let report = runner(Arc::new(MemoryJournal::new()))
        .with_approver(Arc::new(approver))
        .run(&deploy_runbook(Arc::new(mock)), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    let calls: Vec<&str> = report.planned.iter().map(|p| p.call.as_str()).collect();
    assert_eq!(
        calls,
        vec![
            "Deployer::deploy",
            "approval",
            "(depends on an earlier planned step)"
        ]
    );
    assert_eq!(
        report.planned[0].args,
        json!({"version": "api:1.1", "stable": "api-00001", "api_token": "[REDACTED]"})
    );
    let status: Vec<StepStatus> = report.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        status,
        vec![
            StepStatus::Succeeded,
            StepStatus::Planned,
            StepStatus::Planned,
            StepStatus::Planned
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_executed_run_makes_the_calls_and_journals_the_approval() {
    let mut mock = MockDeployer::new();
    mock.expect_current()
        .times(1)
        .returning(|| Ok(state("api-00001")));
    mock.expect_deploy().times(1).returning(|r| {
        Ok(Release {
            id: "api-00002".into(),
            version: r.version.clone(),
            state: ReleaseState::Ready,
            created_at: None,
            url: None,
            labels: Default::default(),
        })
    });
    mock.expect_set_traffic()
        .times(1)
        .withf(|s| s.percent_of("api-00002") == 10)
        .returning(|_| Ok(state("api-00001")));
    let mut approver = MockApprover::new();
    approver
        .expect_decide()
        .withf(|r| r.gate == "promote" && r.target == "api")
        .times(1)
        .returning(|_| {
            Ok(ApprovalDecision::Approved {
                by: "alice".into(),
                comment: Some("looks good".into()),
            })
        });
    let report = runner(Arc::new(MemoryJournal::new()))
        .with_approver(Arc::new(approver))
        .run(&deploy_runbook(Arc::new(mock)), Mode::Execute)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(report.approvals.len(), 1);
    assert_eq!(
        (
            report.approvals[0].by.as_str(),
            report.approvals[0].approved
        ),
        ("alice", true)
    );
}

#[tokio::test(start_paused = true)]
async fn a_denied_or_unanswered_gate_fails_the_run_and_compensates() {
    let undone = Arc::new(AtomicUsize::new(0));
    let make = |undone: Arc<AtomicUsize>| {
        Runbook::new("rb", "svc")
            .step(
                Step::mutate("prepare", |_| {
                    Ok(Action::new("do", json!({}), async { Ok(()) }))
                })
                .compensate(move |_| {
                    let u = undone.clone();
                    Ok(Action::new("undo", json!({}), async move {
                        u.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }))
                }),
            )
            .gate("go", "Proceed?")
    };
    let denied = runner(Arc::new(MemoryJournal::new()))
        .with_approver(Arc::new(DenyAll {
            reason: "change freeze".into(),
        }))
        .run(&make(undone.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(denied.outcome, Some(RunOutcome::Failed));
    assert_eq!(denied.approvals[0].note.as_deref(), Some("change freeze"));
    assert_eq!(undone.load(Ordering::SeqCst), 1);

    struct Silent;
    #[async_trait::async_trait]
    impl Approver for Silent {
        async fn decide(&self, _: &ApprovalRequest) -> ops_core::Result<ApprovalDecision> {
            SystemClock.sleep(Duration::from_secs(86_400 * 7)).await;
            Ok(ApprovalDecision::Approved {
                by: "too late".into(),
                comment: None,
            })
        }
    }
    let start = SystemClock.instant();
    let timed_out = runner(Arc::new(MemoryJournal::new()))
        .with_approver(Arc::new(Silent))
        .approval_timeout(Duration::from_secs(1800))
        .run(&make(undone.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(SystemClock.instant() - start, Duration::from_secs(1800));
    assert_eq!(timed_out.outcome, Some(RunOutcome::Failed));
    assert_eq!(timed_out.approvals[0].by, "timeout");
    assert_eq!(timed_out.error.as_ref().unwrap().kind, "timeout");
    assert_eq!(undone.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn pause_holds_the_run_at_the_next_step_boundary() {
    let control = RunControl::new();
    let second = Arc::new(AtomicUsize::new(0));
    let (c, s) = (control.clone(), second.clone());
    let rb = Runbook::new("rb", "svc")
        .step(Step::read("first", move |_| {
            let c = c.clone();
            Ok(Action::new("pause-me", json!({}), async move {
                c.pause(); // an operator pauses while this step runs
                Ok(())
            }))
        }))
        .step(Step::read("second", move |_| {
            let s = s.clone();
            Ok(Action::new("count", json!({}), async move {
                Ok(s.fetch_add(1, Ordering::SeqCst))
            }))
        }));
    let journal = Arc::new(MemoryJournal::new());
    let r = runner(journal.clone());
    let run = tokio::spawn({
        let control = control.clone();
        async move { r.run_with(&rb, Mode::Execute, &control, None).await }
    });
    SystemClock.sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        second.load(Ordering::SeqCst),
        0,
        "paused before the second step"
    );
    assert!(!run.is_finished());
    control.resume();
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(second.load(Ordering::SeqCst), 1);
    let kinds: Vec<String> = journal
        .events(&JournalFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|e| {
            serde_json::to_value(&e.kind).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        kinds.contains(&"run_paused".to_string()) && kinds.contains(&"run_resumed".to_string()),
        "{kinds:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_parallel_group_runs_at_once_and_fails_as_a_group() {
    let sleepy = |name: &'static str, fail: bool| {
        Step::mutate(name, move |_| {
            Ok(Action::new("probe", json!({}), async move {
                SystemClock.sleep(Duration::from_secs(10)).await;
                if fail {
                    Err(Error::new("test", "p", ErrorKind::Unauthorized))
                } else {
                    Ok(())
                }
            }))
        })
        .compensate(|_| Ok(Action::new("undo", json!({}), async { Ok(()) })))
    };
    let start = SystemClock.instant();
    let ok = runner(Arc::new(MemoryJournal::new()))
        .run(
            &Runbook::new("rb", "svc").parallel(vec![
                sleepy("a", false),
                sleepy("b", false),
                sleepy("c", false),
            ]),
            Mode::Execute,
        )
        .await
        .unwrap();
    assert_eq!(ok.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(
        SystemClock.instant() - start,
        Duration::from_secs(10),
        "three 10 s steps in 10 s"
    );

    let failed = runner(Arc::new(MemoryJournal::new()))
        .run(
            &Runbook::new("rb", "svc").parallel(vec![sleepy("a", false), sleepy("b", true)]),
            Mode::Execute,
        )
        .await
        .unwrap();
    assert_eq!(failed.outcome, Some(RunOutcome::Failed));
    assert_eq!(
        failed.steps[0].status,
        StepStatus::Compensated,
        "the sibling that succeeded is undone"
    );
    assert_eq!(failed.steps[1].status, StepStatus::Failed);
}

#[tokio::test(start_paused = true)]
async fn evidence_is_journaled_and_reported_with_secrets_masked() {
    let rb = Runbook::new("rb", "svc").step(Step::read("capture", |ctx| {
        ctx.evidence("recent errors", json!({"count": 3, "password": "hunter2"}));
        Ok(Action::new("LogSource::count", json!({}), async { Ok(3) }))
    }));
    let report = runner(Arc::new(MemoryJournal::new()))
        .run(&rb, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.evidence.len(), 1);
    assert_eq!(
        report.evidence[0].value,
        json!({"count": 3, "password": "[REDACTED]"})
    );
    assert!(!report.to_json().contains("hunter2") && !report.to_markdown().contains("hunter2"));
}

#[tokio::test(start_paused = true)]
async fn the_report_is_rebuilt_from_the_journal_alone() {
    let journal = Arc::new(MemoryJournal::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let rb = Runbook::new("rb", "svc")
        .step(flaky("a", StepKind::Read, calls.clone(), 1, unavailable).retry(policy(3)))
        .step(flaky(
            "b",
            StepKind::Mutate { idempotent: false },
            calls,
            0,
            unavailable,
        ));
    let r = runner(journal.clone());
    let report = r.run(&rb, Mode::Execute).await.unwrap();
    assert_eq!(r.report(&report.run_id).await.unwrap(), report);
    let fresh = Runner::new().with_journal(journal);
    assert_eq!(fresh.report(&report.run_id).await.unwrap(), report);
    assert!(matches!(
        fresh.report("nope").await.unwrap_err().kind(),
        ErrorKind::NotFound { .. }
    ));
}

#[tokio::test]
async fn bad_runbooks_are_rejected_before_running() {
    let s = |n: &str| Step::read(n, |_| Ok(Action::new("x", json!({}), async { Ok(()) })));
    let cases = [
        Runbook::new("", "svc").step(s("a")),
        Runbook::new("rb", "").step(s("a")),
        Runbook::new("rb", "svc"),
        Runbook::new("rb", "svc").step(s("a")).step(s("a")),
        Runbook::new("rb", "svc").step(s("a")).gate("a", "?"),
        Runbook::new("rb", "svc").parallel(vec![]),
    ];
    for rb in cases {
        let err = Runner::new().run(&rb, Mode::Execute).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{rb:?}: {err}"
        );
    }
    let r = Runner::new();
    let rb = Runbook::new("rb", "svc").step(s("a"));
    r.run_with(&rb, Mode::Execute, &RunControl::new(), Some("fixed".into()))
        .await
        .unwrap();
    let again = r
        .run_with(&rb, Mode::Execute, &RunControl::new(), Some("fixed".into()))
        .await
        .unwrap_err();
    assert!(matches!(again.kind(), ErrorKind::AlreadyExists { .. }));
}

#[tokio::test(start_paused = true)]
async fn progress_events_follow_the_run() {
    let (sink, mut rx) = progress_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let rb = Runbook::new("rb", "svc")
        .step(flaky("a", StepKind::Read, calls, 1, unavailable).retry(policy(2)))
        .gate("g", "ok?");
    let report = runner(Arc::new(MemoryJournal::new()))
        .with_progress(sink)
        .with_approver(Arc::new(AutoApprove::default()))
        .run(&rb, Mode::Execute)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        seen.push(e);
    }
    let wait = match &seen[2] {
        ProgressEvent::StepRetrying { wait, .. } => *wait,
        other => panic!("expected a retry, got {other:?}"),
    };
    assert_eq!(
        seen,
        vec![
            ProgressEvent::RunStarted {
                run_id: report.run_id.clone(),
                runbook: "rb".into(),
                total: 2
            },
            ProgressEvent::StepStarted {
                index: 0,
                step: "a".into()
            },
            ProgressEvent::StepRetrying {
                step: "a".into(),
                attempt: 1,
                wait
            },
            ProgressEvent::StepFinished {
                index: 0,
                step: "a".into(),
                status: StepStatus::Succeeded
            },
            ProgressEvent::StepStarted {
                index: 1,
                step: "g".into()
            },
            ProgressEvent::AwaitingApproval { gate: "g".into() },
            ProgressEvent::StepFinished {
                index: 1,
                step: "g".into(),
                status: StepStatus::Succeeded
            },
            ProgressEvent::RunFinished {
                outcome: RunOutcome::Succeeded
            },
        ]
    );
}
