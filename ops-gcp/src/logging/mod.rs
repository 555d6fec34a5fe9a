//! Cloud Logging v2 `entries:list` behind [`LogSource`]: the seed runbooks'
//! `gcloud logging read 'resource.type=cloud_run_revision AND severity>=ERROR' --freshness=1h`.
//!
//! The filter is built from typed parts (see [`CloudLogging::filter_for`]), never from caller
//! text pasted into the query language: the search text is quoted and escaped.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use ops_core::Result;
use ops_core::contracts::{LogEntry, LogPage, LogQuery, LogSeverity, LogSource};
use ops_core::http::SendOptions;
use ops_core::retry::Idempotency;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::GcpClient;

/// The monitored-resource type of Cloud Run services' logs.
pub const CLOUD_RUN_REVISION: &str = "cloud_run_revision";

/// Log entries of one Cloud Run service (or any monitored resource).
///
/// ```
/// # fn f(client: ops_gcp::GcpClient) -> ops_core::Result<()> {
/// use chrono::{TimeZone, Utc};
/// use ops_core::contracts::{LogQuery, LogSeverity, TimeWindow};
/// let logs = ops_gcp::CloudLogging::new(client, "api")?;
/// let window = TimeWindow::new(
///     Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
///     Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
/// )?;
/// let q = LogQuery::new(window).min_severity(LogSeverity::Error);
/// assert_eq!(
///     logs.filter_for(&q),
///     "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"api\" AND \
///      timestamp>=\"2026-11-23T09:00:00Z\" AND timestamp<\"2026-11-23T10:00:00Z\" AND severity>=ERROR"
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CloudLogging {
    client: GcpClient,
    resource_type: String,
    service: Option<String>,
    name: String,
}

impl CloudLogging {
    /// Logs of the Cloud Run service `service` in the client's project.
    pub fn new(client: GcpClient, service: impl Into<String>) -> Result<Self> {
        let service = service.into();
        ops_core::contracts::validate_name("gcp", "cloud_logging", "service", &service)?;
        Ok(Self {
            name: format!("cloud-logging:{service}"),
            client,
            resource_type: CLOUD_RUN_REVISION.into(),
            service: Some(service),
        })
    }

    /// Logs of every resource of type `resource_type` (`gce_instance`, `cloudsql_database`, …).
    pub fn for_resource_type(client: GcpClient, resource_type: impl Into<String>) -> Result<Self> {
        let resource_type = resource_type.into();
        ops_core::contracts::validate_name(
            "gcp",
            "cloud_logging",
            "resource_type",
            &resource_type,
        )?;
        Ok(Self {
            name: format!("cloud-logging:{resource_type}"),
            client,
            resource_type,
            service: None,
        })
    }

    /// The Logging query language filter for `query`.
    pub fn filter_for(&self, query: &LogQuery) -> String {
        let mut parts = vec![format!("resource.type={}", quote(&self.resource_type))];
        if let Some(s) = &self.service {
            parts.push(format!("resource.labels.service_name={}", quote(s)));
        }
        parts.push(format!(
            "timestamp>={}",
            quote(&rfc3339(query.window.start))
        ));
        parts.push(format!("timestamp<{}", quote(&rfc3339(query.window.end))));
        if let Some(sev) = query.min_severity {
            parts.push(format!("severity>={}", severity_name(sev)));
        }
        if let Some(r) = &query.release {
            parts.push(format!("resource.labels.revision_name={}", quote(r)));
        }
        if let Some(text) = &query.contains {
            let q = quote(text);
            parts.push(format!("(textPayload:{q} OR jsonPayload.message:{q})"));
        }
        parts.join(" AND ")
    }
}

#[async_trait]
impl LogSource for CloudLogging {
    fn name(&self) -> &str {
        &self.name
    }

