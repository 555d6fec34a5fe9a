//! The billing export in simulated BigQuery (`jobs.query`, `jobs.getQueryResults`) and the
//! Cloud Billing Budget API v1.
//!
//! Export tables hold usage lines as the standard export does: many small `FLOAT64` costs a
//! day per service, each with its credits. A query is not parsed as SQL: the simulator checks
//! the parts the client must get right (standard SQL, named parameters of the right types, the
//! table in backticks) and answers what the cost query asks for, summed as `NUMERIC`. Jobs can
//! stay running for a number of looks, queries can be throttled the way BigQuery throttles
//! (403 with `rateLimitExceeded` or `quotaExceeded`), and a `requestId` seen before answers
//! the same job.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ops_core::money::{Currency, Money};
use serde_json::{Value, json};

use super::SimState;
use super::http::{Reply, google_error};

/// One usage line of an export table.
#[derive(Debug, Clone)]
pub(super) struct UsageLine {
    pub project: String,
    pub day: NaiveDate,
    pub service: String,
    pub currency: String,
    pub cost: String,
    pub credits: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct SimJob {
    rows: Vec<Value>,
    looks_left: u32,
}

#[derive(Debug, Clone)]
pub(super) struct SimBudget {
    pub display_name: String,
    pub currency: String,
    pub units: i64,
    pub nanos: i32,
    pub etag: u64,
}

/// The billing part of the simulator's state.
#[derive(Debug, Default)]
pub(super) struct Billing {
    pub tables: BTreeMap<String, Vec<UsageLine>>,
    pub jobs: BTreeMap<String, SimJob>,
    pub request_ids: BTreeMap<String, String>,
    /// The next query's job is still running for this many looks.
    pub pending_looks: u32,
    /// The next this many queries answer 403 rateLimitExceeded.
    pub throttled: u32,
    /// Every query answers 403 quotaExceeded.
    pub quota_spent: bool,
    /// Budgets by name (`billingAccounts/A/budgets/B`).
    pub budgets: BTreeMap<String, SimBudget>,
    pub next_id: u64,
}

fn bigquery_error(status: u16, name: &str, reason: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {
            "code": status, "message": message, "status": name,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }}),
    )
}

fn invalid_query(message: &str) -> Reply {
    bigquery_error(400, "INVALID_ARGUMENT", "invalidQuery", message)
}

fn param<'a>(body: &'a Value, name: &str, kind: &str) -> Result<&'a str, Reply> {
    let p = body["queryParameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .ok_or_else(|| invalid_query(&format!("Query parameter '{name}' not found")))?;
    if p["parameterType"]["type"] != kind {
        return Err(invalid_query(&format!(
            "Query parameter '{name}' must be of type {kind}"
        )));
    }
    p["parameterValue"]["value"]
        .as_str()
        .ok_or_else(|| invalid_query(&format!("Query parameter '{name}' has no value")))
}

fn schema() -> Value {
    let field = |name: &str, kind: &str| json!({"name": name, "type": kind, "mode": "NULLABLE"});
    json!({"fields": [
        field("day", "DATE"), field("service", "STRING"), field("currency", "STRING"),
        field("cost", "NUMERIC"), field("credits", "NUMERIC"),
    ]})
}

impl SimState {
    /// The rows the cost query gives, or the error BigQuery would answer.
    fn run_cost_query(&self, body: &Value) -> Result<Vec<Value>, Reply> {
        let sql = body["query"].as_str().unwrap_or("");
        if body["useLegacySql"] != false {
            return Err(invalid_query(
                "Query parameters cannot be used in legacy SQL",
            ));
        }
        if body["parameterMode"] != "NAMED" {
            return Err(invalid_query("Named parameters need parameterMode NAMED"));
        }
        let table = sql
            .split_once("FROM `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(t, _)| t)
            .ok_or_else(|| invalid_query("Syntax error: expected a table in backticks"))?;
        for needed in ["@project", "@first", "@last", "UNNEST(credits)", "NUMERIC"] {
            if !sql.contains(needed) {
                return Err(invalid_query(&format!("the cost query lacks {needed}")));
            }
        }
        let project = param(body, "project", "STRING")?;
        let date = |name: &str| -> Result<NaiveDate, Reply> {
            let text = param(body, name, "DATE")?;
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| invalid_query(&format!("Invalid DATE literal: {text}")))
        };
        let (first, last) = (date("first")?, date("last")?);
        let Some(lines) = self.billing.tables.get(table) else {
            let (p, rest) = table.split_once('.').unwrap_or((table, ""));
            return Err(bigquery_error(
                404,
                "NOT_FOUND",
                "notFound",
                &format!("Not found: Table {p}:{rest} was not found in location US"),
            ));
        };
        // (day, service, currency) → (cost, credits), summed as NUMERIC.
        let mut sums: BTreeMap<(NaiveDate, String, String), (Money, Money)> = BTreeMap::new();
        for l in lines
            .iter()
            .filter(|l| l.project == project && first <= l.day && l.day <= last)
        {
            let cur = Currency::parse(&l.currency).map_err(|e| invalid_query(&e.to_string()))?;
            let numeric = |t: &str| Money::parse(cur, t).map_err(|e| invalid_query(&e.to_string()));
            let entry = sums
                .entry((l.day, l.service.clone(), l.currency.clone()))
                .or_insert((Money::zero(cur), Money::zero(cur)));
            let add =
                |a: Money, b: Money| a.checked_add(&b).map_err(|e| invalid_query(&e.to_string()));
            entry.0 = add(entry.0, numeric(&l.cost)?)?;
            for c in &l.credits {
                entry.1 = add(entry.1, numeric(c)?)?;
            }
        }
        Ok(sums
            .into_iter()
            .map(|((day, service, currency), (cost, credits))| {
                json!({"f": [
                    {"v": day.to_string()}, {"v": service}, {"v": currency},
                    {"v": cost.amount_text()}, {"v": credits.amount_text()},
                ]})
            })
            .collect())
    }

