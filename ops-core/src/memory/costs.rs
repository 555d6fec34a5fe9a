//! A cost source that holds its lines and budgets in memory, with etag-guarded budget updates.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::NaiveDate;

use super::lock;
use crate::contracts::{Budget, CostLine, CostSource, Costs, DayRange};
use crate::money::{Currency, Money};
use crate::{Error, ErrorKind, Result};

/// Cost lines and budgets in one currency.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use chrono::NaiveDate;
/// use ops_core::contracts::{CostSource, DayRange};
/// use ops_core::memory::MemoryCosts;
/// use ops_core::money::{Currency, Money};
/// let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
/// let costs = MemoryCosts::new(Currency::USD);
/// costs.add(day, "Cloud SQL", Money::parse(Currency::USD, "7.25")?);
/// let read = costs.costs(&DayRange::ending(day, 7)?).await?;
/// assert_eq!(read.total()?.amount_text(), "7.25");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemoryCosts {
    currency: Currency,
    lines: Mutex<Vec<CostLine>>,
    budgets: Mutex<Vec<Budget>>,
}

impl MemoryCosts {
    /// No costs yet, in `currency`.
    pub fn new(currency: Currency) -> Self {
        Self {
            currency,
            lines: Mutex::default(),
            budgets: Mutex::default(),
        }
    }

    /// Adds a line of `cost` without credits.
    pub fn add(&self, day: NaiveDate, service: &str, cost: Money) {
        self.add_line(CostLine {
            day,
            service: service.into(),
            cost,
            credits: Money::zero(cost.currency()),
        });
    }

    /// Adds a line.
    pub fn add_line(&self, line: CostLine) {
        lock(&self.lines).push(line);
    }

    /// Adds a budget (its etag starts at `1`).
    pub fn add_budget(&self, mut budget: Budget) {
        budget.etag = Some("1".into());
        lock(&self.budgets).push(budget);
    }
}

#[async_trait]
impl CostSource for MemoryCosts {
    fn name(&self) -> &str {
        "memory-costs"
    }

    async fn costs(&self, days: &DayRange) -> Result<Costs> {
        let lines: Vec<CostLine> = lock(&self.lines)
            .iter()
            .filter(|l| days.contains(l.day))
            .cloned()
            .collect();
        Costs::new(*days, self.currency, lines)
    }

    async fn budgets(&self) -> Result<Vec<Budget>> {
        Ok(lock(&self.budgets).clone())
    }

    async fn set_budget_amount(&self, budget: &Budget, amount: &Money) -> Result<Budget> {
        let mut all = lock(&self.budgets);
        let err = |kind| Error::new("memory-costs", "set_budget_amount", kind);
        let stored = all.iter_mut().find(|b| b.id == budget.id).ok_or_else(|| {
            err(ErrorKind::NotFound {
                resource: budget.id.clone(),
            })
        })?;
        if stored.etag != budget.etag {
            return Err(err(ErrorKind::Conflict {
                detail: format!("budget {} changed since it was read", budget.id),
            }));
        }
        let next: u64 = stored
            .etag
            .as_deref()
            .and_then(|e| e.parse().ok())
            .unwrap_or(0);
        stored.amount = Some(*amount);
        stored.etag = Some(next.saturating_add(1).to_string());
        Ok(stored.clone())
    }
}