    async fn query_page(&self, query: &LogQuery) -> Result<LogPage> {
        query.validate()?;
        let cfg = self.client.config();
        let url = self.client.url(&cfg.endpoints.logging, "v2/entries:list")?;
        let mut body = json!({
            "resourceNames": [format!("projects/{}", cfg.project)],
            "filter": self.filter_for(query),
            "orderBy": "timestamp asc",
            "pageSize": query.page_size,
        });
        if let Some(t) = &query.page_token {
            body["pageToken"] = json!(t);
        }
        // A read, even though it is a POST: safe to retry.
        let options = SendOptions {
            idempotency: Some(Idempotency::Idempotent),
            resource: Some(format!("projects/{}/logs", cfg.project)),
            ..SendOptions::default()
        };
        let page: EntriesPage = self
            .client
            .call("list_log_entries", Method::POST, url, Some(&body), &options)
            .await?;
        Ok(LogPage {
            entries: page.entries.into_iter().map(entry_of).collect(),
            next_page_token: page.next_page_token.filter(|t| !t.is_empty()),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntriesPage {
    #[serde(default)]
    entries: Vec<RawEntry>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    receive_timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    text_payload: Option<String>,
    #[serde(default)]
    json_payload: Option<Value>,
    #[serde(default)]
    proto_payload: Option<Value>,
    #[serde(default)]
    http_request: Option<Value>,
    #[serde(default)]
    resource: Option<RawResource>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawResource {
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn entry_of(raw: RawEntry) -> LogEntry {
    let message = message_of(&raw);
    let severity = raw
        .severity
        .as_deref()
        .and_then(|s| serde_json::from_value(json!(s)).ok())
        .unwrap_or_default();
    LogEntry {
        timestamp: raw
            .timestamp
            .or(raw.receive_timestamp)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        severity,
        message,
        release: raw
            .resource
            .and_then(|r| r.labels.get("revision_name").cloned()),
        payload: raw.json_payload,
        labels: raw.labels,
    }
}

/// The human line of an entry: text payload, a JSON payload's `message`, an audit log's
/// status, or the request line of a request log.
fn message_of(raw: &RawEntry) -> String {
    if let Some(t) = &raw.text_payload {
        return t.clone();
    }
    if let Some(j) = &raw.json_payload {
        for key in ["message", "msg"] {
            if let Some(m) = j.get(key).and_then(Value::as_str) {
                return m.to_string();
            }
        }
        return j.to_string();
    }
    if let Some(m) = raw
        .proto_payload
        .as_ref()
        .and_then(|p| p.pointer("/status/message"))
        .and_then(Value::as_str)
    {
        return m.to_string();
    }
    if let Some(h) = &raw.http_request {
        let field = |k: &str| {
            h.get(k)
                .map(|v| v.as_str().map_or(v.to_string(), str::to_owned))
        };
        return format!(
            "{} {} {}",
            field("requestMethod").unwrap_or_default(),
            field("requestUrl").unwrap_or_default(),
            field("status").unwrap_or_default()
        )
        .trim()
        .to_string();
    }
    String::new()
}

fn severity_name(s: LogSeverity) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "DEFAULT".into())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A string literal of the Logging query language.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_quoted_and_escaped() {
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }

    #[test]
    fn entries_map_every_payload_kind() {
        let raw: EntriesPage = serde_json::from_value(json!({"entries": [
            {"timestamp": "2026-11-23T09:00:01.5Z", "severity": "ERROR", "textPayload": "boom",
             "resource": {"type": "cloud_run_revision", "labels": {"revision_name": "api-00002-abc"}}},
            {"timestamp": "2026-11-23T09:00:02Z", "severity": "WARNING",
             "jsonPayload": {"message": "slow", "ms": 900}, "labels": {"instanceId": "i1"}},
            {"timestamp": "2026-11-23T09:00:03Z",
             "httpRequest": {"requestMethod": "GET", "requestUrl": "/health", "status": 503}},
            {"timestamp": "2026-11-23T09:00:04Z", "severity": "NOT_A_LEVEL",
             "protoPayload": {"status": {"message": "denied"}}}
        ]})).unwrap();
        let e: Vec<LogEntry> = raw.entries.into_iter().map(entry_of).collect();
        assert_eq!(e[0].message, "boom");
        assert_eq!(e[0].severity, LogSeverity::Error);
        assert_eq!(e[0].release.as_deref(), Some("api-00002-abc"));
        assert_eq!(e[1].message, "slow");
        assert_eq!(e[1].payload.as_ref().unwrap()["ms"], 900);
        assert_eq!(e[1].labels["instanceId"], "i1");
        assert_eq!(e[2].message, "GET /health 503");
        assert_eq!(e[2].severity, LogSeverity::Default);
        assert_eq!(e[3].message, "denied");
        assert_eq!(e[3].severity, LogSeverity::Default);
    }
}
