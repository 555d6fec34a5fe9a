//! The simulator's request handling.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use ops_core::sim::{Ledger, Request, ResponseTemplate, SimApi};
use serde_json::{Value, json};

use super::{Fault, SIM_ENVIRONMENT, SIM_ORG, SIM_REPO, SIM_TOKEN, SimDeployment, SimIssue, State};

use super::replies::*;

impl State {
    pub(super) fn route(
        &mut self,
        method: &str,
        segments: &[&str],
        q: &BTreeMap<String, String>,
        body: &Value,
        url: &url::Url,
    ) -> Out {
        let now = self.clock.now();
        self.settle();
        let repo_parts: Vec<&str> = SIM_REPO.split('/').collect();
        match segments {
            ["orgs", org, "actions", "secrets", rest @ ..] if *org == SIM_ORG => self
                .secrets_route(
                    method,
                    &format!("orgs/{SIM_ORG}/actions/secrets"),
                    rest,
                    q,
                    body,
                    url,
                ),
            ["repos", o, r, rest @ ..] if *o == repo_parts[0] && *r == repo_parts[1] => {
                self.repo_route(method, rest, q, body, url, now)
            }
            _ => gh_error(404, "Not Found"),
        }
    }

    pub(super) fn repo_route(
        &mut self,
        method: &str,
        rest: &[&str],
        q: &BTreeMap<String, String>,
        body: &Value,
        url: &url::Url,
        now: DateTime<Utc>,
    ) -> Out {
        let scope_repo = format!("repos/{SIM_REPO}/actions/secrets");
        match (method, rest) {
            (_, ["actions", "secrets", tail @ ..]) => {
                self.secrets_route(method, &scope_repo, tail, q, body, url)
            }
            (_, ["environments", env, "secrets", tail @ ..]) => {
                if !ENVIRONMENTS.contains(env) {
                    return gh_error(404, "Not Found");
                }
                self.secrets_route(
                    method,
                    &format!("repos/{SIM_REPO}/environments/{env}/secrets"),
                    tail,
                    q,
                    body,
                    url,
                )
            }
            ("GET", ["issues"]) => {
                let state = q.get("state").map(String::as_str).unwrap_or("open");
                let labels: Vec<&str> = q
                    .get("labels")
                    .map(|l| l.split(',').collect())
                    .unwrap_or_default();
                let mut items: Vec<&SimIssue> = self
                    .issues
                    .iter()
                    .filter(|i| state == "all" || i.state == state)
                    .filter(|i| labels.iter().all(|l| i.labels.iter().any(|x| x == l)))
                    .collect();
                items.sort_by_key(|i| std::cmp::Reverse((i.created, i.number)));
                let items = items.into_iter().map(|i| self.render_issue(i)).collect();
                page_of(items, q, url)
            }
            ("POST", ["issues"]) => {
                let Some(title) = body
                    .get("title")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                else {
                    return validation("title", "missing_field", "title is required");
                };
                let strings = |k: &str| -> Vec<String> {
                    body.get(k)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let number = self.next_number();
                let issue = SimIssue {
                    number,
                    title: title.into(),
                    body: body
                        .get("body")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    labels: strings("labels"),
                    assignees: strings("assignees"),
                    state: "open".into(),
                    state_reason: None,
                    comments: Vec::new(),
                    created: now,
                    updated: now,
                    pull_request: false,
                };
                self.ledger.mutated();
                let mut out = ok(201, self.render_issue(&issue));
                out.headers.push((
                    "location",
                    format!("https://api.github.com/repos/{SIM_REPO}/issues/{number}"),
                ));
                self.issues.push(issue);
                out
            }
            (_, ["issues", n, tail @ ..]) => {
                let Some(idx) = n
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| self.issues.iter().position(|i| i.number == n))
                else {
                    return gh_error(404, "Not Found");
                };
                match (method, tail) {
                    ("GET", []) => ok(200, self.render_issue(&self.issues[idx])),
                    ("PATCH", []) => {
                        if let Some(state) = body.get("state").and_then(Value::as_str) {
                            if state != "open" && state != "closed" {
                                return validation(
                                    "state",
                                    "invalid",
                                    "state must be open or closed",
                                );
                            }
                            self.issues[idx].state = state.into();
                            self.issues[idx].state_reason = body
                                .get("state_reason")
                                .and_then(Value::as_str)
                                .map(str::to_string);
                        }
                        if let Some(t) = body.get("title").and_then(Value::as_str) {
                            self.issues[idx].title = t.into();
                        }
                        self.issues[idx].updated = now;
                        self.ledger.mutated();
                        ok(200, self.render_issue(&self.issues[idx]))
                    }
                    ("POST", ["comments"]) => {
                        let Some(text) = body
                            .get("body")
                            .and_then(Value::as_str)
                            .filter(|b| !b.is_empty())
                        else {
                            return validation("body", "missing_field", "body is required");
                        };
                        let id = self.next_number();
                        let number = self.issues[idx].number;
                        self.issues[idx].comments.push((id, text.into(), now));
                        self.issues[idx].updated = now;
                        self.ledger.mutated();
                        ok(
                            201,
                            json!({"id": id, "node_id": "IC_sim", "body": text, "user": user("ops-bot"),
                            "html_url": format!("https://github.com/{SIM_REPO}/issues/{number}#issuecomment-{id}"),
                            "issue_url": format!("https://api.github.com/repos/{SIM_REPO}/issues/{number}"),
                            "created_at": iso(now), "updated_at": iso(now), "author_association": "MEMBER"}),
                        )
                    }
                    ("GET", ["comments"]) => {
                        let items = self.issues[idx].comments.iter().map(|(id, b, at)| json!({"id": id, "body": b, "user": user("ops-bot"), "created_at": iso(*at), "updated_at": iso(*at)})).collect();
                        page_of(items, q, url)
                    }
                    _ => gh_error(404, "Not Found"),
                }
            }
            ("POST", ["actions", "workflows", wf, "dispatches"]) => self.dispatch(wf, body, now),
            (_, ["actions", "workflows", tail @ ..]) => {
                self.workflows_route(method, tail, q, url, now)
            }
            ("GET", ["actions", "jobs", id, "logs"]) => self.job_logs(id, url),
            ("GET", ["actions", "runs"]) => {
                let items = self.list_runs(q, None);
                wrapped_page("workflow_runs", items, q, url)
            }
            (_, ["actions", "runs", id, tail @ ..]) => {
                let Some(idx) = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| self.runs.iter().position(|r| r.id == id))
                else {
                    return gh_error(404, "Not Found");
                };
                match (method, tail) {
                    ("GET", []) => ok(200, self.render_run(&self.runs[idx])),
                    ("GET", ["jobs"]) => {
                        let items = self.run_jobs(&self.runs[idx]);
                        wrapped_page("jobs", items, q, url)
                    }
                    ("POST", ["rerun-failed-jobs"]) => {
                        if self.run_status(&self.runs[idx]) != ("completed", Some("failure")) {
                            return gh_error(403, "This workflow run is not eligible for re-run");
                        }
                        let version = self.runs[idx]
                            .inputs
                            .get("version")
                            .cloned()
                            .unwrap_or_default();
                        let fails = self.failing_versions.contains(&version);
                        let r = &mut self.runs[idx];
                        r.attempt += 1;
                        r.attempt_started = now;
                        r.fails = fails;
                        r.settled = false;
                        self.ledger.mutated();
                        ok(201, json!({}))
                    }
                    _ => gh_error(404, "Not Found"),
                }
            }
            ("GET", ["deployments"]) => {
                let env = q.get("environment");
                let mut items: Vec<&SimDeployment> = self
                    .deployments
                    .iter()
                    .filter(|d| env.is_none_or(|e| *e == d.environment))
                    .collect();
                items.sort_by_key(|d| std::cmp::Reverse((d.created, d.id)));
                let items = items.into_iter().map(|d| json!({
                    "url": format!("https://api.github.com/repos/{SIM_REPO}/deployments/{}", d.id),
                    "id": d.id, "node_id": "DE_sim", "sha": d.sha, "ref": "main", "task": "deploy",
                    "payload": {"version": d.version}, "original_environment": d.environment,
                    "environment": d.environment, "description": format!("Deploy {}", d.version),
                    "creator": user("github-actions[bot]"), "created_at": iso(d.created), "updated_at": iso(d.created),
                    "statuses_url": format!("https://api.github.com/repos/{SIM_REPO}/deployments/{}/statuses", d.id),
                    "repository_url": format!("https://api.github.com/repos/{SIM_REPO}"),
                    "transient_environment": false, "production_environment": d.environment == SIM_ENVIRONMENT,
                })).collect();
                page_of(items, q, url)
            }
            ("GET", ["deployments", id, "statuses"]) => {
                let Some(d) = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| self.deployments.iter().find(|d| d.id == id))
                else {
                    return gh_error(404, "Not Found");
                };
                let items = d.statuses.iter().enumerate().rev().map(|(i, (state, env_url, at))| json!({
                    "id": d.id * 100 + i as u64, "node_id": "DES_sim", "state": state, "creator": user("github-actions[bot]"),
                    "url": format!("https://api.github.com/repos/{SIM_REPO}/deployments/{}/statuses/{}", d.id, d.id * 100 + i as u64),
                    "description": "", "environment": d.environment, "target_url": "", "log_url": "",
                    "created_at": iso(*at), "updated_at": iso(*at), "environment_url": env_url.clone().unwrap_or_default(),
                    "deployment_url": format!("https://api.github.com/repos/{SIM_REPO}/deployments/{}", d.id),
                    "repository_url": format!("https://api.github.com/repos/{SIM_REPO}"),
                })).collect();
                page_of(items, q, url)
            }
            ("GET", ["commits"]) => {
                let since: Option<DateTime<Utc>> = q.get("since").and_then(|s| s.parse().ok());
                let items = self
                    .commits
                    .iter()
                    .filter(|c| {
                        let at: Option<DateTime<Utc>> = c["commit"]["author"]["date"]
                            .as_str()
                            .and_then(|d| d.parse().ok());
                        since.is_none_or(|s| at.is_some_and(|a| a >= s))
                    })
                    .cloned()
                    .collect();
                page_of(items, q, url)
            }
            ("GET", ["pulls"]) => {
                let state = q.get("state").map(String::as_str).unwrap_or("open");
                let mut items: Vec<Value> = self
                    .pulls
                    .iter()
                    .filter(|p| state == "all" || p["state"] == state)
                    .cloned()
                    .collect();
                if q.get("sort").map(String::as_str) == Some("updated") {
                    items.sort_by(|a, b| b["updated_at"].as_str().cmp(&a["updated_at"].as_str()));
                }
                page_of(items, q, url)
            }
            ("POST", ["releases"]) => {
                let Some(tag) = body
                    .get("tag_name")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                else {
                    return validation("tag_name", "missing_field", "tag_name is required");
                };
                if self.releases.iter().any(|r| r["tag_name"] == tag) {
                    return ok(
                        422,
                        json!({"message": "Validation Failed", "documentation_url": DOCS, "status": "422",
                        "errors": [{"resource": "Release", "code": "already_exists", "field": "tag_name"}]}),
                    );
                }
                let generated = body
                    .get("generate_release_notes")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let notes = if generated {
                    let lines: Vec<String> = self
                        .pulls
                        .iter()
                        .filter(|p| !p["merged_at"].is_null())
                        .map(|p| {
                            format!(
                                "* {} by @{} in {}",
                                p["title"].as_str().unwrap_or(""),
                                p["user"]["login"].as_str().unwrap_or(""),
                                p["html_url"].as_str().unwrap_or("")
                            )
                        })
                        .collect();
                    format!("## What's Changed\n{}\n", lines.join("\n"))
                } else {
                    body.get("body")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let id = self.next_number();
                let release = json!({
                    "id": id, "tag_name": tag, "target_commitish": body.get("target_commitish").cloned().unwrap_or(json!("main")),
                    "name": body.get("name").and_then(Value::as_str).unwrap_or(tag), "body": notes,
                    "draft": body.get("draft").and_then(Value::as_bool).unwrap_or(false),
                    "prerelease": body.get("prerelease").and_then(Value::as_bool).unwrap_or(false),
                    "html_url": format!("https://github.com/{SIM_REPO}/releases/tag/{tag}"),
                    "created_at": iso(now), "author": user("ops-bot"),
                });
                self.releases.push(release.clone());
                self.ledger.mutated();
                ok(201, release)
            }
            ("GET", ["hooks"]) => page_of(self.hooks.clone(), q, url),
            ("GET", ["collaborators"]) => {
                let items = match q.get("affiliation").map(String::as_str) {
                    Some("outside") | Some("all") | None => self.collaborators.clone(),
                    _ => Vec::new(),
                };
                page_of(items, q, url)
            }
            ("GET", ["keys"]) => page_of(self.keys.clone(), q, url),
            ("GET", ["dependabot", "alerts"]) => {
                if self.dependabot_off {
                    return gh_error(403, "Dependabot alerts are disabled for this repository.");
                }
                let items = super::security_alerts::by_state(&self.dependabot_alerts, q);
                page_of(items, q, url)
            }
            ("GET", ["code-scanning", "alerts"]) => {
                let items = super::security_alerts::by_state(&self.code_scanning_alerts, q);
                page_of(items, q, url)
            }
            _ => gh_error(404, "Not Found"),
        }
    }
}

