//! BigQuery `jobs.query` as the cost source needs it: one parameterised standard-SQL query,
//! a job still running polled with `jobs.getQueryResults`, and every page of its rows.

use std::collections::BTreeSet;
use std::time::Duration;

use ops_core::http::SendOptions;
use ops_core::poll::{Every, poll_until};
use ops_core::retry::Idempotency;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::GcpClient;

/// The most rows one query returns before it is refused (400 days × 500 services).
pub const MAX_ROWS: usize = 200_000;

/// How long BigQuery holds each request open waiting for the job (its `timeoutMs`).
const SERVER_WAIT_MS: u32 = 10_000;

/// A named query parameter: `@name` in the SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParam {
    /// The name, without `@`.
    pub name: &'static str,
    /// Its standard SQL type (`STRING`, `DATE`).
    pub kind: &'static str,
    /// The value as text.
    pub value: String,
}

/// The rows of a finished query, by column name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryRows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Each row's cells as sent: a string for a scalar, `null`, an object for a record, an
    /// array for a repeated field.
    pub rows: Vec<Vec<Value>>,
}

impl QueryRows {
    /// The scalar in row `row`, column `column`: `None` for NULL; a record, an array or a
    /// missing cell is a decode error (the caller's query selects scalars).
    pub fn text(&self, row: usize, column: usize) -> Result<Option<&str>> {
        match self.rows.get(row).and_then(|r| r.get(column)) {
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(decode(format!(
                "column {:?} holds {}, not a scalar",
                self.columns.get(column).map_or("?", String::as_str),
                other.to_string().chars().take(60).collect::<String>()
            ))),
            None => Err(decode(format!("row {row} has no column {column}"))),
        }
    }

