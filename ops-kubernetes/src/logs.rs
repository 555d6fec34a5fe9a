//! Pod logs as a [`LogSource`]: `kubectl logs -l app=event-stream --all-containers
//! --timestamps --since=…`, across the selector's pods and their containers, with the
//! previous instance of a restarted container (`--previous`), so "pod logs with ERROR" and the
//! weekly review read Kubernetes the way they read Cloud Logging.
//!
//! Each line's time is the kubelet's (`--timestamps`); its severity comes from the line: a
//! JSON line's `level` or `severity` (pino's numbers too), else the first level word among its
//! first words (`ERROR`, `[warn]`, `level=info`). An entry's release is its pod's ReplicaSet,
//! the release id [`crate::KubeDeployment`] uses. A container that has not started (its image
//! cannot be pulled) has no log and is skipped.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use k8s_openapi::api::core::v1::Pod;
use ops_core::contracts::{LogEntry, LogPage, LogQuery, LogSeverity, LogSource, page_in_memory};
use ops_core::log_line::{
    LineFormat, parse_line, parse_timestamp, severity_in_words, severity_of_json,
};
use ops_core::{Error, ErrorKind, Result};

use crate::client::{KubeClient, PROVIDER};

/// The logs of the pods a label selector picks.
#[derive(Debug, Clone)]
pub struct KubeLogs {
    client: KubeClient,
    selector: String,
    name: String,
    tail_lines: u32,
}

impl KubeLogs {
    /// Logs of the pods matching `selector` (`app=event-stream`), in the client's namespace.
    pub fn new(client: KubeClient, selector: &str) -> Result<Self> {
        let ok = !selector.trim().is_empty()
            && selector.len() <= 1024
            && selector
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=,!-_./ ()".contains(&b));
        if !ok {
            return Err(Error::invalid_input(
                PROVIDER,
                "logs",
                "selector",
                "a label selector such as app=event-stream",
            ));
        }
        Ok(Self {
            name: format!("kubernetes-logs:{selector}"),
            client,
            selector: selector.to_string(),
            tail_lines: 10_000,
        })
    }

    /// At most this many of the newest lines per container and instance (default 10 000, at
    /// least 1): `kubectl logs --tail`.
    pub fn tail_lines(mut self, n: u32) -> Self {
        self.tail_lines = n.max(1);
        self
    }

    async fn pods(&self) -> Result<Vec<Pod>> {
        let path = format!("api/v1/namespaces/{}/pods", self.client.namespace());
        self.client
            .list("list_pods", &path, Some(&self.selector))
            .await
    }