fn etag_of(body: &str) -> String {
    // FNV-1a: stable, cheap, good enough to tell bodies apart.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("W/\"{h:016x}\"")
}

fn fault_response(fault: Fault, now: DateTime<Utc>) -> ResponseTemplate {
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let message = match status {
                401 => "Bad credentials",
                403 | 429 => {
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                }
                404 => "Not Found",
                409 => "Conflict",
                422 => "Validation Failed",
                503 => "Service Unavailable",
                _ => "Server Error",
            };
            let mut t = json_template(status, &json!({"message": message, "documentation_url": DOCS, "status": status.to_string()}).to_string());
            if let Some(secs) = retry_after {
                t = t.insert_header("retry-after", secs.to_string().as_str());
            }
            t.insert_header("x-ratelimit-limit", "5000")
                .insert_header("x-ratelimit-remaining", "4000")
                .insert_header(
                    "x-ratelimit-reset",
                    (now.timestamp() + 3600).to_string().as_str(),
                )
        }
        Fault::Delay(d) => ResponseTemplate::new(504).set_delay(d),
        Fault::TruncatedJson => ResponseTemplate::new(200)
            .insert_header("content-type", "application/json; charset=utf-8")
            .set_body_string("{\"total_count\": 3, \"workflow_runs\": [{\"id\": 1"),
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

