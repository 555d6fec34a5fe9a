//! Cost from the Cloud Billing export in BigQuery, and budgets from the Cloud Billing Budget
//! API: a [`CostSource`] for the cost review.
//!
//! The standard usage cost export writes one row per usage line into
//! `{project}.{dataset}.gcp_billing_export_v1_{account}`. The query sums `cost` and the
//! `credits` of each line as `NUMERIC` (exact to 10⁻⁹) per UTC day, service and currency, for one
//! project. Cloud Billing's own reports show days in US Pacific time, so a day's figure here
//! can differ from the console's by the hours between.
//!
//! ```no_run
//! # async fn demo(client: ops_gcp::GcpClient) -> ops_core::Result<()> {
//! use ops_core::contracts::{CostSource, DayRange};
//! use ops_gcp::billing::{BillingExport, BillingExportConfig};
//! let config = BillingExportConfig::new("billing-admin.billing.gcp_billing_export_v1_0123AB_4567CD_89EF01")
//!     .billing_account("0123AB-4567CD-89EF01");
//! let bill = BillingExport::new(client, config)?;
//! use ops_core::clock::{Clock, SystemClock};
//! let yesterday = SystemClock.now().date_naive().pred_opt().unwrap();
//! let week = bill.costs(&DayRange::ending(yesterday, 7)?).await?;
//! for (service, cost) in week.by_service()? {
//!     println!("{service}: {cost}");
//! }
//! # Ok(()) }
//! ```

pub mod bigquery;
pub mod budgets;

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use ops_core::contracts::{Budget, CostLine, CostSource, Costs, DayRange};
use ops_core::money::{Currency, Money};
use ops_core::{Error, ErrorKind, Result};

use crate::GcpClient;
use bigquery::{QueryOptions, QueryParam, QueryRows, query};

/// Where the export is and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingExportConfig {
    /// The export table: `project.dataset.table`.
    pub table: String,
    /// The project whose costs are read (default: the client's project).
    pub project: Option<String>,
    /// The dataset's location (`US`, `EU`, `europe-west1`) when it is not BigQuery's default.
    pub location: Option<String>,
    /// The billing account whose budgets are read (`0123AB-4567CD-89EF01`).
    pub billing_account: Option<String>,
    /// The currency an answer without rows is in (default USD); rows carry their own.
    pub currency: Currency,
    /// Rows per page (default 1000).
    pub page_size: u32,
    /// How long a query still running is waited for (default 5 minutes).
    pub query_deadline: Duration,
}

impl BillingExportConfig {
    /// The export in `table` (`project.dataset.table`), with the defaults.
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            project: None,
            location: None,
            billing_account: None,
            currency: Currency::USD,
            page_size: 1000,
            query_deadline: Duration::from_secs(300),
        }
    }

    /// With budgets read from `account`.
    pub fn billing_account(mut self, account: impl Into<String>) -> Self {
        self.billing_account = Some(account.into());
        self
    }

    /// Reads `project`'s costs (not the client's project).
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// The dataset's location.
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }
}

/// A BigQuery table name that can go into the query text: BigQuery takes no parameter for a
/// table, so only names of a strict shape are accepted (nothing that could close the quoting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTable {
    project: String,
    dataset: String,
    table: String,
}

impl ExportTable {
    /// `project.dataset.table`: a project id (lowercase letters, digits, hyphens; 6 to 30),
    /// a dataset and a table of letters, digits and underscores (1 to 1024).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid_input(
                "gcp",
                "billing_export",
                "table",
                format!("{text:?}: {why} (write project.dataset.table)"),
            )
        };
        let parts: Vec<&str> = text.trim().split('.').collect();
        let [project, dataset, table] = parts.as_slice() else {
            return Err(bad("not three names separated by dots"));
        };
        let project_ok = (6..=30).contains(&project.len())
            && project.as_bytes()[0].is_ascii_lowercase()
            && project
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !project_ok {
            return Err(bad("not a project id"));
        }
        let word = |s: &str| {
            (1..=1024).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        if !word(dataset) || !word(table) {
            return Err(bad(
                "a dataset or table name with characters BigQuery does not allow",
            ));
        }
        Ok(Self {
            project: project.to_string(),
            dataset: dataset.to_string(),
            table: table.to_string(),
        })
    }

    /// `project.dataset.table`.
    pub fn path(&self) -> String {
        format!("{}.{}.{}", self.project, self.dataset, self.table)
    }
}

/// The query: net of credits, exact, per UTC day, service and currency, for one project.
fn sql(table: &ExportTable) -> String {
    format!(
        "SELECT DATE(usage_start_time) AS day, service.description AS service, currency, \
         SUM(CAST(cost AS NUMERIC)) AS cost, \
         SUM(IFNULL((SELECT SUM(CAST(c.amount AS NUMERIC)) FROM UNNEST(credits) AS c), 0)) AS credits \
         FROM `{}` \
         WHERE project.id = @project AND DATE(usage_start_time) BETWEEN @first AND @last \
         GROUP BY day, service, currency ORDER BY day, service",
        table.path()
    )
}

/// Cost from the billing export, budgets from the Budget API.
#[derive(Debug, Clone)]
pub struct BillingExport {
    client: GcpClient,
    config: BillingExportConfig,
    table: ExportTable,
    project: String,
    name: String,
}

