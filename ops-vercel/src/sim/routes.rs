//! The simulator's request handling.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ops_core::sim::{Ledger, Request, ResponseTemplate, SimApi};
use serde_json::{Value, json};

use super::render::{error, ms};
use super::{Fault, SIM_PROJECT_ID, SIM_TEAM, SIM_TOKEN, SimDeployment, State};

impl State {
    /// A creation time for a new variable: now, but after every existing one, so that paging
    /// by creation time (`until`) never skips one, even on a paused clock.
    pub(super) fn fresh_env_time(&self) -> chrono::DateTime<chrono::Utc> {
        let now = self.clock.now();
        self.envs
            .iter()
            .map(|e| e.created + chrono::Duration::milliseconds(1))
            .fold(now, |a, b| a.max(b))
    }

    pub(super) fn new_deployment(
        &mut self,
        target: Option<String>,
        git_ref: &str,
        sha: Option<&str>,
        created: DateTime<Utc>,
    ) -> String {
        let suffix: String = (0..24).map(|_| fastrand::alphanumeric()).collect();
        let id = format!("dpl_{suffix}");
        let host: String = suffix.to_lowercase().chars().take(9).collect();
        let mut meta = BTreeMap::new();
        meta.insert("githubCommitRef".to_string(), git_ref.to_string());
        meta.insert("githubOrg".to_string(), "acme".to_string());
        meta.insert("githubRepo".to_string(), "site".to_string());
        if let Some(s) = sha {
            meta.insert("githubCommitSha".to_string(), s.to_string());
        }
        self.deployments.push(SimDeployment {
            id: id.clone(),
            url: format!("{}-{host}-acme.vercel.app", self.name),
            target,
            created,
            meta,
            fails: self.failing_refs.contains(git_ref),
            was_production: false,
            settled: false,
        });
        id
    }