/// Every request, with the state locked.
fn respond(s: &mut State, req: &Request) -> ResponseTemplate {
    let method = req.method.as_str().to_string();
    let path = req.url.path().to_string();
    let now = s.clock.now();
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    if let Some(v) = req
        .headers
        .get("x-github-api-version")
        .and_then(|v| v.to_str().ok())
        && v != "2022-11-28"
        && v != "2026-03-10"
    {
        return json_template(400, &json!({"message": format!("Unsupported 'X-GitHub-Api-Version' header: {v}"), "documentation_url": DOCS, "status": "400"}).to_string());
    }
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => return json_template(400, &json!({"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"}).to_string()),
        }
    };
    let auth = header("authorization");
    if let Some(job) = path.strip_prefix(super::workflows::BLOB_PREFIX) {
        // The log storage is another host: a request carrying the API token there would be
        // a leak, and is refused.
        if !auth.is_empty() {
            return ResponseTemplate::new(403)
                .set_body_string("credentials sent to the log storage");
        }
        return match s.job_log(job) {
            Some(text) if method == "GET" => ResponseTemplate::new(200)
                .insert_header("content-type", "text/plain")
                .set_body_string(text),
            _ => ResponseTemplate::new(404).set_body_string("BlobNotFound"),
        };
    }
    if let ["app", "installations", id, "access_tokens"] = segments.as_slice()
        && method == "POST"
    {
        let out = s.mint_token(id, &auth, now);
        return finish(s, out, &method, "");
    }
    s.app_tokens.retain(|(_, exp)| *exp > now);
    let known = auth == format!("Bearer {SIM_TOKEN}")
        || s.app_tokens
            .iter()
            .any(|(t, _)| auth == format!("Bearer {t}"));
    if !known {
        return json_template(
            401,
            &json!({"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})
                .to_string(),
        );
    }
    if now >= s.rate_reset {
        s.rate_remaining = 5000;
        s.rate_reset = now + Duration::hours(1);
    }
    if s.rate_remaining == 0 {
        return json_template(403, &json!({"message": "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.", "documentation_url": DOCS, "status": "403"}).to_string())
            .insert_header("x-ratelimit-limit", "5000")
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", s.rate_reset.timestamp().to_string().as_str());
    }
    let query: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    // Links must point at the address the client used (wiremock reports `localhost`).
    let mut url = req.url.clone();
    if let Ok(base) = url::Url::parse(&format!("http://{}/", header("host"))) {
        let _ = url.set_host(base.host_str());
        let _ = url.set_port(base.port());
    }
    let out = s.route(&method, &segments, &query, &body, &url);
    finish(s, out, &method, &header("if-none-match"))
}

fn finish(s: &mut State, out: Out, method: &str, if_none_match: &str) -> ResponseTemplate {
    let body = out.body.map(|b| b.to_string());
    let etag =
        (method == "GET" && out.status == 200).then(|| etag_of(body.as_deref().unwrap_or("")));
    let not_modified = etag.as_deref().is_some_and(|e| e == if_none_match);
    // A 304 is free; everything else counts.
    if not_modified {
        s.not_modified += 1;
    } else {
        s.rate_remaining = s.rate_remaining.saturating_sub(1);
    }
    let mut t = if not_modified {
        ResponseTemplate::new(304)
    } else {
        match &body {
            Some(b) => json_template(out.status, b),
            None => ResponseTemplate::new(out.status),
        }
    };
    for (k, v) in out.headers {
        t = t.insert_header(k, v.as_str());
    }
    if let Some(e) = etag {
        t = t.insert_header("etag", e.as_str());
    }
    t.insert_header("x-ratelimit-limit", "5000")
        .insert_header(
            "x-ratelimit-remaining",
            s.rate_remaining.to_string().as_str(),
        )
        .insert_header(
            "x-ratelimit-reset",
            s.rate_reset.timestamp().to_string().as_str(),
        )
        .insert_header(
            "x-ratelimit-used",
            (5000 - s.rate_remaining.min(5000)).to_string().as_str(),
        )
        .insert_header("x-ratelimit-resource", "core")
        .insert_header("x-github-api-version-selected", "2022-11-28")
}

fn json_template(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/json; charset=utf-8")
        .set_body_string(body.to_string())
}
