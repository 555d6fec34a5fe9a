//! Runtime logs in the simulator: rows kept per deployment and served as Vercel's
//! `application/stream+json` stream (one `GetRuntimeLogsResponseBody` per line, every
//! documented field present). The simulated stream holds every row kept and then closes, where
//! Vercel's stays open with live rows: the client reads either the same way.

use chrono::{DateTime, Utc};
use ops_core::sim::ResponseTemplate;
use serde_json::json;

use super::render::{error, ms};
use super::{SIM_PROJECT_ID, State};

impl State {
    /// Keeps one runtime-log row of `deployment`.
    pub(super) fn log_row(
        &mut self,
        deployment: &str,
        at: DateTime<Utc>,
        level: &str,
        source: &str,
        message: &str,
        request: Option<(&str, u16)>,
    ) {
        let n = self.runtime.values().map(Vec::len).sum::<usize>();
        let (path, status) = request.unwrap_or(("", 0));
        let row = json!({
            "level": level, "message": message, "rowId": format!("row{n:08}"),
            "source": source, "timestampInMs": ms(at), "domain": format!("{}.acme.dev", self.name),
            "messageTruncated": false, "requestMethod": if request.is_some() { "GET" } else { "" },
            "requestPath": path, "responseStatusCode": status,
        });
        self.runtime
            .entry(deployment.to_string())
            .or_default()
            .push(row);
    }

    /// `GET /v1/projects/{p}/deployments/{d}/runtime-logs`, when `path` is that route.
    pub(super) fn runtime_logs(&mut self, method: &str, path: &str) -> Option<ResponseTemplate> {
        let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let ["v1", "projects", p, "deployments", d, "runtime-logs"] = seg.as_slice() else {
            return None;
        };
        if method != "GET" {
            return None;
        }
        let (status, body) = if *p != SIM_PROJECT_ID {
            // The route takes the project's id, not its name.
            error(404, "not_found", "Project not found")
        } else if self.find(d).is_none() {
            error(404, "not_found", "Deployment was not found")
        } else {
            let erroring = self.find(d).is_some_and(|dep| {
                dep.meta
                    .get("githubCommitRef")
                    .is_some_and(|r| self.erroring_refs.contains(r))
            });
            if erroring && let Some(id) = self.find(d).map(|dep| dep.id.clone()) {
                let now = self.clock.now();
                self.log_row(
                    &id,
                    now,
                    "info",
                    "request",
                    "GET /api/events 500",
                    Some(("/api/events", 500)),
                );
                self.log_row(
                    &id,
                    now,
                    "error",
                    "serverless",
                    "Error: redis: connect ECONNREFUSED",
                    Some(("/api/events", 500)),
                );
            }
            let rows = self.runtime.get(*d).map(Vec::as_slice).unwrap_or_default();
            let mut body = String::new();
            for r in rows {
                body.push_str(&r.to_string());
                body.push('\n');
            }
            return Some(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/stream+json")
                    .set_body_string(body),
            );
        };
        Some(
            ResponseTemplate::new(status)
                .insert_header("content-type", "application/json; charset=utf-8")
                .set_body_string(body.to_string()),
        )
    }
}
