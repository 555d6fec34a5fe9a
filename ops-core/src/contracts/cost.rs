//! [`CostSource`]: what the bill says, per day and per service, and the budgets that watch it.

use async_trait::async_trait;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};
use crate::{Error, Result};

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::invalid_input("ops-core", "costs", field, reason)
}

/// Whole days, first to last inclusive (days of the source's calendar; a billing export's are
/// UTC days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRange {
    first: NaiveDate,
    last: NaiveDate,
}

impl DayRange {
    /// The most days one range spans.
    pub const MAX_DAYS: u32 = 400;

    /// `first` to `last`; `InvalidInput` when `last` comes first or the range is longer than
    /// [`DayRange::MAX_DAYS`].
    pub fn new(first: NaiveDate, last: NaiveDate) -> Result<Self> {
        let days = (last - first).num_days();
        if days < 0 {
            return Err(invalid("days", format!("{last} is before {first}")));
        }
        if days >= i64::from(Self::MAX_DAYS) {
            return Err(invalid(
                "days",
                format!("more than {} days", Self::MAX_DAYS),
            ));
        }
        Ok(Self { first, last })
    }

    /// The `days` days that end with `last` (`days` ≥ 1).
    pub fn ending(last: NaiveDate, days: u32) -> Result<Self> {
        let back = days
            .checked_sub(1)
            .ok_or_else(|| invalid("days", "must be at least 1"))?;
        let first = last
            .checked_sub_days(Days::new(u64::from(back)))
            .ok_or_else(|| invalid("days", "before the calendar's start"))?;
        Self::new(first, last)
    }

    /// The first day.
    pub fn first(&self) -> NaiveDate {
        self.first
    }

    /// The last day.
    pub fn last(&self) -> NaiveDate {
        self.last
    }

    /// How many days.
    pub fn len(&self) -> u32 {
        // Bounded by MAX_DAYS in `new`.
        u32::try_from((self.last - self.first).num_days() + 1).unwrap_or(Self::MAX_DAYS)
    }

    /// Never empty (a range has at least one day); here for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `day` is in the range.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.first <= day && day <= self.last
    }

    /// Every day, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.first.iter_days().take_while(|d| *d <= self.last)
    }
}

/// What one service cost on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostLine {
    /// The day.
    pub day: NaiveDate,
    /// The service as the bill names it (`Cloud Run`, `Cloud SQL`).
    pub service: String,
    /// The cost before credits.
    pub cost: Money,
    /// The credits (free tier, discounts, promotions): zero or negative.
    pub credits: Money,
}

impl CostLine {
    /// What is paid: cost plus credits.
    pub fn net(&self) -> Result<Money> {
        self.cost.checked_add(&self.credits)
    }
}

/// Cost lines over a range of days, in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Costs {
    range: DayRange,
    currency: Currency,
    lines: Vec<CostLine>,
}

impl Costs {
    /// `lines` over `range` in `currency`; a line outside the range or in another currency is
    /// `InvalidInput` (a source that mixed currencies must say so, not sum them).
    pub fn new(range: DayRange, currency: Currency, lines: Vec<CostLine>) -> Result<Self> {
        for l in &lines {
            if !range.contains(l.day) {
                return Err(invalid(
                    "lines",
                    format!("{} is outside {}..={}", l.day, range.first, range.last),
                ));
            }
            if l.cost.currency() != currency || l.credits.currency() != currency {
                return Err(invalid(
                    "currency",
                    format!(
                        "{} on {} is in {}, not {currency}",
                        l.service,
                        l.day,
                        l.cost.currency()
                    ),
                ));
            }
        }
        Ok(Self {
            range,
            currency,
            lines,
        })
    }

    /// The days covered.
    pub fn range(&self) -> DayRange {
        self.range
    }

    /// The currency of every amount.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The lines.
    pub fn lines(&self) -> &[CostLine] {
        &self.lines
    }

    /// Net total over the range.
    pub fn total(&self) -> Result<Money> {
        self.lines
            .iter()
            .try_fold(Money::zero(self.currency), |acc, l| {
                acc.checked_add(&l.net()?)
            })
    }

    /// Net cost per service, largest first (ties by name).
    pub fn by_service(&self) -> Result<Vec<(String, Money)>> {
        let mut sums: std::collections::BTreeMap<&str, Money> = Default::default();
        for l in &self.lines {
            let entry = sums
                .entry(l.service.as_str())
                .or_insert_with(|| Money::zero(self.currency));
            *entry = entry.checked_add(&l.net()?)?;
        }
        let mut out: Vec<(String, Money)> =
            sums.into_iter().map(|(s, m)| (s.to_string(), m)).collect();
        out.sort_by(|a, b| b.1.nanos().cmp(&a.1.nanos()).then_with(|| a.0.cmp(&b.0)));
        Ok(out)
    }