    pub(super) fn ready_state(&self, d: &SimDeployment) -> &'static str {
        let now = self.clock.now();
        let age = (now - d.created).to_std().unwrap_or_default();
        if age < self.build_time / 10 {
            "QUEUED"
        } else if age < self.build_time {
            "BUILDING"
        } else if d.fails {
            "ERROR"
        } else {
            "READY"
        }
    }

    /// A production deployment becomes production once, when its build finishes (Vercel's
    /// automatic domain assignment); a later rollback is not undone.
    pub(super) fn settle(&mut self) {
        let finished: Vec<(String, bool)> = self
            .deployments
            .iter()
            .filter(|d| !d.settled && matches!(self.ready_state(d), "READY" | "ERROR"))
            .map(|d| {
                (
                    d.id.clone(),
                    d.target.as_deref() == Some("production") && self.ready_state(d) == "READY",
                )
            })
            .collect();
        for (id, promote) in finished {
            if let Some(d) = self.deployments.iter_mut().find(|d| d.id == id) {
                d.settled = true;
            }
            if promote {
                self.make_production(&id);
            }
        }
    }

    pub(super) fn make_production(&mut self, id: &str) {
        self.production = Some(id.to_string());
        if let Some(d) = self.deployments.iter_mut().find(|d| d.id == id) {
            d.was_production = true;
        }
    }

    pub(super) fn find(&self, id: &str) -> Option<&SimDeployment> {
        self.deployments.iter().find(|d| d.id == id || d.url == id)
    }

    fn route(
        &mut self,
        method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
        body: &Value,
    ) -> (u16, Value) {
        self.settle();
        let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let project_ok = |p: &str| p == SIM_PROJECT_ID || p == self.name;
        match (method, seg.as_slice()) {
            ("GET", ["v9", "projects", p]) if project_ok(p) => (200, self.project()),
            ("GET", ["v7", "deployments"]) => {
                if query.get("projectId").is_some_and(|p| !project_ok(p)) {
                    return (
                        200,
                        json!({"deployments": [], "pagination": {"count": 0, "next": null, "prev": null}}),
                    );
                }
                let limit: usize = query
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(20)
                    .clamp(1, 100);
                let until: Option<i64> = query.get("until").and_then(|u| u.parse().ok());
                let mut list: Vec<&SimDeployment> = self
                    .deployments
                    .iter()
                    .filter(|d| until.is_none_or(|u| ms(d.created) < u))
                    .collect();
                list.sort_by_key(|d| std::cmp::Reverse(d.created));
                let more = list.len() > limit;
                list.truncate(limit);
                let next = if more {
                    list.last().map(|d| json!(ms(d.created)))
                } else {
                    None
                };
                let prev = list.first().map(|d| json!(ms(d.created)));
                (
                    200,
                    json!({"deployments": list.iter().map(|d| self.render_listed(d)).collect::<Vec<_>>(),
                             "pagination": {"count": list.len(), "next": next, "prev": prev}}),
                )
            }
            ("POST", ["v13", "deployments"]) => {
                if body.get("name").and_then(Value::as_str).is_none() {
                    return error(
                        400,
                        "bad_request",
                        "Invalid request: missing required property `name`.",
                    );
                }
                let target = body
                    .get("target")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if target
                    .as_deref()
                    .is_some_and(|t| t != "production" && t != "staging")
                {
                    return error(
                        400,
                        "bad_request",
                        "Invalid request: `target` should be one of production, staging.",
                    );
                }
                let now = self.clock.now();
                let asked_target = target.clone();
                let id = if let Some(from) = body.get("deploymentId").and_then(Value::as_str) {
                    let Some(src) = self.find(from).cloned() else {
                        return error(404, "not_found", "The deployment to redeploy was not found");
                    };
                    let r = src.meta.get("githubCommitRef").cloned().unwrap_or_default();
                    self.new_deployment(
                        target,
                        &r,
                        src.meta.get("githubCommitSha").map(String::as_str),
                        now,
                    )
                } else if let Some(g) = body.get("gitSource") {
                    if g["org"] != "acme" || g["repo"] != "site" {
                        return error(
                            400,
                            "incorrect_git_source_info",
                            "The repository could not be found or is not connected to this project.",
                        );
                    }
                    let r = g
                        .get("ref")
                        .and_then(Value::as_str)
                        .unwrap_or("main")
                        .to_string();
                    let sha = g
                        .get("sha")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("{:040x}", fastrand::u128(..)));
                    self.new_deployment(target, &r, Some(&sha), now)
                } else {
                    return error(400, "missing_files", "Missing files or gitSource");
                };
                if let Some(extra) = body.get("meta").and_then(Value::as_object)
                    && let Some(d) = self.deployments.iter_mut().find(|d| d.id == id)
                {
                    for (k, v) in extra {
                        if let Some(v) = v.as_str() {
                            d.meta.insert(k.clone(), v.to_string());
                        }
                    }
                }
                self.ledger.mutated();
                // The SDK's shortest reply shape (`CreateDeploymentResponseBody1`): the client
                // must follow the build by id, not rely on the creation reply's detail.
                let state = self.find(&id).map_or("QUEUED", |d| self.ready_state(d));
                (
                    200,
                    json!({"id": id, "readyState": state, "aliasAssigned": false, "target": asked_target}),
                )
            }
            ("GET", ["v13", "deployments", id]) => match self.find(id).cloned() {
                Some(d) => (200, self.render(&d)),
                None => error(404, "not_found", "Deployment was not found"),
            },
            ("GET", ["v3", "deployments", id, "events"]) => {
                let Some(d) = self.find(id).cloned() else {
                    return error(404, "not_found", "Deployment was not found");
                };
                let t = ms(d.created);
                let build = json!({"type": "build", "name": format!("bld_{}", d.id)});
                let mut events = vec![
                    json!({"type": "command", "created": t + 1, "date": t + 1, "text": "Running \"npm run build\"", "deploymentId": d.id, "id": "e1", "serial": "1", "info": build}),
                    json!({"type": "stdout", "created": t + 2, "date": t + 2, "text": "> next build", "deploymentId": d.id, "id": "e2", "serial": "2", "info": build}),
                ];
                if self.ready_state(&d) == "ERROR" {
                    events.push(json!({"type": "stderr", "created": t + 3, "text": "Type error: Property 'user' does not exist on type 'Session'.", "level": "error", "date": t + 3, "deploymentId": d.id, "id": "e3", "serial": "3", "info": build}));
                    // The documented shapes also nest the line in `payload`, and the array
                    // may hold `null`.
                    events.push(Value::Null);
                    events.push(json!({"type": "stderr", "created": t + 4, "payload": {"text": "Error: Command \"npm run build\" exited with 1", "deploymentId": d.id, "id": "e4", "serial": "4", "date": t + 4, "created": t + 4}}));
                }
                // `since` and `until` bound the time (both inclusive, as the SDK leaves it
                // open), `direction` orders, `limit` (-1: all) cuts.
                let at = |e: &Value| e.get("created").and_then(Value::as_i64);
                let bound = |k: &str| query.get(k).and_then(|v| v.parse::<i64>().ok());
                let (since, until) = (bound("since"), bound("until"));
                events.retain(|e| {
                    e.is_null()
                        || at(e).is_some_and(|t| {
                            since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
                        })
                });
                if query.get("direction").map(String::as_str) == Some("backward") {
                    events.reverse();
                }
                if let Some(limit) = bound("limit").and_then(|l| usize::try_from(l).ok()) {
                    events.truncate(limit);
                }
                (200, json!(events))
            }
            ("POST", ["v10", "projects", p, "promote", id]) if project_ok(p) => {
                match self.find(id).cloned() {
                    Some(d) if self.ready_state(&d) == "READY" => {
                        self.make_production(&d.id);
                        self.ledger.mutated();
                        (201, json!({}))
                    }
                    Some(_) => error(400, "deployment_not_ready", "The deployment is not ready"),
                    None => error(404, "not_found", "Deployment was not found"),
                }
            }
            ("POST", ["v1", "projects", p, "rollback", id]) if project_ok(p) => {
                match self.find(id).cloned() {
                    Some(d) if d.was_production && self.ready_state(&d) == "READY" => {
                        self.production = Some(d.id);
                        self.ledger.mutated();
                        (201, json!({}))
                    }
                    Some(_) => error(
                        400,
                        "invalid_rollback_candidate",
                        "This deployment is not eligible for rollback: it was never a production deployment.",
                    ),
                    None => error(404, "not_found", "Deployment was not found"),
                }
            }
            ("POST", ["v1", "projects", p, verb @ ("pause" | "unpause")]) if project_ok(p) => {
                self.paused = *verb == "pause";
                self.ledger.mutated();
                (200, json!({}))
            }
            (
                m,
                [
                    version @ ("v1" | "v9" | "v10"),
                    "projects",
                    p,
                    "env",
                    rest @ ..,
                ],
            ) if project_ok(p) => self.env_route(m, version, rest, query, body),
            (_, ["v9" | "v10" | "v1", "projects", ..]) => {
                error(404, "not_found", "Project not found")
            }
            _ => error(
                404,
                "not_found",
                &format!("{method} {path} is not simulated"),
            ),
        }
    }
}

