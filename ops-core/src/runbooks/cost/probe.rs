//! [`CostProbe`]: yesterday's cost as a check of the daily health check ("6. Checking
//! yesterday's costs"), degraded when it breaks the spike rule.

use std::sync::Arc;

use async_trait::async_trait;

use super::summary::{CostSpikeRule, days_to_read};
use super::{CostReviewConfig, CostView, summarise};
use crate::Result;
use crate::clock::{SharedClock, system_clock};
use crate::contracts::{CheckResult, CostSource, HealthProbe, HealthReport, HealthStatus};

/// Yesterday's cost by service as a [`HealthProbe`]: healthy, or degraded when the day breaks
/// the spike rule or the source cannot be read (cost is no outage; the daily cost review pages
/// for it).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::contracts::{HealthProbe, HealthStatus};
/// use ops_core::memory::MemoryCosts;
/// use ops_core::money::{Currency, Money};
/// use ops_core::runbooks::CostProbe;
/// let costs = Arc::new(MemoryCosts::new(Currency::USD));
/// use ops_core::clock::{Clock, SystemClock};
/// let yesterday = SystemClock.now().date_naive().pred_opt().unwrap();
/// costs.add(yesterday, "Cloud Run", Money::parse(Currency::USD, "12.5")?);
/// let report = CostProbe::new(costs, None)?.check().await?;
/// assert_eq!(report.status, HealthStatus::Healthy);
/// assert!(report.checks[0].detail.starts_with("12.50 USD"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CostProbe {
    source: Arc<dyn CostSource>,
    spike: Option<CostSpikeRule>,
    clock: SharedClock,
    name: String,
}

impl CostProbe {
    /// Yesterday's cost from `source`, judged by `spike` when given; an invalid rule is
    /// refused here (`InvalidInput`), not at every check.
    pub fn new(source: Arc<dyn CostSource>, spike: Option<CostSpikeRule>) -> Result<Self> {
        if let Some(rule) = &spike {
            rule.validate()?;
        }
        Ok(Self {
            name: format!("cost:{}", source.name()),
            source,
            spike,
            clock: system_clock(),
        })
    }

    /// The same probe on `clock` (what "yesterday" is).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    async fn judge(&self) -> Result<(HealthStatus, String)> {
        let today = self.clock.now().date_naive();
        let last = today.pred_opt().unwrap_or(today);
        let config = CostReviewConfig {
            view: CostView::Daily,
            spike: self.spike.clone(),
            ..Default::default()
        };
        let days = days_to_read(CostView::Daily, self.spike.as_ref(), last)?;
        let s = summarise(&self.source.costs(&days).await?, &config)?;
        let services: Vec<String> = s
            .services
            .iter()
            .take(5)
            .map(|c| format!("{} {}", c.service, c.amount))
            .collect();
        let mut detail = format!("{} on {last}", s.total);
        if !services.is_empty() {
            detail.push_str(&format!(" ({})", services.join(", ")));
        }
        Ok(match s.spike {
            Some(spike) => (HealthStatus::Degraded, format!("{detail}: {}", spike.rule)),
            None => (HealthStatus::Healthy, detail),
        })
    }
}

#[async_trait]
impl HealthProbe for CostProbe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<HealthReport> {
        let observed_at = self.clock.now();
        let start = self.clock.instant();
        let (status, detail) = self
            .judge()
            .await
            .unwrap_or_else(|e| (HealthStatus::Degraded, format!("cannot read costs: {e}")));
        let check = CheckResult {
            name: "cost yesterday".into(),
            status,
            detail,
            latency: self.clock.instant().saturating_duration_since(start),
            observed_at,
        };
        Ok(HealthReport::from_checks(
            &self.name,
            observed_at,
            vec![check],
        ))
    }
}
