//! The arithmetic of a cost review, apart from any source: totals by service against expected
//! shares, the month-end projection, the spike rule, and what a budget should be.

use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::contracts::{Budget, Costs, DayRange, Severity};
use crate::money::Money;

/// Which review: the daily check (yesterday), the weekly review (7 days) or the monthly review
/// (30 days, with the month-end projection and the budget).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostView {
    /// Yesterday, and the spike rule.
    #[default]
    Daily,
    /// The last 7 days by service.
    Weekly,
    /// The last 30 days by service against the expected shares, the month to date and its
    /// projection, and the budget.
    Monthly,
}

impl CostView {
    /// How many days the view reports.
    pub fn days(&self) -> u32 {
        match self {
            CostView::Daily => 1,
            CostView::Weekly => 7,
            CostView::Monthly => 30,
        }
    }
}

/// The share of the total a service is expected to take ("Cloud Run 15–25 %").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedShare {
    /// The service as the bill names it (`Cloud Run`).
    pub service: String,
    /// Below this percentage is unexpected.
    #[serde(default)]
    pub min_percent: f64,
    /// Above this percentage is unexpected.
    pub max_percent: f64,
}

/// One service's part of the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceCost {
    /// The service.
    pub service: String,
    /// Its net cost.
    pub amount: Money,
    /// Its share of the total, in percent (`None` when the total is zero).
    pub percent: Option<f64>,
    /// The expected range, when one is configured: (min, max) percent.
    pub expected: Option<(f64, f64)>,
    /// Outside the expected range.
    pub unexpected: bool,
}

/// The month so far and where it ends at this rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthProjection {
    /// The month's first day.
    pub month: NaiveDate,
    /// The net cost from the 1st to the last day read.
    pub month_to_date: Money,
    /// Days counted.
    pub days_counted: u32,
    /// Days in the month.
    pub days_in_month: u32,
    /// `month_to_date × days_in_month / days_counted`.
    pub projected: Money,
}

/// A day whose cost broke the spike rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostSpike {
    /// The day.
    pub day: NaiveDate,
    /// Its net cost.
    pub cost: Money,
    /// The level it went above.
    pub limit: Money,
    /// Why that level, in words (`above 50.00 USD`, `2× the median of 14 days (24.00 USD)`).
    pub rule: String,
    /// How urgent.
    pub severity: Severity,
}

/// What the budget is and what it should be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetCheck {
    /// The budget as read.
    pub budget: Budget,
    /// The projection exceeds the budgeted amount.
    pub exceeded_by_projection: bool,
    /// The amount it should be set to, when it should change.
    pub proposed: Option<Money>,
}

/// A cost review's findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostSummary {
    /// Which review.
    pub view: CostView,
    /// The days reported.
    pub range: DayRange,
    /// Their net total.
    pub total: Money,
    /// By service, largest first.
    pub services: Vec<ServiceCost>,
    /// Each day's net cost.
    pub daily: Vec<(NaiveDate, Money)>,
    /// The month-end projection (monthly view).
    pub projection: Option<MonthProjection>,
    /// The spike, if the last day broke the rule.
    pub spike: Option<CostSpike>,
    /// The budget (monthly view, when one is configured), filled in by the review.
    pub budget: Option<BudgetCheck>,
}

impl CostSummary {
    /// Services outside their expected share.
    pub fn unexpected(&self) -> impl Iterator<Item = &ServiceCost> {
        self.services.iter().filter(|s| s.unexpected)
    }

    /// A Markdown report for people.
    pub fn to_markdown(&self) -> String {
        format!(
            "# Cost, {} to {}\n\n{}",
            self.range.first(),
            self.range.last(),
            self.body_markdown()
        )
    }

    /// [`CostSummary::to_markdown`] without its heading, to go into another report.
    pub fn body_markdown(&self) -> String {
        let mut md = format!(
            "Total: **{}**\n\n| Service | Cost | Share | Expected |\n|---|---|---|---|\n",
            self.total
        );
        for s in &self.services {
            let share = s.percent.map_or("-".into(), |p| format!("{p:.1} %"));
            let expected = s.expected.map_or(String::new(), |(lo, hi)| {
                format!("{lo}–{hi} %{}", if s.unexpected { " ⚠" } else { "" })
            });
            md.push_str(&format!(
                "| {} | {} | {share} | {expected} |\n",
                s.service.replace('|', "\\|"),
                s.amount
            ));
        }
        if let Some(p) = &self.projection {
            md.push_str(&format!(
                "\nMonth to date ({} days of {}): {}; projected: **{}**\n",
                p.days_counted, p.days_in_month, p.month_to_date, p.projected
            ));
        }
        if let Some(b) = &self.budget {
            let amount = b
                .budget
                .amount
                .map_or("last period's spend".into(), |a| a.to_string());
            md.push_str(&format!("\nBudget {}: {amount}", b.budget.display_name));
            if let Some(p) = &b.proposed {
                md.push_str(&format!("; proposed: {p}"));
            }
            md.push('\n');
        }
        if let Some(s) = &self.spike {
            md.push_str(&format!(
                "\n**Cost spike** on {}: {} ({})\n",
                s.day, s.cost, s.rule
            ));
        }
        md
    }
}