    /// One container's log from `since`, as entries; `None` when it has none to give (not
    /// started, no previous instance).
    async fn container_log(
        &self,
        pod: &str,
        container: &str,
        since: DateTime<Utc>,
        previous: bool,
    ) -> Result<Option<String>> {
        let path = format!(
            "api/v1/namespaces/{}/pods/{pod}/log",
            self.client.namespace()
        );
        // `sinceSeconds`, the parameter the API describes (kubectl's `--since-time` is not
        // one): from the window's start to now, at least a second.
        let now = self.client.clock().now();
        let since = (now - since).num_seconds().max(1).to_string();
        let tail = self.tail_lines.to_string();
        let mut query = vec![
            ("container", container),
            ("timestamps", "true"),
            ("sinceSeconds", since.as_str()),
            ("tailLines", tail.as_str()),
        ];
        if previous {
            query.push(("previous", "true"));
        }
        let url = self.client.url(&path, &query)?;
        match self.client.text("read_pod_log", url, pod).await {
            Ok(text) => Ok(Some(text)),
            // "container … is waiting to start", "previous terminated container … not found".
            Err(e) if matches!(e.kind(), ErrorKind::InvalidInput { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One line of a log with the kubelet's timestamp in front, as an entry.
pub fn entry_of(
    line: &str,
    release: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> Option<LogEntry> {
    let utc = FixedOffset::east_opt(0)?;
    let (timestamp, used) = parse_timestamp(line, utc)?;
    let text = line.get(used..)?.trim_start_matches(' ').trim_end();
    let parsed = parse_line(text, LineFormat::Auto, utc).filter(|p| p.payload.is_some());
    let (severity, message, payload) = match parsed {
        Some(p) => (p.severity, p.message, p.payload),
        None => {
            let severity = severity_in_words(text);
            let json: Option<serde_json::Value> = text
                .starts_with('{')
                .then(|| serde_json::from_str(text).ok())
                .flatten();
            let severity = severity.or_else(|| json.as_ref().and_then(severity_of_json));
            // A JSON line without a time of its own: its message field, as for one with.
            let message = json
                .as_ref()
                .and_then(|v| {
                    ["msg", "message", "text"]
                        .iter()
                        .find_map(|k| v.get(*k)?.as_str())
                })
                .map_or_else(|| text.to_string(), str::to_string);
            (severity, message, json)
        }
    };
    Some(LogEntry {
        timestamp,
        severity: severity.unwrap_or(LogSeverity::Default),
        message,
        payload,
        release: release.map(str::to_string),
        labels: labels.clone(),
    })
}

#[async_trait]
impl LogSource for KubeLogs {
    fn name(&self) -> &str {
        &self.name
    }

    async fn query_page(&self, query: &LogQuery) -> Result<LogPage> {
        query.validate()?;
        let mut all: Vec<(String, LogEntry)> = Vec::new();
        for pod in self.pods().await? {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let owner = pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.kind == "ReplicaSet")
                .map(|o| o.name.clone());
            if query.release.is_some() && query.release != owner {
                continue;
            }
            let restarted: BTreeMap<String, i32> = pod
                .status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
                .map(|c| (c.name.clone(), c.restart_count))
                .collect();
            let containers: Vec<String> = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
                .collect();
            for container in containers {
                let mut labels = BTreeMap::new();
                labels.insert("pod".to_string(), name.clone());
                labels.insert("container".to_string(), container.clone());
                let mut instances = vec![false];
                if restarted.get(&container).is_some_and(|n| *n > 0) {
                    instances.insert(0, true);
                }
                for previous in instances {
                    let Some(text) = self
                        .container_log(&name, &container, query.window.start, previous)
                        .await?
                    else {
                        continue;
                    };
                    let instance = if previous { "previous" } else { "current" };
                    for (i, line) in text.lines().enumerate() {
                        let Some(e) = entry_of(line, owner.as_deref(), &labels) else {
                            continue;
                        };
                        all.push((format!("{name}/{container}/{instance}/{i:08}"), e));
                    }
                }
            }
        }
        page_in_memory(&self.name, query, all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kubelet_lines_read_their_time_and_the_apps_level() {
        let l = BTreeMap::new();
        let e = entry_of(
            "2026-12-01T09:00:01.123456789Z ERROR redis: connection refused",
            Some("rs"),
            &l,
        )
        .unwrap();
        assert_eq!(e.severity, LogSeverity::Error);
        assert_eq!(e.message, "ERROR redis: connection refused");
        assert_eq!(e.timestamp.timestamp_subsec_nanos(), 123_456_789);
        let e = entry_of(
            r#"2026-12-01T09:00:02Z {"level":50,"time":1764579602000,"msg":"heap out of memory"}"#,
            None,
            &l,
        )
        .unwrap();
        assert_eq!(
            (e.severity, e.message.as_str()),
            (LogSeverity::Error, "heap out of memory")
        );
        let e = entry_of(
            r#"2026-12-01T09:00:02Z {"level":"warn","msg":"slow"}"#,
            None,
            &l,
        )
        .unwrap();
        assert_eq!(e.severity, LogSeverity::Warning);
        let e = entry_of(
            "2026-12-01T09:00:03Z     at Socket.emit (node:events:517:28)",
            None,
            &l,
        )
        .unwrap();
        assert_eq!(e.severity, LogSeverity::Default);
        assert!(entry_of("no timestamp here", None, &l).is_none());
    }

    proptest! {
        #[test]
        fn any_line_gives_an_entry_or_none(line in "\\PC{0,200}") {
            let _ = entry_of(&line, None, &BTreeMap::new());
            let stamped = format!("2026-12-01T09:00:00Z {line}");
            prop_assert!(entry_of(&stamped, None, &BTreeMap::new()).is_some());
        }
    }
}