    /// The position of column `name`; a missing column is a decode error.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            decode(format!(
                "the query's result has no column {name:?} (columns: {})",
                self.columns.join(", ")
            ))
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobReference {
    #[serde(default)]
    job_id: String,
    #[serde(default)]
    location: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Field {
    #[serde(default)]
    name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Schema {
    #[serde(default)]
    fields: Vec<Field>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Row {
    #[serde(default)]
    f: Vec<Cell>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Cell {
    #[serde(default)]
    v: Value,
}

/// The parts of `QueryResponse` and `GetQueryResultsResponse` read (they agree on these).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    #[serde(default)]
    job_complete: Option<bool>,
    #[serde(default)]
    job_reference: Option<JobReference>,
    #[serde(default)]
    schema: Option<Schema>,
    #[serde(default)]
    rows: Vec<Row>,
    #[serde(default)]
    page_token: Option<String>,
    #[serde(default)]
    total_rows: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct QueryRequest<'a> {
    query: &'a str,
    use_legacy_sql: bool,
    parameter_mode: &'static str,
    query_parameters: Vec<Value>,
    max_results: u32,
    timeout_ms: u32,
    request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a str>,
}

fn decode(detail: String) -> Error {
    Error::new("gcp", "bigquery_query", ErrorKind::Decode { detail })
}

/// A reply that cannot be the whole result: an error, never rows that look complete.
fn incomplete(detail: &str) -> Error {
    Error::new(
        "gcp",
        "bigquery_query",
        ErrorKind::Provider {
            status: 200,
            code: Some("incomplete_result".into()),
            body_excerpt: detail.to_string(),
        },
    )
}

/// How a query runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOptions {
    /// Rows per page (`maxResults`).
    pub page_size: u32,
    /// How long a running job is waited for.
    pub deadline: Duration,
    /// The dataset's location (`US`, `EU`, `europe-west1`), when not the default.
    pub location: Option<String>,
}

/// Runs `sql` with `params` in `project` and returns every row.
///
/// The request carries a `requestId`, so BigQuery runs one job however often a lost reply makes
/// it retry. A job not finished in the first reply (`jobComplete: false`) is polled with
/// `jobs.getQueryResults` until it is, or until `options.deadline`; pages follow
/// `pageToken`. More than [`MAX_ROWS`] rows is an error rather than an unbounded read.
pub async fn query(
    client: &GcpClient,
    project: &str,
    sql: &str,
    params: &[QueryParam],
    options: &QueryOptions,
) -> Result<QueryRows> {
    let url = client.url(
        &client.config().endpoints.bigquery,
        &format!("bigquery/v2/projects/{project}/queries"),
    )?;
    let body = QueryRequest {
        query: sql,
        use_legacy_sql: false,
        parameter_mode: "NAMED",
        query_parameters: params
            .iter()
            .map(|p| {
                json!({ "name": p.name, "parameterType": { "type": p.kind },
                        "parameterValue": { "value": p.value } })
            })
            .collect(),
        max_results: options.page_size,
        timeout_ms: SERVER_WAIT_MS,
        request_id: format!("ops-{:032x}", fastrand::u128(..)),
        location: options.location.as_deref(),
    };
    let send = SendOptions {
        idempotency: Some(Idempotency::Idempotent),
        ..SendOptions::default()
    };
    let first: Reply = client
        .call("bigquery_query", Method::POST, url, Some(&body), &send)
        .await?;
    // An empty id names no job (a URL with it would ask for the job list).
    let job = first
        .job_reference
        .as_ref()
        .filter(|j| !j.job_id.trim().is_empty())
        .map(|j| JobRef {
            id: j.job_id.clone(),
            location: j.location.clone().or(options.location.clone()),
        });
    let first = if first.job_complete == Some(true) {
        first
    } else {
        let job = job
            .clone()
            .ok_or_else(|| incomplete("a job not complete, and no job named to wait for"))?;
        wait_for(client, project, &job, options).await?
    };
    collect(client, project, job.as_ref(), first, options).await
}

#[derive(Debug, Clone)]
struct JobRef {
    id: String,
    location: Option<String>,
}

async fn results(
    client: &GcpClient,
    project: &str,
    job: &JobRef,
    page_token: Option<&str>,
    page_size: u32,
) -> Result<Reply> {
    let mut url = client.url(
        &client.config().endpoints.bigquery,
        &format!("bigquery/v2/projects/{project}/queries/{}", job.id),
    )?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("maxResults", &page_size.to_string());
        q.append_pair("timeoutMs", &SERVER_WAIT_MS.to_string());
        if let Some(l) = &job.location {
            q.append_pair("location", l);
        }
        if let Some(t) = page_token {
            q.append_pair("pageToken", t);
        }
    }
    client.get("bigquery_get_query_results", url, &job.id).await
}

async fn wait_for(
    client: &GcpClient,
    project: &str,
    job: &JobRef,
    options: &QueryOptions,
) -> Result<Reply> {
    let first = results(client, project, job, None, options.page_size).await?;
    poll_until(
        client.clock().as_ref(),
        options.deadline,
        Every::growing(Duration::from_secs(1), Duration::from_secs(10)),
        first,
        |r: &Reply| Ok((r.job_complete == Some(true)).then(|| r.clone())),
        |_| results(client, project, job, None, options.page_size),
    )
    .await?
    .or_timeout("gcp", "bigquery_query", options.deadline)
}

async fn collect(
    client: &GcpClient,
    project: &str,
    job: Option<&JobRef>,
    first: Reply,
    options: &QueryOptions,
) -> Result<QueryRows> {
    let columns: Vec<String> = first
        .schema
        .as_ref()
        .map(|s| s.fields.iter().map(|f| f.name.clone()).collect())
        .unwrap_or_default();
    // A count that does not parse is not checked (the rows still are, by the caller).
    let total: Option<u64> = first.total_rows.as_deref().and_then(|t| t.parse().ok());
    let mut out = QueryRows {
        columns,
        rows: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    let mut page = first;
    loop {
        for row in std::mem::take(&mut page.rows) {
            out.rows.push(row.f.into_iter().map(|c| c.v).collect());
            if out.rows.len() > MAX_ROWS {
                return Err(Error::invalid_input(
                    "gcp",
                    "bigquery_query",
                    "days",
                    format!("more than {MAX_ROWS} rows: ask for fewer days"),
                ));
            }
        }
        let Some(token) = page.page_token.take().filter(|t| !t.is_empty()) else {
            break;
        };
        if !seen.insert(token.clone()) {
            return Err(decode("BigQuery sent the same page token twice".into()));
        }
        let job =
            job.ok_or_else(|| incomplete("more pages, and no job named to read them from"))?;
        page = results(client, project, job, Some(&token), options.page_size).await?;
    }
    if let Some(total) = total
        && total != out.rows.len() as u64
    {
        // Rows lost between pages: never a result that looks whole.
        return Err(incomplete(&format!(
            "totalRows says {total}, the pages held {}",
            out.rows.len()
        )));
    }
    Ok(out)
}
