//! The [`HealthProbe`] suite.

use super::expect_ok;
use crate::contracts::{HealthProbe, HealthReport, HealthStatus};

/// Checks a report's shape and that the probe sees `expected` (arrange the target first).
pub async fn health_probe(probe: &dyn HealthProbe, expected: HealthStatus) -> HealthReport {
    let report = expect_ok("check", probe.check().await);
    assert_eq!(report.probe, probe.name(), "the report names its probe");
    assert!(!report.checks.is_empty(), "a report has at least one check");
    let worst = report.checks.iter().map(|c| c.status).max().unwrap();
    assert_eq!(report.status, worst, "overall status is the worst check");
    assert!(
        report
            .checks
            .iter()
            .all(|c| !c.name.is_empty() && !c.detail.is_empty()),
        "checks are named and explained"
    );
    assert_eq!(
        report.status,
        expected,
        "probe {} saw {:?}: {:?}",
        probe.name(),
        report.status,
        report.checks
    );
    let json = serde_json::to_string(&report).expect("a report serializes");
    let back: HealthReport = serde_json::from_str(&json).expect("a report deserializes");
    assert_eq!(back.status, report.status);
    report
}
