//! Approval gates with more than one person: N distinct approvers, four eyes (the requester may
//! not approve), any denial ends the gate, and a timeout over all the answers with a stated
//! default. Every vote is journaled with who gave it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ops_core::ErrorKind;
use ops_core::clock::SimulatedClock;
use ops_core::engine::*;
use ops_core::runbooks::RunbookConfig;

/// Answers from a script, one per call (`None`: never answers), and keeps every request.
#[derive(Default)]
struct Panel {
    answers: Mutex<VecDeque<Option<ApprovalDecision>>>,
    asked: Mutex<Vec<ApprovalRequest>>,
}

impl Panel {
    fn new(answers: Vec<Option<ApprovalDecision>>) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.into()),
            asked: Mutex::default(),
        })
    }
}

fn yes(by: &str) -> Option<ApprovalDecision> {
    Some(ApprovalDecision::Approved {
        by: by.into(),
        comment: Some(format!("{by} checked the plan")),
    })
}

#[async_trait]
impl Approver for Panel {
    async fn decide(&self, request: &ApprovalRequest) -> ops_core::Result<ApprovalDecision> {
        self.asked.lock().unwrap().push(request.clone());
        let next = self.answers.lock().unwrap().pop_front().flatten();
        match next {
            Some(d) => Ok(d),
            None => std::future::pending().await,
        }
    }
}