/// The spike rule: a day's cost above a fixed amount, or above a multiple of the median of the
/// days before it ("daily cost > $50 (2× normal)").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSpikeRule {
    /// Above this amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<Money>,
    /// Above this multiple of the trailing median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times_median: Option<f64>,
    /// How many days before the day the median is taken over (default 14; days before the
    /// first day with any cost are not counted).
    #[serde(default = "fourteen")]
    pub trailing_days: u32,
    /// How urgent a spike is (default error).
    #[serde(default = "error_severity")]
    pub severity: Severity,
}

fn fourteen() -> u32 {
    14
}

fn error_severity() -> Severity {
    Severity::Error
}

impl CostSpikeRule {
    /// The most trailing days.
    pub const MAX_TRAILING_DAYS: u32 = 90;

    /// Needs a level; a multiple above 1 and at most 1000; 1 to 90 trailing days.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: &str| crate::config::invalid(field, why);
        if self.above.is_none() && self.times_median.is_none() {
            return Err(bad("spike", "give `above` or `times_median` (or both)"));
        }
        if let Some(f) = self.times_median
            && !(f > 1.0 && f <= 1000.0)
        {
            return Err(bad(
                "spike.times_median",
                "must be above 1 and at most 1000",
            ));
        }
        if !(1..=Self::MAX_TRAILING_DAYS).contains(&self.trailing_days) {
            return Err(bad("spike.trailing_days", "must be 1 to 90"));
        }
        if self.above.is_some_and(|a| a.nanos() <= 0) {
            return Err(bad("spike.above", "must be positive"));
        }
        Ok(())
    }

    /// Judges the last of `daily` (each day's net cost, oldest first) against the days before
    /// it; the lower of the two levels counts.
    pub fn judge(&self, daily: &[(NaiveDate, Money)]) -> Result<Option<CostSpike>> {
        let Some(((day, cost), before)) = daily.split_last() else {
            return Ok(None);
        };
        let mut levels: Vec<(Money, String)> = Vec::new();
        if let Some(above) = self.above {
            levels.push((above, format!("above {above}")));
        }
        if let Some(factor) = self.times_median {
            let start = before.len().saturating_sub(self.trailing_days as usize);
            let trailing = &before[start..];
            // Days before the first with any cost are before the data began, not free days.
            let begun = trailing.iter().position(|(_, m)| !m.is_zero());
            let amounts: Vec<Money> = begun
                .map(|i| trailing[i..].iter().map(|(_, m)| *m).collect())
                .unwrap_or_default();
            if let Some(median) = Money::median(&amounts) {
                levels.push((
                    median.times(factor)?,
                    format!("{factor}× the median of {} days ({median})", amounts.len()),
                ));
            }
        }
        let lowest = levels
            .into_iter()
            .filter(|(level, _)| level.currency() == cost.currency())
            .min_by_key(|(level, _)| level.nanos());
        Ok(lowest
            .filter(|(level, _)| cost.nanos() > level.nanos())
            .map(|(limit, rule)| CostSpike {
                day: *day,
                cost: *cost,
                limit,
                rule,
                severity: self.severity,
            }))
    }
}

/// Shares of `costs`' total by service, against `expected`.
pub fn service_shares(costs: &Costs, expected: &[ExpectedShare]) -> Result<Vec<ServiceCost>> {
    let total = costs.total()?;
    Ok(costs
        .by_service()?
        .into_iter()
        .map(|(service, amount)| {
            let percent = amount.percent_of(&total);
            let expected = expected
                .iter()
                .find(|e| e.service.eq_ignore_ascii_case(&service))
                .map(|e| (e.min_percent, e.max_percent));
            let unexpected = match (percent, expected) {
                (Some(p), Some((lo, hi))) => p < lo || p > hi,
                _ => false,
            };
            ServiceCost {
                service,
                amount,
                percent,
                expected,
                unexpected,
            }
        })
        .collect())
}

