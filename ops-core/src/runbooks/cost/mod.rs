//! Cost review: the daily check of yesterday's cost and its spike alert, the weekly cost by
//! service, and the monthly review against expected shares with a month-end projection and the
//! budget kept current.
//!
//! Replaces seed 000's "check yesterday's costs", "cost analysis (last 7 days)", the mid-month
//! "cost optimization review" (expected distribution Cloud Run 15–25 %, Cloud SQL 20–30 %,
//! Storage 5–10 %; project next month; update budget alerts) and alert 3, "daily cost > $50
//! (2× normal) → notify on-call and finance, P1".

mod metrics;
mod probe;
mod summary;

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use metrics::{CostMetrics, DAILY_COST};
pub use probe::CostProbe;
pub use summary::{
    BudgetCheck, CostSpike, CostSpikeRule, CostSummary, CostView, ExpectedShare, MonthProjection,
    ServiceCost, check_budget, days_to_read, project_month, service_shares, view_range,
};

use super::RunbookConfig;
use crate::config::invalid;
use crate::contracts::{Budget, CostSource, Costs, Notification, Notifier};
use crate::engine::{Action, Output, RunReport, Runbook, Step};
use crate::{Error, ErrorKind, Result};

/// Which budget the monthly review keeps current, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetPolicy {
    /// The budget's display name or id.
    pub name: String,
    /// Room above the projection a raised budget gets, in percent (default 10).
    #[serde(default = "ten")]
    pub headroom_percent: f64,
    /// Raise the budget when the projection exceeds it (default: only report it).
    #[serde(default)]
    pub update: bool,
}

fn ten() -> f64 {
    10.0
}

fn one() -> u32 {
    1
}

/// The cost review's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostReviewConfig {
    /// Which review (default daily).
    #[serde(default)]
    pub view: CostView,
    /// How many days the bill lags: the last day read is this many days before today (default
    /// 1, yesterday: billing exports arrive within a day).
    #[serde(default = "one")]
    pub lag_days: u32,
    /// The expected share of each named service.
    #[serde(default)]
    pub expected: Vec<ExpectedShare>,
    /// The spike rule on the last day read: the daily view sends a spike to the notifiers,
    /// the weekly and monthly views only report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike: Option<CostSpikeRule>,
    /// The budget the monthly review checks against its projection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetPolicy>,
}

impl Default for CostReviewConfig {
    fn default() -> Self {
        Self {
            view: CostView::Daily,
            lag_days: 1,
            expected: Vec::new(),
            spike: None,
            budget: None,
        }
    }
}

impl RunbookConfig for CostReviewConfig {
    fn validate(&self) -> Result<()> {
        if self.lag_days > 7 {
            return Err(invalid("cost.lag_days", "must be at most 7"));
        }
        for e in &self.expected {
            let ok = (0.0..=100.0).contains(&e.min_percent)
                && (0.0..=100.0).contains(&e.max_percent)
                && e.min_percent <= e.max_percent;
            if !ok || e.service.trim().is_empty() {
                return Err(invalid(
                    "cost.expected",
                    format!("{:?}: a service and 0 ≤ min ≤ max ≤ 100", e.service),
                ));
            }
        }
        if let Some(s) = &self.spike {
            s.validate()?;
        }
        if let Some(b) = &self.budget
            && (b.name.trim().is_empty() || !(0.0..=100.0).contains(&b.headroom_percent))
        {
            return Err(invalid(
                "cost.budget",
                "a name, and headroom_percent from 0 to 100",
            ));
        }
        Ok(())
    }
}

/// Reads the bill and reports; notifies a spike; keeps the budget current.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::memory::MemoryCosts;
/// use ops_core::money::{Currency, Money};
/// use ops_core::runbooks::{CostReview, CostReviewConfig, CostView, Procedure};
/// let costs = Arc::new(MemoryCosts::new(Currency::USD));
/// use ops_core::clock::{Clock, SystemClock};
/// let yesterday = SystemClock.now().date_naive().pred_opt().unwrap();
/// costs.add(yesterday, "Cloud Run", Money::parse(Currency::USD, "12.5")?);
/// let config = CostReviewConfig { view: CostView::Weekly, ..Default::default() };
/// let done = CostReview::new("code-developer-prod", costs, config).run(&Runner::new(), Mode::Execute).await?;
/// assert_eq!(done.summary.unwrap().total.amount_text(), "12.5");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CostReview {
    target: String,
    source: Arc<dyn CostSource>,
    config: CostReviewConfig,
    notifiers: Vec<Arc<dyn Notifier>>,
}

const COSTS: &str = "costs";
const SUMMARY: &str = "summary";
const BUDGET: &str = "budget";
const UPDATE_BUDGET: &str = "update-budget";

impl CostReview {
    /// A review of `target`'s bill (a project) from `source`.
    pub fn new(
        target: impl Into<String>,
        source: Arc<dyn CostSource>,
        config: CostReviewConfig,
    ) -> Self {
        Self {
            target: target.into(),
            source,
            config,
            notifiers: Vec::new(),
        }
    }

