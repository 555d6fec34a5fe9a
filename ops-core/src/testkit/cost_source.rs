//! The [`CostSource`] suite.

use super::{Case, always, cases, check_cases, expect_ok};
use crate::ErrorKind;
use crate::contracts::{CostSource, DayRange};
use crate::money::Money;

/// What the source is known to hold.
#[derive(Debug, Clone)]
pub struct CostFixture {
    /// Days with usage.
    pub days: DayRange,
    /// Their net total (credits included).
    pub total: Money,
    /// Days without any usage.
    pub quiet: DayRange,
}

/// The cost source suite's cases.
pub fn cost_source_cases() -> Vec<Case<dyn CostSource, CostFixture>> {
    cases![dyn CostSource, CostFixture;
        costs_cover_the_days_asked_in_one_currency unless always,
        days_without_usage_cost_zero_not_nothing unless always,
        budgets_are_listed_or_unsupported unless always,
        a_budget_update_sticks_and_a_stale_one_is_a_conflict unless always,
    ]
}

/// Checks the fixture's days and total, credits never positive, quiet days at zero, and
/// budgets (listed well-formed, updated under their etag) or `Unsupported`. The last case
/// changes the amount of the first budget, when there is one.
pub async fn cost_source(source: &(dyn CostSource + 'static), fixture: &CostFixture) {
    check_cases("cost_source", source, fixture, &cost_source_cases()).await;
}

async fn costs_cover_the_days_asked_in_one_currency(s: &dyn CostSource, f: &CostFixture) {
    assert!(!s.name().trim().is_empty(), "the source has a name");
    let costs = expect_ok("costs", s.costs(&f.days).await);
    assert_eq!(costs.range(), f.days, "the answer covers the days asked");
    for l in costs.lines() {
        assert!(f.days.contains(l.day), "a line outside the days: {l:?}");
        assert!(l.credits.nanos() <= 0, "credits reduce the cost: {l:?}");
        assert_eq!(l.cost.currency(), costs.currency(), "one currency: {l:?}");
    }
    assert_eq!(
        expect_ok("total", costs.total()),
        f.total,
        "the net total over the days"
    );
}

async fn days_without_usage_cost_zero_not_nothing(s: &dyn CostSource, f: &CostFixture) {
    let costs = expect_ok("costs of quiet days", s.costs(&f.quiet).await);
    let days = expect_ok("by day", costs.by_day());
    assert_eq!(days.len() as u32, f.quiet.len(), "every day is there");
    assert!(
        days.iter().all(|(_, m)| m.is_zero()),
        "quiet days cost zero: {days:?}"
    );
}

async fn budgets_are_listed_or_unsupported(s: &dyn CostSource, _: &CostFixture) {
    match s.budgets().await {
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::Unsupported { .. }),
            "budgets fail only as Unsupported: {e}"
        ),
        Ok(budgets) => {
            for b in &budgets {
                assert!(!b.id.trim().is_empty(), "a budget has an id: {b:?}");
                assert!(
                    b.amount.is_none_or(|a| a.nanos() > 0),
                    "an amount is positive: {b:?}"
                );
                assert!(
                    b.thresholds_percent
                        .iter()
                        .all(|t| t.is_finite() && *t >= 0.0),
                    "thresholds are percentages: {b:?}"
                );
            }
        }
    }
}

async fn a_budget_update_sticks_and_a_stale_one_is_a_conflict(s: &dyn CostSource, _: &CostFixture) {
    let Ok(budgets) = s.budgets().await else {
        return;
    };
    let Some(first) = budgets.into_iter().find(|b| b.amount.is_some()) else {
        return;
    };
    let Some(amount) = first.amount else { return };
    let raised = expect_ok("raised", amount.checked_add(&amount));
    let stored = expect_ok("update", s.set_budget_amount(&first, &raised).await);
    assert_eq!(stored.amount, Some(raised), "the update is what is stored");
    let listed = expect_ok("budgets again", s.budgets().await);
    assert!(
        listed
            .iter()
            .any(|b| b.id == first.id && b.amount == Some(raised)),
        "the update reads back"
    );
    if first.etag.is_some() {
        let err = s
            .set_budget_amount(&first, &amount)
            .await
            .expect_err("an update under the etag read before the last one");
        assert!(
            matches!(err.kind(), ErrorKind::Conflict { .. }),
            "a stale update is a Conflict: {err}"
        );
    }
}
