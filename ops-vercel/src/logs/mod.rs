//! Logs of a Vercel project as a [`LogSource`]: the build output of its deployments
//! (`GET /v3/deployments/{id}/events`) and their runtime logs
//! (`GET /v1/projects/{projectId}/deployments/{deploymentId}/runtime-logs`), so deploy
//! verification and the weekly review read Vercel the way they read Cloud Logging.
//!
//! | runbook step (CLI) | call |
//! |---|---|
//! | `vercel logs <deployment-url>` | [`LogSource::query_page`] with `release` set to the deployment |
//! | `vercel inspect --logs` (build output) | the same, entries labelled `source=build` |
//! | request and error counts of a deployment | [`VercelRequests`] |
//!
//! **Runtime logs are live only.** Vercel's REST API streams a deployment's runtime logs as
//! they happen and serves no history (the CLI follows for at most five minutes; history needs a
//! log drain). So a query's first page reads each deployment's stream for at most
//! [`VercelLogsConfig::follow_for`] and keeps what it read, by row id, in the source (at most
//! [`VercelLogsConfig::max_rows`] rows per deployment, oldest dropped first). Later pages and
//! later queries answer from what was kept: a source that is kept alive (a deploy verification,
//! a canary) sees every row it has read. Build output has history and is read by time.
//!
//! Without `release`, a query covers the deployments serving production.

mod requests;
pub mod rows;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_core::clock::peer_timeout;
use ops_core::contracts::{
    Deployer, LogEntry, LogPage, LogQuery, LogSeverity, LogSource, TimeWindow, page_in_memory,
};
use ops_core::http::error_for_transport;
use ops_core::{Error, Result};
use tokio::sync::OnceCell;

pub use requests::VercelRequests;
use rows::{RowDecoder, RuntimeRow};

use crate::deployer::VercelDeployer;
use crate::model::Event;

/// What a [`VercelLogs`] reads, and how much it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VercelLogsConfig {
    /// Read build output (deployment events). Default on.
    pub build_output: bool,
    /// Read runtime logs. Default on.
    pub runtime: bool,
    /// How long a query reads a deployment's live runtime-log stream (default 5 s; at most
    /// 5 minutes, as long as Vercel keeps it open).
    pub follow_for: Duration,
    /// Runtime rows kept per deployment (default 10 000, at most 1 000 000).
    pub max_rows: usize,
}

impl Default for VercelLogsConfig {
    fn default() -> Self {
        Self {
            build_output: true,
            runtime: true,
            follow_for: Duration::from_secs(5),
            max_rows: 10_000,
        }
    }
}

impl VercelLogsConfig {
    fn validate(&self) -> Result<()> {
        let bad =
            |field: &str, reason: &str| Err(Error::invalid_input("vercel", "logs", field, reason));
        if !self.build_output && !self.runtime {
            return bad("build_output", "read build output, runtime logs or both");
        }
        if self.follow_for.is_zero() || self.follow_for > Duration::from_secs(300) {
            return bad("follow_for", "must be more than 0 and at most 5 minutes");
        }
        if !(1..=1_000_000).contains(&self.max_rows) {
            return bad("max_rows", "must be 1 to 1 000 000");
        }
        Ok(())
    }
}

/// Rows read so far, per deployment, in time order and without repeats.
type Seen = BTreeMap<String, BTreeMap<(i64, String), RuntimeRow>>;

/// A [`LogSource`] over a Vercel project's build output and runtime logs.
#[derive(Debug, Clone)]
pub struct VercelLogs {
    deployer: VercelDeployer,
    config: VercelLogsConfig,
    name: String,
    project_id: Arc<OnceCell<String>>,
    seen: Arc<Mutex<Seen>>,
}

