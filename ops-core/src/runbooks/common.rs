//! Pieces several runbooks share: verification against probes and error logs, notification
//! steps, and traffic helpers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Finding;
use crate::contracts::{
    DeployRequest, Deployer, HealthProbe, HealthStatus, LogQuery, LogSeverity, LogSource,
    Notification, Notifier, TimeWindow, TrafficSplit, check_all,
};
use crate::engine::{Action, Step, StepContext};
use crate::{Error, ErrorKind, Result};

/// `VerificationFailed` naming `check`.
pub(crate) fn failed(check: &str, detail: impl Into<String>) -> Error {
    Error::new(
        "runbook",
        "verify",
        ErrorKind::VerificationFailed {
            check: check.to_string(),
            detail: detail.into(),
        },
    )
}

/// Probes everything; `VerificationFailed` listing what is not healthy.
pub(crate) async fn require_healthy(probes: &[Arc<dyn HealthProbe>]) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for (p, r) in probes.iter().zip(check_all(probes, 8).await) {
        findings.push(match r {
            Ok(r) => Finding::new(p.name(), r.status, format!("{} checks", r.checks.len())),
            Err(e) => Finding::new(p.name(), HealthStatus::Unhealthy, e.to_string()),
        });
    }
    let bad: Vec<String> = findings
        .iter()
        .filter(|f| f.status != HealthStatus::Healthy)
        .map(|f| format!("{} is {}", f.check, f.status))
        .collect();
    if bad.is_empty() {
        Ok(findings)
    } else {
        Err(failed("health", bad.join(", ")))
    }
}

/// Counts ERROR entries of `release` since `since`, every `poll`, until `watch` has passed;
/// `VerificationFailed` as soon as there are more than `max`.
pub(crate) async fn watch_errors(
    logs: &dyn LogSource,
    clock: &crate::clock::SharedClock,
    release: &str,
    since: DateTime<Utc>,
    watch: Duration,
    poll: Duration,
    max: u64,
) -> Result<u64> {
    let end = clock.instant() + watch;
    loop {
        let window = TimeWindow::new(since, clock.now())?;
        let q = LogQuery {
            release: Some(release.to_string()),
            ..LogQuery::new(window).min_severity(LogSeverity::Error)
        };
        let n = logs.count(&q, max + 1).await?;
        if n > max {
            return Err(failed(
                "error logs",
                format!(
                    "{n} ERROR entries from {release} since {} (at most {max} allowed)",
                    since.to_rfc3339()
                ),
            ));
        }
        let left = end.saturating_duration_since(clock.instant());
        if left.is_zero() {
            return Ok(n);
        }
        clock.sleep(left.min(poll)).await;
    }
}

/// A wait (bake, stabilisation); cancellation stops it at once. A dry run plans it instead of waiting: the plan says how long
/// the real run would wait, and the rehearsal of the reads after it does not stall.
pub(crate) fn wait_step(name: &str, length: Duration) -> Step {
    Step::mutate(name, move |ctx| {
        let clock = ctx.clock().clone();
        Ok(Action::new(
            "wait",
            json!({ "seconds": length.as_secs_f64() }),
            async move {
                clock.sleep(length).await;
                Ok(length.as_secs_f64())
            },
        ))
    })
    .idempotent()
}

/// A step that sends `build(ctx)`'s notification (planned in dry runs).
pub(crate) fn notify_step<F>(name: &str, notifier: Arc<dyn Notifier>, build: F) -> Step
where
    F: Fn(&crate::engine::StepContext) -> Result<Notification> + Send + Sync + 'static,
{
    Step::mutate(name, move |ctx| {
        let note = build(ctx)?;
        let notifier = notifier.clone();
        Ok(Action::new(
            "Notifier::send",
            json!({ "severity": note.severity, "event": note.event, "title": note.title }),
            async move { notifier.send(&note).await },
        ))
    })
}

/// The `announce` step: tells that a run starts, and — as its compensation, which runs after the
/// others (last-first) — how a failed run ended. `failure` writes that title from the context.
pub(crate) fn announce_step<S, F>(
    notifier: Arc<dyn Notifier>,
    key: String,
    start: S,
    failure: F,
) -> Step
where
    S: Fn(&crate::engine::StepContext) -> Result<Notification> + Send + Sync + 'static,
    F: Fn(&crate::engine::StepContext) -> String + Send + Sync + 'static,
{
    let n2 = notifier.clone();
    notify_step("announce", notifier, start).compensate(move |ctx| {
        let note = Notification::new(crate::contracts::Severity::Error, failure(ctx))
            .event(crate::contracts::NotificationEvent::Update)
            .dedup_key(&key);
        let n = n2.clone();
        Ok(Action::new(
            "Notifier::send",
            json!({ "title": note.title }),
            async move { n.send(&note).await },
        ))
    })
}

/// A step that fails with `VerificationFailed` unless every probe is healthy: it verifies the
/// run's changes, so a dry run that planned them plans it too.
pub(crate) fn verify_step(name: &str, probes: Vec<Arc<dyn HealthProbe>>) -> Step {
    Step::read(name, move |_| {
        let probes = probes.clone();
        Ok(Action::new(
            "HealthProbe::check",
            json!({ "probes": probes.len() }),
            async move { require_healthy(&probes).await },
        ))
    })
    .verifies_changes()
}

/// The `deploy` step deploy-and-verify and the rollout share: deploys `request` (output: the
/// new [`Release`](crate::contracts::Release); never retried, since a second deploy is a second
/// release) and, as its compensation, puts all traffic back on the release `previous` names.
pub(crate) fn deploy_step<F>(
    deployer: Arc<dyn Deployer>,
    request: DeployRequest,
    previous: F,
) -> Step
where
    F: Fn(&StepContext) -> Result<String> + Send + Sync + 'static,
{
    let d = deployer.clone();
    Step::mutate("deploy", move |_| {
        let (d, req) = (d.clone(), request.clone());
        Ok(Action::new("Deployer::deploy", json!(req), async move {
            d.deploy(&req).await
        }))
    })
    .compensate(move |ctx| {
        let split = TrafficSplit::all_to(previous(ctx)?)?;
        let d = deployer.clone();
        Ok(Action::new(
            "Deployer::set_traffic",
            json!(split),
            async move { d.set_traffic(&split).await },
        ))
    })
}
