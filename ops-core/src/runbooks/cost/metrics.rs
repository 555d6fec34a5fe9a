//! [`CostMetrics`]: the daily cost as a metric, for the alert table and for an escalation
//! matrix that calls finance in when cost crosses a line (seed 000: "cost exceeds $500/day →
//! finance + CTO").

use std::sync::Arc;

use async_trait::async_trait;

use crate::contracts::{CostSource, DayRange, Metric, MetricQuery, MetricReading, MetricsSource};
use crate::{Error, Result};

/// The metric [`CostMetrics`] answers: the net cost of the last whole day before the query's
/// window ends, in units of the bill's currency. `daily_cost_usd` (any currency code) answers
/// it only when the bill is in that currency.
pub const DAILY_COST: &str = "daily_cost";

/// A [`CostSource`] as a [`MetricsSource`] of [`DAILY_COST`].
///
/// A day without usage reads as too little data, not as zero (a bill that has not arrived
/// is no saving).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use chrono::NaiveDate;
/// use ops_core::contracts::{Metric, MetricQuery, MetricsSource, TimeWindow};
/// use ops_core::memory::MemoryCosts;
/// use ops_core::money::{Currency, Money};
/// use ops_core::runbooks::CostMetrics;
/// let costs = Arc::new(MemoryCosts::new(Currency::USD));
/// costs.add(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(), "Cloud Run", Money::parse(Currency::USD, "612.5")?);
/// let end = "2026-11-30T09:00:00Z".parse().unwrap();
/// let q = MetricQuery {
///     metric: Metric::Named { name: "daily_cost_usd".into() },
///     window: TimeWindow::ending_at(end, std::time::Duration::from_secs(86_400))?,
///     release: None,
///     min_samples: 1,
/// };
/// assert_eq!(CostMetrics::new(costs).read(&q).await?.value(), Some(612.5));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CostMetrics {
    source: Arc<dyn CostSource>,
    name: String,
}

impl CostMetrics {
    /// The daily cost from `source`.
    pub fn new(source: Arc<dyn CostSource>) -> Self {
        Self {
            name: format!("cost-metrics:{}", source.name()),
            source,
        }
    }
}

#[async_trait]
impl MetricsSource for CostMetrics {
    fn name(&self) -> &str {
        &self.name
    }

    async fn read(&self, query: &MetricQuery) -> Result<MetricReading> {
        query.validate()?;
        let currency = match &query.metric {
            Metric::Named { name } if name == DAILY_COST => None,
            Metric::Named { name } => match name.strip_prefix("daily_cost_") {
                Some(code) => Some(crate::money::Currency::parse(code)?),
                None => return Err(self.unsupported(name)),
            },
            other => return Err(self.unsupported(&format!("{other:?}"))),
        };
        let end = query.window.end.date_naive();
        let day = end.pred_opt().unwrap_or(end);
        let costs = self.source.costs(&DayRange::new(day, day)?).await?;
        if let Some(c) = currency
            && c != costs.currency()
        {
            return Err(Error::invalid_input(
                "cost-metrics",
                "read",
                "metric",
                format!("the bill is in {}, not {c}", costs.currency()),
            ));
        }
        let samples = costs.lines().len() as u64;
        if samples < query.min_samples.max(1) {
            return Ok(MetricReading::InsufficientData {
                samples,
                detail: format!("no cost lines for {day} yet"),
            });
        }
        let total = costs.total()?;
        // A reading for a threshold, not a sum: f64 is exact enough here.
        let value = total.amount_text().parse::<f64>().unwrap_or(f64::MAX);
        Ok(MetricReading::Value { value, samples })
    }
}

impl CostMetrics {
    fn unsupported(&self, what: &str) -> Error {
        Error::unsupported(
            self.name.clone(),
            "read",
            format!("{what} (only {DAILY_COST} and daily_cost_<currency>)"),
        )
    }
}