    /// Adds a notifier a spike goes to (the seed's "on-call and finance" are two).
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    fn last_day(&self, today: NaiveDate) -> Result<NaiveDate> {
        today
            .checked_sub_days(Days::new(u64::from(self.config.lag_days)))
            .ok_or_else(|| invalid("cost.lag_days", "before the calendar's start"))
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let mut rb =
            Runbook::new("cost-review", &self.target).with_category(crate::engine::Category::Check);
        let (source, config, this) = (self.source.clone(), self.config.clone(), self.clone());
        let costs: Output<Costs> = rb.add_step(Step::read(COSTS, move |ctx| {
            let last = this.last_day(ctx.clock().now().date_naive())?;
            let days = days_to_read(config.view, config.spike.as_ref(), last)?;
            let source = source.clone();
            Ok(Action::new(
                "CostSource::costs",
                json!({ "source": source.name(), "first": days.first(), "last": days.last() }),
                async move { source.costs(&days).await },
            ))
        }));
        let config = self.config.clone();
        let summary: Output<CostSummary> = rb.add_step(Step::read(SUMMARY, move |ctx| {
            let costs = ctx.get(&costs)?;
            let config = config.clone();
            Ok(Action::new(
                "summarise",
                json!({ "view": config.view }),
                async move { summarise(&costs, &config) },
            ))
        }));
        if let (Some(policy), CostView::Monthly) = (self.config.budget.clone(), self.config.view) {
            let (source, summary) = (self.source.clone(), summary.clone());
            let budget: Output<BudgetCheck> = rb.add_step(Step::read(BUDGET, move |ctx| {
                let (source, policy) = (source.clone(), policy.clone());
                let projected = ctx.get(&summary)?.projection.map(|p| p.projected);
                Ok(Action::new(
                    "CostSource::budgets",
                    json!({ "budget": policy.name }),
                    async move {
                        let found = find_budget(source.budgets().await?, &policy.name)?;
                        match projected {
                            Some(p) => check_budget(found, &p, policy.headroom_percent),
                            None => Ok(BudgetCheck {
                                budget: found,
                                exceeded_by_projection: false,
                                proposed: None,
                            }),
                        }
                    },
                ))
            }));
            if self.config.budget.as_ref().is_some_and(|b| b.update) {
                let source = self.source.clone();
                rb = rb.step(Step::mutate(UPDATE_BUDGET, move |ctx| {
                    let check = ctx.get(&budget)?;
                    let source = source.clone();
                    Ok(Action::new(
                        "CostSource::set_budget_amount",
                        json!({ "budget": check.budget.display_name, "from": check.budget.amount, "to": check.proposed }),
                        async move {
                            match check.proposed {
                                Some(amount) => {
                                    Ok(Some(source.set_budget_amount(&check.budget, &amount).await?))
                                }
                                None => Ok(None),
                            }
                        },
                    ))
                }));
            }
        }
        // The daily check pages; the weekly and monthly reviews report a spike, once paged.
        let pages = self.config.view == CostView::Daily && self.config.spike.is_some();
        if !self.notifiers.is_empty() && pages {
            let (notifiers, target) = (self.notifiers.clone(), self.target.clone());
            rb = rb.step(Step::mutate("notify-spike", move |ctx| {
                let s = ctx.get(&summary)?;
                let note = s
                    .spike
                    .as_ref()
                    .map(|spike| spike_notification(&target, spike, &s));
                let notifiers = notifiers.clone();
                Ok(Action::new(
                    "Notifier::send",
                    json!({ "spike": note.as_ref().map(|n| n.title.clone()) }),
                    async move {
                        let Some(note) = note else { return Ok(0) };
                        for n in &notifiers {
                            n.send(&note).await?;
                        }
                        Ok(notifiers.len())
                    },
                ))
            }));
        }
        Ok(rb)
    }
}

/// The summary of `costs` for `config`'s view.
pub fn summarise(costs: &Costs, config: &CostReviewConfig) -> Result<CostSummary> {
    let range = view_range(config.view, &costs.range())?;
    let in_view: Vec<_> = costs
        .lines()
        .iter()
        .filter(|l| range.contains(l.day))
        .cloned()
        .collect();
    let view = Costs::new(range, costs.currency(), in_view)?;
    let spike = match &config.spike {
        Some(rule) => rule.judge(&costs.by_day()?)?,
        None => None,
    };
    Ok(CostSummary {
        view: config.view,
        range,
        total: view.total()?,
        services: service_shares(&view, &config.expected)?,
        daily: view.by_day()?,
        projection: match config.view {
            CostView::Monthly => project_month(costs, costs.range().last())?,
            _ => None,
        },
        spike,
        budget: None,
    })
}

fn find_budget(budgets: Vec<Budget>, name: &str) -> Result<Budget> {
    let names: Vec<String> = budgets.iter().map(|b| b.display_name.clone()).collect();
    budgets
        .into_iter()
        .find(|b| b.display_name == name || b.id == name)
        .ok_or_else(|| {
            Error::new(
                "ops-core",
                "cost_review",
                ErrorKind::NotFound {
                    resource: format!("budget {name:?} (budgets: {})", names.join(", ")),
                },
            )
        })
}

fn spike_notification(target: &str, spike: &CostSpike, s: &CostSummary) -> Notification {
    let mut n = Notification::new(
        spike.severity,
        format!(
            "{target}: cost on {} was {} ({})",
            spike.day, spike.cost, spike.rule
        ),
    )
    .body(s.to_markdown())
    .field("cost", spike.cost.to_string())
    .field("limit", spike.limit.to_string())
    .dedup_key(format!("cost-spike/{target}/{}", spike.day));
    if let Some(top) = s.services.first() {
        n = n.field(
            "largest service",
            format!("{} ({})", top.service, top.amount),
        );
    }
    n
}

impl super::Procedure for CostReview {
    type Summary = CostSummary;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<CostSummary> {
        let mut s: CostSummary = report.output(SUMMARY)?;
        s.budget = report.output(BUDGET);
        if let (Some(b), Some(Some(updated))) = (
            s.budget.as_mut(),
            report.output::<Option<Budget>>(UPDATE_BUDGET),
        ) {
            b.budget = updated;
        }
        Some(s)
    }
}