    /// Net cost of every day of the range, in order; a day without lines costs zero.
    pub fn by_day(&self) -> Result<Vec<(NaiveDate, Money)>> {
        self.range
            .days()
            .map(|day| {
                let mut on_day = self.lines.iter().filter(|l| l.day == day);
                let total = on_day.try_fold(Money::zero(self.currency), |acc, l| {
                    acc.checked_add(&l.net()?)
                })?;
                Ok((day, total))
            })
            .collect()
    }
}

/// A budget on the bill, as the source holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Its id (the source's resource name).
    pub id: String,
    /// Its name for people.
    pub display_name: String,
    /// The budgeted amount per period; `None` when it follows the last period's spend.
    pub amount: Option<Money>,
    /// Alert thresholds, in percent of the amount (`50`, `90`, `100`).
    pub thresholds_percent: Vec<f64>,
    /// The version a guarded update must name.
    pub etag: Option<String>,
}

/// A source of cost data: a billing export, a cost API.
///
/// Amounts are exact ([`Money`]) and in one currency per answer.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CostSource: Send + Sync {
    /// The source's name, for reports.
    fn name(&self) -> &str;

    /// Cost per day and per service over `days`, credits included.
    ///
    /// # Behavior
    /// - The answer covers exactly the days asked, in one currency, credits never positive,
    ///   and its net total is the bill's (`costs_cover_the_days_asked_in_one_currency`).
    /// - Days without usage cost zero, not nothing (`days_without_usage_cost_zero_not_nothing`).
    async fn costs(&self, days: &DayRange) -> Result<Costs>;

    /// The budgets on the bill; `Unsupported` where the source has none.
    ///
    /// # Behavior
    /// Well-formed budgets, or `Unsupported` (`budgets_are_listed_or_unsupported`).
    async fn budgets(&self) -> Result<Vec<Budget>> {
        Err(Error::unsupported(
            self.name().to_string(),
            "budgets",
            "budgets",
        ))
    }

    /// Sets `budget`'s amount, guarded by its etag (a concurrent change is a `Conflict`);
    /// returns the budget as stored.
    ///
    /// # Behavior
    /// The new amount reads back; an update under an etag that has since changed is a
    /// `Conflict` (`a_budget_update_sticks_and_a_stale_one_is_a_conflict`).
    async fn set_budget_amount(&self, budget: &Budget, amount: &Money) -> Result<Budget> {
        let _ = (budget, amount);
        Err(Error::unsupported(
            self.name().to_string(),
            "set_budget_amount",
            "budgets",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn usd(s: &str) -> Money {
        Money::parse(Currency::USD, s).unwrap()
    }

    fn line(d: u32, service: &str, cost: &str, credits: &str) -> CostLine {
        CostLine {
            day: day(d),
            service: service.into(),
            cost: usd(cost),
            credits: usd(credits),
        }
    }

    #[test]
    fn views_are_exact_and_cover_every_day() {
        let range = DayRange::new(day(1), day(3)).unwrap();
        let costs = Costs::new(
            range,
            Currency::USD,
            vec![
                line(1, "Cloud Run", "10.10", "-0.10"),
                line(1, "Cloud SQL", "20", "0"),
                line(3, "Cloud Run", "0.3", "0"),
            ],
        )
        .unwrap();
        assert_eq!(costs.total().unwrap(), usd("30.3"));
        assert_eq!(
            costs.by_service().unwrap(),
            vec![
                ("Cloud SQL".into(), usd("20")),
                ("Cloud Run".into(), usd("10.3"))
            ]
        );
        let days = costs.by_day().unwrap();
        assert_eq!(days.len(), 3);
        assert_eq!(days[1], (day(2), usd("0")), "a day without lines is zero");
    }

    #[test]
    fn lines_outside_the_range_or_currency_are_refused() {
        let range = DayRange::new(day(1), day(2)).unwrap();
        assert!(Costs::new(range, Currency::USD, vec![line(3, "x", "1", "0")]).is_err());
        let eur = Currency::parse("EUR").unwrap();
        assert!(Costs::new(range, eur, vec![line(1, "x", "1", "0")]).is_err());
        assert!(DayRange::new(day(2), day(1)).is_err());
        assert!(DayRange::ending(day(30), 0).is_err());
        assert_eq!(DayRange::ending(day(30), 7).unwrap().first(), day(24));
        assert!(DayRange::ending(day(30), DayRange::MAX_DAYS + 1).is_err());
    }

    proptest! {
        #[test]
        fn ranges_are_bounded_or_refused(a in -1_000_000i32..1_000_000, len in 0u32..100_000) {
            let first = NaiveDate::from_num_days_from_ce_opt(a.abs() + 1).unwrap();
            if let Ok(r) = DayRange::ending(first, len) {
                prop_assert!(r.len() == len && r.len() <= DayRange::MAX_DAYS);
                prop_assert_eq!(r.days().count(), len as usize);
            }
        }
    }
}