/// A gate under `policy`, then a counted change.
fn runbook(policy: ApprovalPolicy, changed: Arc<AtomicU32>) -> Runbook {
    Runbook::new("rotate-keys", "api")
        .gate_with("go-ahead", "Rotate the signing keys?", policy)
        .step(Step::mutate("rotate", move |_| {
            let changed = changed.clone();
            Ok(Action::new("rotate", serde_json::json!({}), async move {
                changed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
        }))
}

fn runner(approver: Arc<dyn Approver>) -> Runner {
    Runner::new()
        .with_clock(Arc::new(SimulatedClock::starting_at(
            "2026-11-30T09:00:00Z".parse().unwrap(),
        )))
        .with_approver(approver)
        .requested_by("alice")
}

fn two_of_them() -> ApprovalPolicy {
    ApprovalPolicy {
        approvers: 2,
        forbid_requester: true,
        ..ApprovalPolicy::default()
    }
}

#[tokio::test(start_paused = true)]
async fn two_distinct_approvers_other_than_the_requester_open_the_gate() {
    let panel = Panel::new(vec![yes("bob"), yes("carol")]);
    let changed = Arc::new(AtomicU32::new(0));
    let report = runner(panel.clone())
        .run(&runbook(two_of_them(), changed.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(changed.load(Ordering::SeqCst), 1);
    let who: Vec<_> = report
        .approvals
        .iter()
        .map(|a| (a.by.as_str(), a.approved))
        .collect();
    assert_eq!(who, vec![("bob", true), ("carol", true)]);
    // The approver was told who asked, how many are needed, and who may not answer.
    let asked = panel.asked.lock().unwrap();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0].requested_by.as_deref(), Some("alice"));
    assert_eq!(asked[0].needed, 2);
    assert_eq!(asked[0].ineligible, vec!["alice".to_string()]);
    assert_eq!(asked[1].approved_by, vec!["bob".to_string()]);
    assert_eq!(
        asked[1].ineligible,
        vec!["bob".to_string(), "alice".to_string()]
    );
}

#[tokio::test(start_paused = true)]
async fn the_requester_and_a_repeated_approver_do_not_count() {
    for (answers, reason) in [
        // The requester, however spelled.
        (
            vec![yes(" Alice ")],
            "four eyes:  Alice  requested this run",
        ),
        // The same person twice.
        (
            vec![yes("bob"), yes("BOB")],
            "BOB has already approved; 2 distinct approvers are needed",
        ),
        // An approval by nobody.
        (vec![yes("")], "an approval must name who gave it"),
    ] {
        let changed = Arc::new(AtomicU32::new(0));
        let report = runner(Panel::new(answers))
            .run(&runbook(two_of_them(), changed.clone()), Mode::Execute)
            .await
            .unwrap();
        assert_eq!(report.outcome, Some(RunOutcome::Failed), "{reason}");
        assert_eq!(changed.load(Ordering::SeqCst), 0);
        let denial = report.approvals.last().unwrap();
        assert!(!denial.approved);
        assert!(
            denial.note.as_deref().unwrap().contains(reason),
            "{:?} does not say {reason:?}",
            denial.note
        );
    }
}

#[tokio::test(start_paused = true)]
async fn one_denial_closes_the_gate_after_an_approval() {
    let panel = Panel::new(vec![
        yes("bob"),
        Some(ApprovalDecision::Denied {
            by: "carol".into(),
            reason: "not during the sale".into(),
        }),
    ]);
    let changed = Arc::new(AtomicU32::new(0));
    let report = runner(panel)
        .run(&runbook(two_of_them(), changed.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(changed.load(Ordering::SeqCst), 0);
    let error = report.error.unwrap().message;
    assert!(
        error.contains("denied by carol: not during the sale"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn at_the_timeout_the_policy_default_decides() {
    // One of two approved, then silence: denied by default, saying how far it got.
    let policy = ApprovalPolicy {
        timeout: Some(Duration::from_secs(1800)),
        ..two_of_them()
    };
    let changed = Arc::new(AtomicU32::new(0));
    let report = runner(Panel::new(vec![yes("bob"), None]))
        .run(&runbook(policy.clone(), changed.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    let last = report.approvals.last().unwrap();
    assert_eq!(last.by, "timeout");
    assert!(
        last.note.as_deref().unwrap().contains("1 of 2 approved"),
        "{last:?}"
    );
    assert!(matches!(report.error.unwrap().kind.as_str(), "timeout"));
    assert_eq!(changed.load(Ordering::SeqCst), 0);

    // "Proceed unless stopped": nobody answered, approved by default and recorded so.
    let proceed = ApprovalPolicy {
        on_timeout: OnTimeout::Approve,
        ..policy
    };
    let report = runner(Panel::new(vec![None]))
        .run(&runbook(proceed, changed.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    let last = report.approvals.last().unwrap();
    assert_eq!((last.by.as_str(), last.approved), ("timeout", true));
    assert!(
        last.note
            .as_deref()
            .unwrap()
            .contains("approved by default")
    );
    assert_eq!(changed.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn auto_approve_as_answers_for_the_first_eligible_person() {
    let approver = Arc::new(AutoApproveAs {
        people: vec!["alice".into(), "bob".into(), "carol".into()],
    });
    let changed = Arc::new(AtomicU32::new(0));
    let report = runner(approver)
        .run(&runbook(two_of_them(), changed.clone()), Mode::Execute)
        .await
        .unwrap();
    let who: Vec<_> = report.approvals.iter().map(|a| a.by.as_str()).collect();
    assert_eq!(who, vec!["bob", "carol"]);
    assert_eq!(changed.load(Ordering::SeqCst), 1);

    // Nobody left to ask: denied, not looped.
    let few = Arc::new(AutoApproveAs {
        people: vec!["alice".into(), "bob".into()],
    });
    let report = runner(few)
        .run(&runbook(two_of_them(), changed.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(changed.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_runners_policy_applies_to_gates_without_one() {
    let panel = Panel::new(vec![yes("bob")]);
    let changed = Arc::new(AtomicU32::new(0));
    let rb = Runbook::new("deploy", "api")
        .gate("go-ahead", "Deploy?")
        .step(Step::mutate("deploy", move |_| {
            let changed = changed.clone();
            Ok(Action::new("deploy", serde_json::json!({}), async move {
                changed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
        }));
    let report = runner(panel)
        .approval_policy(ApprovalPolicy::approvers(2))
        .run(&rb, Mode::Execute)
        .await;
    // Two are needed, the panel has one answer and then never answers: the default timeout
    // (one hour) denies.
    let report = report.unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.approvals.last().unwrap().by, "timeout");
}

#[test]
fn policies_are_checked_and_load_from_toml() {
    let p: ApprovalPolicy = toml::from_str(
        "approvers = 2\nforbid_requester = true\ntimeout = \"30m\"\non_timeout = \"approve\"",
    )
    .unwrap();
    assert_eq!(
        p,
        ApprovalPolicy {
            approvers: 2,
            forbid_requester: true,
            timeout: Some(Duration::from_secs(1800)),
            on_timeout: OnTimeout::Approve,
        }
    );
    assert!(toml::from_str::<ApprovalPolicy>("approvers = 2\nquorum = 3").is_err());
    for (bad, field) in [
        (ApprovalPolicy::approvers(0), "approvers"),
        (ApprovalPolicy::approvers(MAX_APPROVERS + 1), "approvers"),
        (
            ApprovalPolicy {
                timeout: Some(Duration::ZERO),
                ..ApprovalPolicy::default()
            },
            "timeout",
        ),
    ] {
        let e = bad.validate().unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::InvalidInput { field: f, .. } if f == field),
            "{e}"
        );
        let rb = Runbook::new("x", "api").gate_with("g", "?", bad);
        let e = rb.validate().unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::InvalidInput { field: f, .. } if f == &format!("gate g: {field}")),
            "{e}"
        );
    }
}