    fn job_reference(&self, id: &str) -> Value {
        json!({"projectId": self.project, "jobId": id, "location": "US"})
    }

    fn results_page(
        &self,
        id: &str,
        job: &SimJob,
        offset: usize,
        size: usize,
        kind: &str,
    ) -> Value {
        let end = offset.saturating_add(size.max(1)).min(job.rows.len());
        let page: Vec<Value> = job
            .rows
            .get(offset..end)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        let mut reply = json!({
            "kind": kind,
            "schema": schema(),
            "jobReference": self.job_reference(id),
            "totalRows": job.rows.len().to_string(),
            "rows": page,
            "jobComplete": true,
            "totalBytesProcessed": "1048576",
            "cacheHit": false,
        });
        if end < job.rows.len() {
            reply["pageToken"] = json!(format!("page-{end}"));
        }
        if kind == "bigquery#getQueryResultsResponse" {
            reply["etag"] = json!(format!("\"{id}-{offset}\""));
        }
        reply
    }

    /// `POST bigquery/v2/projects/{p}/queries` and `GET …/queries/{jobId}`.
    pub(super) fn bigquery_route(
        &mut self,
        method: &str,
        rest: &[&str],
        query: &BTreeMap<String, String>,
        body: &Value,
    ) -> Reply {
        let size = |v: Option<u64>| v.map_or(1000, |n| n.clamp(1, 100_000) as usize);
        match (method, rest) {
            ("POST", []) => {
                if let Some(id) = body["requestId"]
                    .as_str()
                    .and_then(|r| self.billing.request_ids.get(r))
                    .cloned()
                    && let Some(job) = self.billing.jobs.get(&id)
                {
                    let page = self.results_page(
                        &id,
                        job,
                        0,
                        size(body["maxResults"].as_u64()),
                        "bigquery#queryResponse",
                    );
                    return Reply::json(200, page);
                }
                if self.billing.quota_spent {
                    return bigquery_error(
                        403,
                        "PERMISSION_DENIED",
                        "quotaExceeded",
                        "Quota exceeded: Your project exceeded quota for free query bytes scanned.",
                    );
                }
                if self.billing.throttled > 0 {
                    self.billing.throttled -= 1;
                    return bigquery_error(
                        403,
                        "PERMISSION_DENIED",
                        "rateLimitExceeded",
                        "Exceeded rate limits: too many concurrent queries for this project_and_region.",
                    );
                }
                let rows = match self.run_cost_query(body) {
                    Ok(rows) => rows,
                    Err(reply) => return reply,
                };
                self.billing.next_id += 1;
                let id = format!("job_sim{:08}", self.billing.next_id);
                let job = SimJob {
                    rows,
                    looks_left: std::mem::take(&mut self.billing.pending_looks),
                };
                if let Some(r) = body["requestId"].as_str() {
                    self.billing.request_ids.insert(r.to_string(), id.clone());
                }
                let reply = if job.looks_left > 0 {
                    json!({"kind": "bigquery#queryResponse", "jobReference": self.job_reference(&id), "jobComplete": false})
                } else {
                    self.results_page(
                        &id,
                        &job,
                        0,
                        size(body["maxResults"].as_u64()),
                        "bigquery#queryResponse",
                    )
                };
                self.billing.jobs.insert(id, job);
                Reply::json(200, reply)
            }
            ("GET", [id]) => {
                let id = id.to_string();
                let Some(job) = self.billing.jobs.get_mut(&id) else {
                    return bigquery_error(
                        404,
                        "NOT_FOUND",
                        "notFound",
                        &format!("Not found: Job {}:US.{id}", self.project),
                    );
                };
                if job.looks_left > 0 {
                    job.looks_left -= 1;
                    let reply = json!({"kind": "bigquery#getQueryResultsResponse",
                        "etag": format!("\"{id}-running\""),
                        "jobReference": self.job_reference(&id), "jobComplete": false});
                    return Reply::json(200, reply);
                }
                let job = job.clone();
                let offset = match query.get("pageToken") {
                    None => 0,
                    Some(t) => match t.strip_prefix("page-").and_then(|n| n.parse().ok()) {
                        Some(n) => n,
                        None => {
                            return bigquery_error(
                                400,
                                "INVALID_ARGUMENT",
                                "invalid",
                                "Invalid page token.",
                            );
                        }
                    },
                };
                let page_size = size(query.get("maxResults").and_then(|m| m.parse().ok()));
                Reply::json(
                    200,
                    self.results_page(
                        &id,
                        &job,
                        offset,
                        page_size,
                        "bigquery#getQueryResultsResponse",
                    ),
                )
            }
            _ => google_error(404, "NOT_FOUND", "not simulated"),
        }
    }

