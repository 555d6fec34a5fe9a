//! Simulated Cloud Logging and Cloud Monitoring: requests follow the traffic history, so a bad
//! revision produces 5xx responses and ERROR logs in proportion to its share.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::SimState;
use super::cloud_run::time;
use super::http::{Reply, google_error};
use crate::monitoring::{
    CPU_UTILIZATIONS, INSTANCE_COUNT, MEMORY_UTILIZATIONS, REQUEST_COUNT, REQUEST_LATENCIES,
};

/// The most generated error entries one log query sees.
pub const MAX_GENERATED_ENTRIES: usize = 2000;

/// Latency bucket bounds (ms) of the simulated distributions.
const LATENCY_BOUNDS: [f64; 12] = [
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];
/// Utilisation bucket bounds.
const UTILISATION_BOUNDS: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Requests one revision served in a window.
#[derive(Debug, Default, Clone, Copy)]
struct Served {
    requests: f64,
    errors: f64,
    seconds: f64,
}

/// A log entry added by hand ([`super::GcpSim::push_log`]).
#[derive(Debug, Clone)]
pub(super) struct CustomLog {
    pub timestamp: DateTime<Utc>,
    pub severity: String,
    pub text: String,
    pub revision: Option<String>,
}

impl SimState {
    /// Per revision (full name): what it served in `[start, end)`.
    fn served(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> BTreeMap<String, Served> {
        let mut out: BTreeMap<String, Served> = BTreeMap::new();
        let now = self.now();
        for (i, (from, split)) in self.traffic_history.iter().enumerate() {
            let to = self.traffic_history.get(i + 1).map_or(now, |(t, _)| *t);
            let (a, b) = ((*from).max(start), to.min(end));
            if b <= a {
                continue;
            }
            let secs = (b - a).num_milliseconds() as f64 / 1000.0;
            for (rev, pct) in split {
                let image = self
                    .revisions
                    .get(rev)
                    .map(|r| r.image.as_str())
                    .unwrap_or("");
                let behaviour = self.behaviour(image);
                let rate = self.requests_per_second * f64::from(*pct) / 100.0;
                let error_ratio = behaviour.error_ratio_at(*pct);
                let s = out.entry(rev.clone()).or_default();
                s.seconds += secs;
                match &self.random_traffic {
                    Some(random) => {
                        // The whole seconds `t` with a <= t < b: each drawn once, whichever
                        // window asks.
                        let first_second = |t: DateTime<Utc>| {
                            t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
                        };
                        for second in first_second(a)..first_second(b) {
                            let (r, e) = random.second(rev, second, rate, error_ratio);
                            s.requests += r as f64;
                            s.errors += e as f64;
                        }
                    }
                    None => {
                        s.requests += rate * secs;
                        s.errors += rate * secs * error_ratio;
                    }
                }
            }
        }
        out
    }

    /// The time-weighted mean of `service`'s running instances in `[start, end)`, if the
    /// history covers any of it.
    fn mean_instances(
        &self,
        service: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Option<f64> {
        let now = self.now();
        let (mut weighted, mut seconds) = (0.0, 0.0);
        for (i, (from, counts)) in self.instance_history.iter().enumerate() {
            let to = self.instance_history.get(i + 1).map_or(now, |(t, _)| *t);
            let (a, b) = ((*from).max(start), to.min(end));
            let Some(n) = counts.get(service).filter(|_| b > a) else {
                continue;
            };
            let secs = (b - a).num_milliseconds() as f64 / 1000.0;
            weighted += f64::from(*n) * secs;
            seconds += secs;
        }
        (seconds > 0.0).then(|| weighted / seconds)
    }

    /// Requests and errors of one revision (short or full name) over the whole history.
    pub(super) fn served_by(&mut self, revision: &str) -> (f64, f64) {
        self.settle();
        let start = self
            .traffic_history
            .first()
            .map_or_else(|| self.now(), |(t, _)| *t);
        let suffix = format!("/revisions/{revision}");
        self.served(start, self.now())
            .into_iter()
            .filter(|(name, _)| name == revision || name.ends_with(&suffix))
            .fold((0.0, 0.0), |(r, e), (_, s)| (r + s.requests, e + s.errors))
    }

    /// `timeSeries.list` for the Cloud Run metrics.
    pub(super) fn list_time_series(&mut self, query: &BTreeMap<String, String>) -> Reply {
        self.settle();
        let filter = query.get("filter").map(String::as_str).unwrap_or("");
        let parse_time = |key: &str| {
            query
                .get(key)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let (Some(start), Some(end)) = (
            parse_time("interval.startTime"),
            parse_time("interval.endTime"),
        ) else {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "Field interval.endTime had an invalid value: an interval needs startTime and endTime",
            );
        };
        if query.contains_key("aggregation.alignmentPeriod")
            != query.contains_key("aggregation.perSeriesAligner")
        {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "The alignment period and the per-series aligner must be given together.",
            );
        }
        if let (Some(metric), Some(db)) = (
            quoted_after(filter, "metric.type="),
            quoted_after(filter, "resource.labels.database_id="),
        ) {
            return self.sql_series(&metric, &db, start, end);
        }
        let (Some(metric), Some(service)) = (
            quoted_after(filter, "metric.type="),
            quoted_after(filter, "resource.labels.service_name="),
        ) else {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "The filter must name metric.type and resource.labels.service_name.",
            );
        };
        let revision = quoted_after(filter, "resource.labels.revision_name=");
        let svc_name = self.service_name(&service);
        let served: Vec<(String, Served)> = self
            .served(start, end)
            .into_iter()
            .filter(|(rev, _)| rev.starts_with(&format!("{svc_name}/revisions/")))
            .filter(|(rev, _)| {
                revision
                    .as_deref()
                    .is_none_or(|r| rev.ends_with(&format!("/{r}")))
            })
            .collect();
        let resource = |rev: Option<&str>| {
            let mut labels = json!({"project_id": self.project, "location": self.region,
                                    "service_name": service, "configuration_name": service});
            if let Some(r) = rev {
                labels["revision_name"] = json!(r.rsplit('/').next().unwrap_or(r));
            }
            json!({"type": "cloud_run_revision", "labels": labels})
        };
        let interval = json!({"startTime": time(start), "endTime": time(end)});
        let series: Vec<Value> = match metric.as_str() {
            REQUEST_COUNT => {
                let (ok, bad) = served.iter().fold((0.0, 0.0), |(ok, bad), (_, s)| {
                    (ok + s.requests - s.errors, bad + s.errors)
                });
                [("2xx", ok), ("5xx", bad)]
                    .into_iter()
                    .filter(|(_, n)| n.round() > 0.0)
                    .map(|(class, n)| json!({
                        "metric": {"type": REQUEST_COUNT, "labels": {"response_code_class": class}},
                        "resource": resource(None),
                        "metricKind": "DELTA", "valueType": "INT64",
                        "points": [{"interval": interval, "value": {"int64Value": (n.round() as u64).to_string()}}],
                    }))
                    .collect()
            }
            REQUEST_LATENCIES | CPU_UTILIZATIONS | MEMORY_UTILIZATIONS => served
                .iter()
                .filter_map(|(rev, s)| {
                    let image = self.revisions.get(rev).map(|r| r.image.as_str()).unwrap_or("");
                    let b = self.behaviour(image);
                    let (value, count, bounds): (f64, u64, &[f64]) = match metric.as_str() {
                        REQUEST_LATENCIES => (b.latency_ms, s.requests.round() as u64, &LATENCY_BOUNDS),
                        // One utilisation sample per instance-minute (one instance).
                        CPU_UTILIZATIONS => (b.cpu, (s.seconds / 60.0).ceil() as u64, &UTILISATION_BOUNDS),
                        _ => (b.memory, (s.seconds / 60.0).ceil() as u64, &UTILISATION_BOUNDS),
                    };
                    (count > 0).then(|| json!({
                        "metric": {"type": metric},
                        "resource": resource(Some(rev)),
                        "metricKind": "DELTA", "valueType": "DISTRIBUTION",
                        "points": [{"interval": interval, "value": {"distributionValue": distribution(value, count, bounds)}}],
                    }))
                })
                .collect(),
            // One gauge per service, aligned to its mean over the window (ALIGN_MEAN).
            INSTANCE_COUNT => self
                .mean_instances(&service, start, end)
                .map(|mean| json!({
                    "metric": {"type": INSTANCE_COUNT, "labels": {"state": "active"}},
                    "resource": resource(None),
                    "metricKind": "GAUGE", "valueType": "DOUBLE",
                    "points": [{"interval": interval, "value": {"doubleValue": mean}}],
                }))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        if series.is_empty() {
            // The API leaves out empty fields.
            return Reply::json(200, json!({}));
        }
        Reply::json(
            200,
            json!({ "timeSeries": series, "unit": if metric == REQUEST_LATENCIES { "ms" } else { "1" } }),
        )
    }

    /// `entries:list`: generated error entries plus hand-added ones, filtered and paged.
    pub(super) fn list_entries(&mut self, body: &Value) -> Reply {
        self.settle();
        let project_ok = body
            .get("resourceNames")
            .and_then(Value::as_array)
            .is_some_and(|r| {
                r.iter()
                    .any(|n| n.as_str() == Some(&format!("projects/{}", self.project)))
            });
        if !project_ok {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "resourceNames must name the project",
            );
        }
        let filter = body.get("filter").and_then(Value::as_str).unwrap_or("");
        let ts = |key: &str| {
            quoted_after(filter, key)
                .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let start = ts("timestamp>=").unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let end = ts("timestamp<").unwrap_or_else(|| self.now());
        let min_severity = filter
            .split("severity>=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .map(severity_rank)
            .unwrap_or(0);
        let revision = quoted_after(filter, "resource.labels.revision_name=");
        let text = quoted_after(filter, "textPayload:");
        let service = quoted_after(filter, "resource.labels.service_name=");

        let mut entries: Vec<(DateTime<Utc>, String, String, Option<String>)> = Vec::new();
        for (rev, s) in self.served(start, end) {
            let n = (s.errors.floor() as usize).min(MAX_GENERATED_ENTRIES);
            let short = rev.rsplit('/').next().unwrap_or(&rev).to_string();
            // Spread evenly over the window asked for.
            let span = (end - start).num_milliseconds().max(1);
            for k in 0..n {
                let at = start + chrono::Duration::milliseconds(span * k as i64 / n.max(1) as i64);
                entries.push((
                    at,
                    "ERROR".into(),
                    format!("upstream request failed with 500 on {short}"),
                    Some(short.clone()),
                ));
            }
        }
        for c in &self.custom_logs {
            if c.timestamp >= start && c.timestamp < end {
                entries.push((
                    c.timestamp,
                    c.severity.clone(),
                    c.text.clone(),
                    c.revision.clone(),
                ));
            }
        }
        entries.retain(|(_, sev, msg, rev)| {
            severity_rank(sev) >= min_severity
                && revision
                    .as_deref()
                    .is_none_or(|r| rev.as_deref() == Some(r))
                && text.as_deref().is_none_or(|t| msg.contains(t))
        });
        entries.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(&b.2)));
        entries.truncate(MAX_GENERATED_ENTRIES);

        let size = body
            .get("pageSize")
            .and_then(Value::as_u64)
            .unwrap_or(50)
            .clamp(1, 1000) as usize;
        let offset: usize = match body.get("pageToken").and_then(Value::as_str) {
            Some(t) => match t.strip_prefix("log-page-").and_then(|n| n.parse().ok()) {
                Some(n) => n,
                None => return google_error(400, "INVALID_ARGUMENT", "Invalid page token."),
            },
            None => 0,
        };
        let service = service.unwrap_or_default();
        let page: Vec<Value> = entries
            .iter()
            .skip(offset)
            .take(size)
            .enumerate()
            .map(|(i, (at, sev, msg, rev))| {
                let mut labels = json!({"project_id": self.project, "location": self.region,
                                        "service_name": service, "configuration_name": service});
                if let Some(r) = rev {
                    labels["revision_name"] = json!(r);
                }
                json!({
                    "logName": format!("projects/{}/logs/run.googleapis.com%2Fstderr", self.project),
                    "resource": {"type": "cloud_run_revision", "labels": labels},
                    "textPayload": msg,
                    "timestamp": time(*at),
                    "receiveTimestamp": time(*at),
                    "severity": sev,
                    "insertId": format!("sim{:08}", offset + i),
                    "labels": {"instanceId": "sim-instance-1"},
                })
            })
            .collect();
        let mut out = json!({});
        if !page.is_empty() {
            out["entries"] = json!(page);
        }
        if offset + size < entries.len() {
            out["nextPageToken"] = json!(format!("log-page-{}", offset + size));
        }
        Reply::json(200, out)
    }
}

/// A distribution with every value in the bucket holding `value`.
fn distribution(value: f64, count: u64, bounds: &[f64]) -> Value {
    let bucket = bounds
        .iter()
        .position(|b| value < *b)
        .unwrap_or(bounds.len());
    let mut counts = vec!["0".to_string(); bucket + 1];
    counts[bucket] = count.to_string();
    json!({
        "count": count.to_string(),
        "mean": value,
        "sumOfSquaredDeviation": 0.0,
        "bucketOptions": {"explicitBuckets": {"bounds": bounds}},
        "bucketCounts": counts,
    })
}

/// The string literal after `key` in a filter (`key"value"`).
pub(super) fn quoted_after(filter: &str, key: &str) -> Option<String> {
    let rest = &filter[filter.find(key)? + key.len()..];
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "DEBUG" => 1,
        "INFO" => 2,
        "NOTICE" => 3,
        "WARNING" => 4,
        "ERROR" => 5,
        "CRITICAL" => 6,
        "ALERT" => 7,
        "EMERGENCY" => 8,
        _ => 0,
    }
}