impl BillingExport {
    /// Reads `config.table` with `client`; jobs run in the client's project.
    pub fn new(client: GcpClient, config: BillingExportConfig) -> Result<Self> {
        let table = ExportTable::parse(&config.table)?;
        let project = config
            .project
            .clone()
            .unwrap_or_else(|| client.config().project.clone());
        ops_core::contracts::validate_name("gcp", "billing_export", "project", &project)?;
        if let Some(a) = &config.billing_account {
            budgets::validate_account(a)?;
        }
        if !(1..=100_000).contains(&config.page_size) {
            return Err(Error::invalid_input(
                "gcp",
                "billing_export",
                "page_size",
                "must be 1 to 100000",
            ));
        }
        Ok(Self {
            name: format!("billing-export:{}", table.path()),
            client,
            config,
            table,
            project,
        })
    }

    fn missing_export(&self, e: Error) -> Error {
        match e.kind() {
            ErrorKind::NotFound { resource } => Error::new(
                "gcp",
                "billing_costs",
                ErrorKind::NotFound {
                    resource: format!(
                        "billing export table {} ({resource}). Turn the export on in the Cloud \
                         console: Billing → Billing export → BigQuery export → Standard usage \
                         cost → Edit settings, project {} and dataset {}; the table appears \
                         within a day and holds costs from then on",
                        self.table.path(),
                        self.table.project,
                        self.table.dataset
                    ),
                },
            ),
            _ => e,
        }
    }

    fn account(&self, operation: &'static str) -> Result<&str> {
        self.config.billing_account.as_deref().ok_or_else(|| {
            Error::invalid_input(
                "gcp",
                operation,
                "billing_account",
                "set BillingExportConfig::billing_account to read budgets",
            )
        })
    }
}

/// The cost lines of a query's rows, in one currency.
fn lines_of(rows: &QueryRows, fallback: Currency) -> Result<(Currency, Vec<CostLine>)> {
    let [day, service, currency, cost, credits] = [
        rows.column("day")?,
        rows.column("service")?,
        rows.column("currency")?,
        rows.column("cost")?,
        rows.column("credits")?,
    ];
    let decode = |detail: String| Error::new("gcp", "billing_costs", ErrorKind::Decode { detail });
    let mut seen: Option<Currency> = None;
    let mut lines = Vec::with_capacity(rows.rows.len());
    for i in 0..rows.rows.len() {
        let text = |c: usize| rows.text(i, c).map(|t| t.map(str::to_owned));
        let code = text(currency)?.ok_or_else(|| decode("a row without a currency".into()))?;
        let cur = Currency::parse(&code)?;
        match seen {
            None => seen = Some(cur),
            Some(c) if c != cur => {
                return Err(decode(format!(
                    "the export holds costs in {c} and {cur}: the billing account changed \
                     currency; ask for days on one side of the change"
                )));
            }
            Some(_) => {}
        }
        let day_text = text(day)?.ok_or_else(|| decode("a row without a day".into()))?;
        let day = NaiveDate::parse_from_str(&day_text, "%Y-%m-%d")
            .map_err(|e| decode(format!("day {day_text:?}: {e}")))?;
        let amount = |c: usize| match text(c)? {
            Some(t) => Money::parse(cur, &t),
            None => Ok(Money::zero(cur)),
        };
        lines.push(CostLine {
            day,
            service: text(service)?.unwrap_or_else(|| "(no service)".into()),
            cost: amount(cost)?,
            credits: amount(credits)?,
        });
    }
    Ok((seen.unwrap_or(fallback), lines))
}

#[async_trait]
impl CostSource for BillingExport {
    fn name(&self) -> &str {
        &self.name
    }

    async fn costs(&self, days: &DayRange) -> Result<Costs> {
        let params = [
            QueryParam {
                name: "project",
                kind: "STRING",
                value: self.project.clone(),
            },
            QueryParam {
                name: "first",
                kind: "DATE",
                value: days.first().to_string(),
            },
            QueryParam {
                name: "last",
                kind: "DATE",
                value: days.last().to_string(),
            },
        ];
        let options = QueryOptions {
            page_size: self.config.page_size,
            deadline: self.config.query_deadline,
            location: self.config.location.clone(),
        };
        let job_project = self.client.config().project.clone();
        let rows = query(
            &self.client,
            &job_project,
            &sql(&self.table),
            &params,
            &options,
        )
        .await
        .map_err(|e| self.missing_export(e))?;
        let (currency, lines) = lines_of(&rows, self.config.currency)?;
        // A row outside the days asked for is the reply's fault, not the caller's.
        Costs::new(*days, currency, lines).map_err(|e| {
            Error::new(
                "gcp",
                "billing_costs",
                ErrorKind::Decode {
                    detail: format!("the export's rows do not fit the days asked for: {e}"),
                },
            )
        })
    }

    async fn budgets(&self) -> Result<Vec<Budget>> {
        budgets::list(&self.client, self.account("list_budgets")?).await
    }

    async fn set_budget_amount(&self, budget: &Budget, amount: &Money) -> Result<Budget> {
        self.account("update_budget")?;
        budgets::set_amount(&self.client, budget, amount).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_plain_table_names_reach_the_query_text() {
        let t =
            ExportTable::parse("billing-admin.billing.gcp_billing_export_v1_0123AB_4567CD_89EF01")
                .unwrap();
        assert!(
            sql(&t).contains(
                "FROM `billing-admin.billing.gcp_billing_export_v1_0123AB_4567CD_89EF01`"
            )
        );
        for bad in [
            "dataset.table",
            "p.d.t.x",
            "Project.d.t",
            "billing-admin.d.t` WHERE 1=1 --",
            "billing-admin.d`.t",
            "billing-admin..t",
            "example.com:proj.d.t",
        ] {
            assert!(ExportTable::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn no_accepted_table_can_close_the_quoting(text in ".{0,80}") {
            if let Ok(t) = ExportTable::parse(&text) {
                let path = t.path();
                prop_assert!(!path.contains('`') && !path.contains(' ') && !path.contains('\\'));
                prop_assert!(path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            }
        }
    }
}