impl SimApi for State {
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    fn respond(&mut self, req: &Request) -> ResponseTemplate {
        respond(self, req)
    }

    fn fault(&mut self, fault: Fault, _: &Request) -> ResponseTemplate {
        fault_response(fault, self.clock.now())
    }
}

/// An injected fault as Vercel shows it: its error body, its rate-limit headers.
fn fault_response(fault: Fault, now: DateTime<Utc>) -> ResponseTemplate {
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let (code, msg) = match status {
                429 => ("rate_limited", "Rate limit exceeded"),
                401 => ("unauthorized", "Not authorized"),
                403 => ("forbidden", "Not authorized"),
                404 => ("not_found", "Not found"),
                409 => ("conflict", "Conflict"),
                _ => ("internal_server_error", "An unexpected error occurred."),
            };
            let mut t = json_template(status, json!({"error": {"code": code, "message": msg}}));
            if let Some(secs) = retry_after {
                if status == 429 {
                    t = t
                        .insert_header("x-ratelimit-limit", "100")
                        .insert_header("x-ratelimit-remaining", "0")
                        .insert_header(
                            "x-ratelimit-reset",
                            (now.timestamp() + secs as i64).to_string().as_str(),
                        );
                } else {
                    t = t.insert_header("retry-after", secs.to_string().as_str());
                }
            }
            t
        }
        Fault::Delay(d) => ResponseTemplate::new(504).set_delay(d),
        Fault::TruncatedJson => ResponseTemplate::new(200)
            .insert_header("content-type", "application/json")
            .set_body_string("{\"deployments\": [{\"uid\": \"dpl_"),
    }
}

/// Every request, with the state locked.
fn respond(s: &mut State, req: &Request) -> ResponseTemplate {
    let method = req.method.as_str().to_string();
    let path = req.url.path().to_string();
    let now = s.clock.now();
    if method == "GET" && path == "/" {
        // The simulated site itself, for health probes; production logs the request.
        let status = if s.site_fails { 500 } else { 200 };
        if let Some(prod) = s.production.clone() {
            s.log_row(
                &prod,
                now,
                "info",
                "request",
                "GET / from the site",
                Some(("/", status)),
            );
        }
        return ResponseTemplate::new(status).set_body_string("<!doctype html><title>site</title>");
    }
    let auth = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.is_empty() {
        return json_template(
            401,
            json!({"error": {"code": "unauthorized", "message": "Not authorized"}}),
        );
    }
    if auth != format!("Bearer {SIM_TOKEN}") {
        return json_template(
            403,
            json!({"error": {"code": "forbidden", "message": "Not authorized", "invalidToken": true}}),
        );
    }
    let query: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    if query.get("teamId").map(String::as_str) != Some(SIM_TEAM) {
        return json_template(
            404,
            json!({"error": {"code": "not_found", "message": "Project not found"}}),
        );
    }
    if let Some(t) = s.runtime_logs(&method, &path) {
        return t;
    }
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&req.body).unwrap_or(Value::Null)
    };
    let (status, out) = s.route(&method, &path, &query, &body);
    json_template(status, out)
        .insert_header("x-ratelimit-limit", "100")
        .insert_header("x-ratelimit-remaining", "99")
        .insert_header(
            "x-ratelimit-reset",
            (now.timestamp() + 60).to_string().as_str(),
        )
}

fn json_template(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/json; charset=utf-8")
        .set_body_string(body.to_string())
}