/// The month of `last`, projected from its first day through `last`.
pub fn project_month(costs: &Costs, last: NaiveDate) -> Result<Option<MonthProjection>> {
    let Some(month) = last.with_day(1) else {
        return Ok(None);
    };
    let next = month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(month);
    let days_in_month = u32::try_from((next - month).num_days()).unwrap_or(30);
    let days_counted = last.day();
    let mut mtd = Money::zero(costs.currency());
    for l in costs
        .lines()
        .iter()
        .filter(|l| l.day >= month && l.day <= last)
    {
        mtd = mtd.checked_add(&l.net()?)?;
    }
    if !costs.range().contains(month) {
        // The month's start was not read: no honest projection.
        return Ok(None);
    }
    Ok(Some(MonthProjection {
        month,
        month_to_date: mtd,
        days_counted,
        days_in_month,
        projected: mtd.scaled(i128::from(days_in_month), i128::from(days_counted))?,
    }))
}

/// What `budget` should be given `projected`: unchanged while the projection fits; otherwise
/// the projection plus `headroom_percent`, rounded up to a whole unit.
pub fn check_budget(
    budget: Budget,
    projected: &Money,
    headroom_percent: f64,
) -> Result<BudgetCheck> {
    let exceeded = budget
        .amount
        .is_some_and(|a| a.currency() == projected.currency() && projected.nanos() > a.nanos());
    let proposed = if exceeded {
        let raised = projected.times(1.0 + headroom_percent / 100.0)?;
        let unit: i128 = 1_000_000_000;
        let whole =
            raised.nanos().div_euclid(unit) + i128::from(raised.nanos().rem_euclid(unit) != 0);
        Some(Money::from_nanos(raised.currency(), whole * unit)?)
    } else {
        None
    };
    Ok(BudgetCheck {
        budget,
        exceeded_by_projection: exceeded,
        proposed,
    })
}

/// The days a review reads: its own, and before them what the spike rule and the month-to-date
/// need, ending with `last`.
pub fn days_to_read(
    view: CostView,
    spike: Option<&CostSpikeRule>,
    last: NaiveDate,
) -> Result<DayRange> {
    let mut days = view.days();
    if let Some(rule) = spike {
        days = days.max(rule.trailing_days + 1);
    }
    if view == CostView::Monthly {
        days = days.max(last.day());
    }
    DayRange::ending(last, days)
}

