//! Pod logs in the simulator: what each pod's fate makes it write, lines a test adds, served
//! as the kubelet serves them (`timestamps`, `sinceSeconds`, `tailLines`, `previous`, and a 400
//! for a container that never started).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use super::routes::status;
use super::{Fate, SimPod, State};

impl State {
    /// The lines `p` has written by now, oldest first: its start, then what its fate makes it
    /// write, then lines a test added.
    fn lines_of(
        &self,
        p: &SimPod,
        now: DateTime<Utc>,
        previous: bool,
    ) -> Vec<(DateTime<Utc>, String)> {
        let after = chrono::Duration::from_std(self.pod_ready_after).unwrap_or_default();
        let image = p
            .containers
            .first()
            .map(|c| c.1.clone())
            .unwrap_or_default();
        let mut out = vec![(
            p.created + chrono::Duration::milliseconds(1),
            format!("INFO starting {image}"),
        )];
        match p.fate {
            Fate::Healthy if !previous => {
                out.push((p.created + after, "INFO listening on :8080".into()));
            }
            Fate::CrashLoop => {
                out.push((p.created + after, "ERROR redis: connect ECONNREFUSED 10.0.0.12:6379".into()));
                out.push((p.created + after + chrono::Duration::milliseconds(2), "FATAL exiting with code 1".into()));
            }
            Fate::OomKilled => out.push((
                p.created + after,
                r#"{"level":60,"msg":"FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"}"#.into(),
            )),
            _ => {}
        }
        if previous {
            // The instance before the current one ran ten seconds earlier.
            for (t, _) in out.iter_mut().skip(1) {
                *t -= chrono::Duration::seconds(10);
            }
        } else {
            out.extend(self.extra_logs.get(&p.name).cloned().unwrap_or_default());
        }
        out.retain(|(t, _)| *t <= now);
        out.sort_by_key(|(t, _)| *t);
        out
    }

    /// `GET /api/v1/namespaces/{ns}/pods/{pod}/log`.
    pub(super) fn pod_log(&self, pod: &str, query: &BTreeMap<String, String>) -> (u16, String) {
        let now = self.clock.now();
        let Some(p) = self.pods.iter().find(|p| p.name == pod) else {
            let (code, body) = status(
                404,
                "NotFound",
                &format!("pods \"{pod}\" not found"),
                serde_json::json!({"name": pod, "kind": "pods"}),
            );
            return (code, body.to_string());
        };
        let container = query.get("container").cloned().unwrap_or_else(|| {
            p.containers
                .first()
                .map(|c| c.0.clone())
                .unwrap_or_default()
        });
        let previous = query.get("previous").map(String::as_str) == Some("true");
        let started = p.age(now) >= self.pod_ready_after;
        let refuse = |message: String| {
            let (code, body) = status(400, "BadRequest", &message, serde_json::json!({}));
            (code, body.to_string())
        };
        if !p.containers.iter().any(|c| c.0 == container) {
            return refuse(format!("container {container} is not valid for pod {pod}"));
        }
        if p.fate == Fate::ImagePull || !started && !previous {
            return refuse(format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: trying and failing to pull image"
            ));
        }
        if previous && !matches!(p.fate, Fate::CrashLoop | Fate::OomKilled) {
            return refuse(format!(
                "previous terminated container \"{container}\" in pod \"{pod}\" not found"
            ));
        }
        let since: Option<DateTime<Utc>> = query
            .get("sinceSeconds")
            .and_then(|s| s.parse::<i64>().ok())
            .map(|s| now - chrono::Duration::seconds(s));
        let mut lines: Vec<(DateTime<Utc>, String)> = self
            .lines_of(p, now, previous)
            .into_iter()
            .filter(|(t, _)| since.is_none_or(|s| *t >= s))
            .collect();
        if let Some(n) = query.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
            let skip = lines.len().saturating_sub(n);
            lines.drain(..skip);
        }
        let stamps = query.get("timestamps").map(String::as_str) == Some("true");
        let mut body = String::new();
        for (t, line) in lines {
            if stamps {
                body.push_str(&t.to_rfc3339_opts(SecondsFormat::Nanos, true));
                body.push(' ');
            }
            body.push_str(&line);
            body.push('\n');
        }
        (200, body)
    }
}
