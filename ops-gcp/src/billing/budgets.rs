//! Cloud Billing Budget API v1: a billing account's budgets read, and one's amount updated
//! with its etag.

use ops_core::contracts::Budget;
use ops_core::money::Money;
use ops_core::{Error, Result};
use reqwest::Method;
use serde::Deserialize;

use crate::GcpClient;
use crate::client::collect_pages;

/// The most budgets read (a billing account may have 50,000; a review names one).
pub const BUDGET_CAP: usize = 5_000;

/// `google.type.Money`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GoogleMoney {
    #[serde(default)]
    currency_code: String,
    /// An int64: a decimal string on the wire.
    #[serde(default, deserialize_with = "ops_core::http::lenient::int64_text")]
    units: i64,
    #[serde(default)]
    nanos: i32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BudgetAmount {
    #[serde(default)]
    specified_amount: Option<GoogleMoney>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThresholdRule {
    #[serde(default)]
    threshold_percent: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireBudget {
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    amount: Option<BudgetAmount>,
    #[serde(default)]
    threshold_rules: Vec<ThresholdRule>,
    #[serde(default)]
    etag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListReply {
    #[serde(default)]
    budgets: Vec<WireBudget>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl WireBudget {
    fn into_budget(self) -> Result<Budget> {
        let amount = match self.amount.and_then(|a| a.specified_amount) {
            Some(m) => Some(Money::from_units_nanos(&m.currency_code, m.units, m.nanos)?),
            None => None,
        };
        Ok(Budget {
            id: self.name,
            display_name: self.display_name,
            amount,
            // A 1.0-based fraction on the wire (0.5 is 50 %).
            thresholds_percent: self
                .threshold_rules
                .iter()
                .map(|t| t.threshold_percent * 100.0)
                .collect(),
            etag: self.etag,
        })
    }
}

/// Checks a billing account id (`012345-6789AB-CDEF01`): letters, digits and hyphens.
pub fn validate_account(account: &str) -> Result<()> {
    let ok = !account.is_empty()
        && account.len() <= 64
        && account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "gcp",
            "budgets",
            "billing_account",
            format!("{account:?} is not a billing account id (012345-6789AB-CDEF01)"),
        ))
    }
}

/// The budgets of `account`.
pub async fn list(client: &GcpClient, account: &str) -> Result<Vec<Budget>> {
    validate_account(account)?;
    let base = client.url(
        &client.config().endpoints.billing_budgets,
        &format!("v1/billingAccounts/{account}/budgets"),
    )?;
    let wire = collect_pages(BUDGET_CAP, |token| {
        let mut url = base.clone();
        url.query_pairs_mut().append_pair("pageSize", "100");
        if let Some(t) = &token {
            url.query_pairs_mut().append_pair("pageToken", t);
        }
        async move {
            let page: ListReply = client.get("list_budgets", url, account).await?;
            Ok((page.budgets, page.next_page_token))
        }
    })
    .await?;
    wire.into_iter().map(WireBudget::into_budget).collect()
}

/// Sets `budget`'s specified amount to `amount`, guarded by the etag it was read with.
pub async fn set_amount(client: &GcpClient, budget: &Budget, amount: &Money) -> Result<Budget> {
    let name = &budget.id;
    let well_formed = name.starts_with("billingAccounts/")
        && name.split('/').count() == 4
        && name.split('/').nth(2) == Some("budgets");
    if !well_formed {
        return Err(Error::invalid_input(
            "gcp",
            "update_budget",
            "budget",
            format!("{name:?} is not billingAccounts/…/budgets/…"),
        ));
    }
    if let Some(current) = &budget.amount
        && current.currency() != amount.currency()
    {
        return Err(Error::invalid_input(
            "gcp",
            "update_budget",
            "amount",
            format!(
                "the budget is in {}, not {}",
                current.currency(),
                amount.currency()
            ),
        ));
    }
    if amount.nanos() <= 0 {
        return Err(Error::invalid_input(
            "gcp",
            "update_budget",
            "amount",
            "must be positive",
        ));
    }
    let (units, nanos) = amount.to_units_nanos()?;
    let mut url = client.url(
        &client.config().endpoints.billing_budgets,
        &format!("v1/{name}"),
    )?;
    url.query_pairs_mut()
        .append_pair("updateMask", "amount.specifiedAmount");
    let body = serde_json::json!({
        "amount": { "specifiedAmount": {
            "currencyCode": amount.currency().code(),
            "units": units.to_string(),
            "nanos": nanos,
        }},
        "etag": budget.etag,
    });
    let stored: WireBudget = client
        .call(
            "update_budget",
            Method::PATCH,
            url,
            Some(&body),
            &Default::default(),
        )
        .await?;
    // A budget changed since it was read answers 409 ABORTED: a `Conflict`.
    stored.into_budget()
}