/// The view's own days within `read` (the last `view.days()` of it).
pub fn view_range(view: CostView, read: &DayRange) -> Result<DayRange> {
    let first = read
        .last()
        .checked_sub_days(Days::new(u64::from(view.days() - 1)))
        .unwrap_or(read.first())
        .max(read.first());
    DayRange::new(first, read.last())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::CostLine;
    use crate::money::Currency;
    use proptest::prelude::*;

    fn usd(s: &str) -> Money {
        Money::parse(Currency::USD, s).unwrap()
    }

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn series(amounts: &[&str]) -> Vec<(NaiveDate, Money)> {
        amounts
            .iter()
            .enumerate()
            .map(|(i, a)| (day(11, 1 + i as u32), usd(a)))
            .collect()
    }

    #[test]
    fn the_seed_spike_fires_above_fifty_dollars_or_twice_normal() {
        let rule = CostSpikeRule {
            above: Some(usd("50")),
            times_median: Some(2.0),
            trailing_days: 14,
            severity: Severity::Error,
        };
        rule.validate().unwrap();
        let normal = series(&["25", "24", "26", "25", "49.99"]);
        assert_eq!(
            rule.judge(&normal).unwrap(),
            None,
            "under 50 and under 2× 25"
        );
        let spike = rule
            .judge(&series(&["25", "24", "26", "25", "50.01"]))
            .unwrap()
            .unwrap();
        assert_eq!((spike.cost, spike.limit), (usd("50.01"), usd("50")));
        // A quiet project: 2× its median of 10 is the lower level.
        let quiet = rule
            .judge(&series(&["10", "9", "11", "10", "21"]))
            .unwrap()
            .unwrap();
        assert_eq!(quiet.limit, usd("20"));
        assert!(quiet.rule.contains("median of 4 days"), "{}", quiet.rule);
        // Before the export began: the zero days are not a median of zero.
        let fresh = rule.judge(&series(&["0", "0", "10", "10", "15"])).unwrap();
        assert_eq!(fresh, None);
    }

    #[test]
    fn shares_projection_and_budget() {
        let range = DayRange::new(day(11, 1), day(11, 10)).unwrap();
        let mut lines = Vec::new();
        for d in 1..=10 {
            for (service, cost) in [
                ("Cloud Run", "2"),
                ("Cloud SQL", "3"),
                ("Cloud Storage", "5"),
            ] {
                lines.push(CostLine {
                    day: day(11, d),
                    service: service.into(),
                    cost: usd(cost),
                    credits: usd("0"),
                });
            }
        }
        let costs = Costs::new(range, Currency::USD, lines).unwrap();
        let expected = [
            ExpectedShare {
                service: "Cloud Run".into(),
                min_percent: 15.0,
                max_percent: 25.0,
            },
            ExpectedShare {
                service: "cloud storage".into(),
                min_percent: 5.0,
                max_percent: 10.0,
            },
        ];
        let shares = service_shares(&costs, &expected).unwrap();
        assert_eq!(shares[0].service, "Cloud Storage");
        assert!(shares[0].unexpected, "50 % is above 10 %");
        let run = shares.iter().find(|s| s.service == "Cloud Run").unwrap();
        assert!(!run.unexpected && run.percent == Some(20.0));
        let sql = shares.iter().find(|s| s.service == "Cloud SQL").unwrap();
        assert_eq!((sql.expected, sql.unexpected), (None, false));

        let p = project_month(&costs, day(11, 10)).unwrap().unwrap();
        assert_eq!((p.month_to_date, p.days_in_month), (usd("100"), 30));
        assert_eq!(p.projected, usd("300"));
        let later = DayRange::new(day(11, 5), day(11, 10)).unwrap();
        let partial = Costs::new(later, Currency::USD, vec![]).unwrap();
        assert_eq!(project_month(&partial, day(11, 10)).unwrap(), None);

        let budget = |amount: &str| Budget {
            id: "b".into(),
            display_name: "monthly".into(),
            amount: Some(usd(amount)),
            thresholds_percent: vec![50.0, 100.0],
            etag: None,
        };
        let fine = check_budget(budget("400"), &p.projected, 10.0).unwrap();
        assert_eq!((fine.exceeded_by_projection, fine.proposed), (false, None));
        let short = check_budget(budget("250"), &usd("300.5"), 10.0).unwrap();
        assert_eq!(short.proposed, Some(usd("331")), "330.55 rounded up");
        let md = CostSummary {
            view: CostView::Monthly,
            range,
            total: usd("100"),
            services: shares,
            daily: vec![],
            projection: Some(p),
            spike: None,
            budget: Some(short),
        }
        .to_markdown();
        assert!(
            md.contains("| Cloud Storage | 50.00 USD | 50.0 % | 5–10 % ⚠ |"),
            "{md}"
        );
        assert!(md.contains("projected: **300.00 USD**"), "{md}");
    }

    #[test]
    fn the_days_read_cover_the_view_the_median_and_the_month() {
        let rule = CostSpikeRule {
            above: None,
            times_median: Some(2.0),
            trailing_days: 14,
            severity: Severity::Error,
        };
        let r = days_to_read(CostView::Daily, Some(&rule), day(11, 29)).unwrap();
        assert_eq!(r.len(), 15);
        assert_eq!(
            view_range(CostView::Daily, &r).unwrap().first(),
            day(11, 29)
        );
        let m = days_to_read(CostView::Monthly, None, day(12, 31)).unwrap();
        assert_eq!((m.first(), m.len()), (day(12, 1), 31));
        assert_eq!(
            view_range(CostView::Monthly, &m).unwrap().first(),
            day(12, 2)
        );
        assert!(
            CostSpikeRule {
                times_median: Some(1.0),
                ..rule.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            CostSpikeRule {
                times_median: None,
                ..rule
            }
            .validate()
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn a_spike_is_always_above_its_limit(amounts in prop::collection::vec(0i64..10_000_000, 1..40), factor in 1.01f64..10.0) {
            let daily: Vec<(NaiveDate, Money)> = amounts.iter().enumerate().map(|(i, a)| {
                (day(1, 1).checked_add_days(Days::new(i as u64)).unwrap(), Money::from_nanos(Currency::USD, i128::from(*a) * 1_000_000).unwrap())
            }).collect();
            let rule = CostSpikeRule { above: Some(usd("5")), times_median: Some(factor), trailing_days: 14, severity: Severity::Error };
            if let Some(s) = rule.judge(&daily).unwrap() {
                prop_assert!(s.cost.nanos() > s.limit.nanos());
                prop_assert!(s.limit.nanos() <= usd("5").nanos());
            } else {
                prop_assert!(daily.last().unwrap().1.nanos() <= usd("5").nanos());
            }
        }
    }
}