impl VercelLogs {
    /// Logs of the deployer's project.
    pub fn new(deployer: VercelDeployer, config: VercelLogsConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            name: format!("vercel-logs:{}", deployer.project_name()),
            deployer,
            config,
            project_id: Arc::new(OnceCell::new()),
            seen: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    /// Reads `deployment`'s runtime-log stream for at most `follow_for` and keeps its rows;
    /// returns how many were new. Rows read before a broken stream are kept, then the error is
    /// returned.
    pub async fn follow(&self, deployment: &str) -> Result<usize> {
        crate::deployer::check_deployment_id("get_runtime_logs", deployment)?;
        let project = self
            .project_id
            .get_or_try_init(|| async { Ok::<_, Error>(self.deployer.project().await?.id) })
            .await?;
        let client = self.deployer.client();
        let url = client.url(&format!(
            "v1/projects/{project}/deployments/{deployment}/runtime-logs"
        ))?;
        let mut resp = client
            .stream(
                "get_runtime_logs",
                url,
                deployment,
                "application/stream+json",
            )
            .await?;
        let mut decoder = RowDecoder::default();
        let mut rows = Vec::new();
        let read = read_rows(&mut resp, &mut decoder, &mut rows, self.config.follow_for);
        // The stream stays open while the deployment runs: the deadline ends the read, and a
        // partial last line is dropped with it.
        let outcome = match peer_timeout(self.config.follow_for, read).await {
            Some(Ok(())) => decoder.finish().map(|last| rows.extend(last)),
            Some(Err(e)) => Err(e),
            None => Ok(()),
        };
        let added = self.keep(deployment, rows);
        outcome.map(|()| added)
    }

    fn keep(&self, deployment: &str, rows: Vec<RuntimeRow>) -> usize {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let kept = seen.entry(deployment.to_string()).or_default();
        let mut added = 0;
        for row in rows {
            let Some(ms) = row.timestamp_in_ms else {
                continue;
            };
            let key = if row.row_id.is_empty() {
                format!("~{}", row.message)
            } else {
                row.row_id.clone()
            };
            if kept.insert((ms, key), row).is_none() {
                added += 1;
            }
        }
        while kept.len() > self.config.max_rows {
            kept.pop_first();
        }
        added
    }

    /// The runtime rows kept for `deployment` inside `window`, oldest first.
    pub fn kept_rows(&self, deployment: &str, window: &TimeWindow) -> Vec<RuntimeRow> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(deployment)
            .map(|rows| {
                rows.values()
                    .filter(|r| r.at().is_some_and(|t| window.contains(t)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The build output of `deployment` inside `window`, oldest first.
    pub async fn build_output(
        &self,
        deployment: &str,
        window: &TimeWindow,
    ) -> Result<Vec<LogEntry>> {
        Ok(self
            .build_entries(deployment, window)
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    async fn build_entries(
        &self,
        deployment: &str,
        window: &TimeWindow,
    ) -> Result<Vec<(String, LogEntry)>> {
        let events = self
            .deployer
            .events_between(deployment, window.start, window.end)
            .await?;
        Ok(events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let key = format!(
                    "b:{}",
                    e.event_id().map_or_else(|| i.to_string(), str::to_owned)
                );
                Some((key, build_entry(e, deployment)?))
            })
            .collect())
    }

    /// The deployments a query covers: the one it names, or those serving production.
    pub(crate) async fn deployments(&self, release: Option<&str>) -> Result<Vec<String>> {
        match release {
            Some(r) => Ok(vec![r.to_string()]),
            None => Ok(self
                .deployer
                .current()
                .await?
                .traffic
                .into_iter()
                .map(|t| t.release)
                .collect()),
        }
    }
}

async fn read_rows(
    resp: &mut reqwest::Response,
    decoder: &mut RowDecoder,
    rows: &mut Vec<RuntimeRow>,
    follow_for: Duration,
) -> Result<()> {
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => rows.extend(decoder.feed(&chunk)?),
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(error_for_transport(
                    "vercel",
                    "get_runtime_logs",
                    &e,
                    follow_for,
                ));
            }
        }
    }
}

/// A build event as a log entry: `level` when the event has one, else its type (`fatal` is
/// critical, `stderr` an error, the rest information).
fn build_entry(e: &Event, deployment: &str) -> Option<LogEntry> {
    let timestamp = DateTime::<Utc>::from_timestamp_millis(e.at()?)?;
    let severity = match (e.level.as_deref(), e.kind.as_str()) {
        (Some("error"), _) | (None, "stderr") => LogSeverity::Error,
        (Some("warning"), _) => LogSeverity::Warning,
        (_, "fatal") => LogSeverity::Critical,
        _ => LogSeverity::Info,
    };
    let mut labels = BTreeMap::new();
    labels.insert("source".to_string(), "build".to_string());
    labels.insert("type".to_string(), e.kind.clone());
    Some(LogEntry {
        timestamp,
        severity,
        message: e.line()?.to_string(),
        payload: None,
        release: Some(deployment.to_string()),
        labels,
    })
}

#[async_trait]
impl LogSource for VercelLogs {
    fn name(&self) -> &str {
        &self.name
    }

    async fn query_page(&self, query: &LogQuery) -> Result<LogPage> {
        query.validate()?;
        // Only the first page reads the live stream; later pages page what was kept.
        let first_page = query.page_token.is_none();
        let mut all: Vec<(String, LogEntry)> = Vec::new();
        for deployment in self.deployments(query.release.as_deref()).await? {
            if self.config.runtime {
                if first_page {
                    self.follow(&deployment).await?;
                }
                for row in self.kept_rows(&deployment, &query.window) {
                    if let Some(entry) = row.entry(&deployment) {
                        let key = format!("r:{deployment}:{}", row.row_id);
                        all.push((key, entry));
                    }
                }
            }
            if self.config.build_output {
                for (key, entry) in self.build_entries(&deployment, &query.window).await? {
                    all.push((format!("{key}:{deployment}"), entry));
                }
            }
        }
        page_in_memory(&self.name, query, all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_events_read_their_level_or_type() {
        let ev = |json: &str| serde_json::from_str::<Event>(json).unwrap();
        let e = build_entry(
            &ev(r#"{"type":"stderr","created":5,"text":"npm WARN deprecated","level":"warning"}"#),
            "d",
        )
        .unwrap();
        assert_eq!(e.severity, LogSeverity::Warning);
        let e = build_entry(
            &ev(r#"{"type":"stderr","created":5,"payload":{"text":"boom","created":5}}"#),
            "d",
        )
        .unwrap();
        assert_eq!(
            (e.severity, e.message.as_str()),
            (LogSeverity::Error, "boom")
        );
        let e = build_entry(
            &ev(r#"{"type":"fatal","created":5,"text":"out of memory"}"#),
            "d",
        )
        .unwrap();
        assert_eq!(e.severity, LogSeverity::Critical);
        assert!(build_entry(&ev(r#"{"type":"stdout","text":"no time"}"#), "d").is_none());
        assert!(build_entry(&ev(r#"{"type":"deployment-state","created":5}"#), "d").is_none());
    }

    #[test]
    fn a_config_out_of_bounds_is_invalid_input() {
        for c in [
            VercelLogsConfig {
                follow_for: Duration::ZERO,
                ..Default::default()
            },
            VercelLogsConfig {
                follow_for: Duration::from_secs(301),
                ..Default::default()
            },
            VercelLogsConfig {
                max_rows: 0,
                ..Default::default()
            },
            VercelLogsConfig {
                build_output: false,
                runtime: false,
                ..Default::default()
            },
        ] {
            assert!(c.validate().is_err(), "{c:?}");
        }
        assert!(VercelLogsConfig::default().validate().is_ok());
    }
}