    fn render_budget(name: &str, b: &SimBudget) -> Value {
        let mut money = json!({"currencyCode": b.currency, "units": b.units.to_string()});
        // proto3 JSON leaves out a zero.
        if b.nanos != 0 {
            money["nanos"] = json!(b.nanos);
        }
        json!({
            "name": name,
            "displayName": b.display_name,
            "budgetFilter": {"projects": ["projects/123456789012"], "creditTypesTreatment": "INCLUDE_ALL_CREDITS", "calendarPeriod": "MONTH"},
            "amount": {"specifiedAmount": money},
            "thresholdRules": [
                {"thresholdPercent": 0.5, "spendBasis": "CURRENT_SPEND"},
                {"thresholdPercent": 0.9, "spendBasis": "CURRENT_SPEND"},
                {"thresholdPercent": 1, "spendBasis": "FORECASTED_SPEND"},
            ],
            "notificationsRule": {"schemaVersion": "1.0"},
            "etag": format!("{:016x}", b.etag),
            "ownershipScope": "ALL_USERS",
        })
    }

    /// `v1/billingAccounts/{a}/budgets[/{b}]`.
    pub(super) fn budgets_route(
        &mut self,
        method: &str,
        account: &str,
        rest: &[&str],
        query: &BTreeMap<String, String>,
        body: &Value,
    ) -> Reply {
        let prefix = format!("billingAccounts/{account}/budgets/");
        match (method, rest) {
            ("GET", []) => {
                let all: Vec<Value> = self
                    .billing
                    .budgets
                    .iter()
                    .filter(|(n, _)| n.starts_with(&prefix))
                    .map(|(n, b)| Self::render_budget(n, b))
                    .collect();
                let size = query
                    .get("pageSize")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(50usize)
                    .clamp(1, 100);
                let offset: usize = query
                    .get("pageToken")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let end = offset.saturating_add(size).min(all.len());
                let mut reply = json!({"budgets": all.get(offset..end).map(<[Value]>::to_vec).unwrap_or_default()});
                if end < all.len() {
                    reply["nextPageToken"] = json!(end.to_string());
                }
                Reply::json(200, reply)
            }
            (_, [id]) => {
                let name = format!("{prefix}{id}");
                let Some(b) = self.billing.budgets.get(&name).cloned() else {
                    return google_error(404, "NOT_FOUND", &format!("Budget {name} not found."));
                };
                match method {
                    "GET" => Reply::json(200, Self::render_budget(&name, &b)),
                    "PATCH" => {
                        let mask = query.get("updateMask").map(String::as_str).unwrap_or("");
                        if !mask
                            .split(',')
                            .any(|m| m == "amount" || m.starts_with("amount."))
                        {
                            return google_error(
                                400,
                                "INVALID_ARGUMENT",
                                "updateMask must name the amount.",
                            );
                        }
                        if let Some(etag) = body["etag"].as_str()
                            && etag != format!("{:016x}", b.etag)
                        {
                            return google_error(
                                409,
                                "ABORTED",
                                "The budget was modified since it was read; read it again.",
                            );
                        }
                        let m = &body["amount"]["specifiedAmount"];
                        let units = m["units"].as_str().and_then(|u| u.parse::<i64>().ok());
                        let nanos = m["nanos"].as_i64().unwrap_or(0);
                        let (Some(units), Ok(nanos)) = (units, i32::try_from(nanos)) else {
                            return google_error(
                                400,
                                "INVALID_ARGUMENT",
                                "Invalid value at 'budget.amount.specified_amount'.",
                            );
                        };
                        if m["currencyCode"] != b.currency.as_str() {
                            return google_error(
                                400,
                                "INVALID_ARGUMENT",
                                "The budget's currency must be the billing account's currency.",
                            );
                        }
                        let stored = self.billing.budgets.entry(name.clone()).or_insert(b);
                        stored.units = units;
                        stored.nanos = nanos;
                        stored.etag += 1;
                        let reply = Self::render_budget(&name, stored);
                        self.ledger.mutated();
                        Reply::json(200, reply)
                    }
                    _ => google_error(404, "NOT_FOUND", "not simulated"),
                }
            }
            _ => google_error(404, "NOT_FOUND", "not simulated"),
        }
    }
}
