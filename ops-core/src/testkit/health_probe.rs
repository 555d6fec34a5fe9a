//! The [`HealthProbe`] suite: one check of the probe, its report held to every behaviour.

use super::{Case, always, cases, check_cases, expect_ok};
use crate::contracts::{HealthProbe, HealthReport, HealthStatus};

/// What the report of the probe under test must show.
#[derive(Debug, Clone)]
pub struct HealthExpectation {
    /// The probe's name, which the report carries.
    pub probe: String,
    /// The status the target was arranged to have.
    pub status: HealthStatus,
}

/// The health probe suite's cases, over one report.
pub fn health_report_cases() -> Vec<Case<HealthReport, HealthExpectation>> {
    cases![HealthReport, HealthExpectation;
        the_report_names_its_probe unless always,
        every_check_is_named_and_explained unless always,
        the_overall_status_is_the_worst_check unless always,
        the_probe_sees_the_arranged_status unless always,
        a_report_survives_json unless always,
    ]
}

/// Checks `probe` once, holds the report to every behaviour (reporting each one broken), and
/// returns it. Arrange the target so the probe should see `expected` first.
pub async fn health_probe(probe: &dyn HealthProbe, expected: HealthStatus) -> HealthReport {
    let report = expect_ok("check", probe.check().await);
    let expectation = HealthExpectation {
        probe: probe.name().to_string(),
        status: expected,
    };
    check_cases(
        "health_probe",
        &report,
        &expectation,
        &health_report_cases(),
    )
    .await;
    report
}

async fn the_report_names_its_probe(report: &HealthReport, x: &HealthExpectation) {
    assert_eq!(report.probe, x.probe, "the report names its probe");
}

async fn every_check_is_named_and_explained(report: &HealthReport, _: &HealthExpectation) {
    assert!(!report.checks.is_empty(), "a report has at least one check");
    assert!(
        report
            .checks
            .iter()
            .all(|c| !c.name.is_empty() && !c.detail.is_empty()),
        "checks are named and explained: {:?}",
        report.checks
    );
}

async fn the_overall_status_is_the_worst_check(report: &HealthReport, _: &HealthExpectation) {
    let worst = report.checks.iter().map(|c| c.status).max();
    assert_eq!(
        Some(report.status),
        worst,
        "overall status is the worst check"
    );
}

async fn the_probe_sees_the_arranged_status(report: &HealthReport, x: &HealthExpectation) {
    assert_eq!(
        report.status, x.status,
        "probe {} saw {:?}: {:?}",
        x.probe, report.status, report.checks
    );
}

async fn a_report_survives_json(report: &HealthReport, _: &HealthExpectation) {
    let json = serde_json::to_string(report).expect("a report serializes");
    let back: HealthReport = serde_json::from_str(&json).expect("a report deserializes");
    assert_eq!(back.status, report.status, "the status survives JSON");
    assert_eq!(
        back.checks.len(),
        report.checks.len(),
        "the checks survive JSON"
    );
}
