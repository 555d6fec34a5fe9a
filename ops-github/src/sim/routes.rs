//! The simulator's request handling.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use super::{
    Fault, SIM_APP_ID, SIM_ENVIRONMENT, SIM_INSTALLATION, SIM_ORG, SIM_REPO, SIM_TOKEN,
    SIM_WORKFLOW, ScopeKey, SimDeployment, SimIssue, SimRun, SimSecret, State,
};

const DOCS: &str = "https://docs.github.com/rest";
const ENVIRONMENTS: [&str; 2] = [SIM_ENVIRONMENT, "staging"];

/// One answer before headers common to all are added.
struct Out {
    status: u16,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

fn ok(status: u16, body: Value) -> Out {
    Out {
        status,
        body: Some(body),
        headers: Vec::new(),
    }
}

fn no_content() -> Out {
    Out {
        status: 204,
        body: None,
        headers: Vec::new(),
    }
}

fn gh_error(status: u16, message: &str) -> Out {
    ok(
        status,
        json!({"message": message, "documentation_url": DOCS, "status": status.to_string()}),
    )
}

fn validation(field: &str, code: &str, message: &str) -> Out {
    ok(
        422,
        json!({"message": "Validation Failed", "documentation_url": DOCS, "status": "422",
            "errors": [{"resource": "Request", "field": field, "code": code, "message": message}]}),
    )
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A `simple-user`, with every field the description requires.
pub(super) fn user(login: &str) -> Value {
    let api = format!("https://api.github.com/users/{login}");
    json!({
        "login": login, "id": 1, "node_id": "U_sim", "type": "User", "site_admin": false,
        "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4", "gravatar_id": "",
        "url": api, "html_url": format!("https://github.com/{login}"),
        "events_url": format!("{api}/events{{/privacy}}"), "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"), "organizations_url": format!("{api}/orgs"),
        "received_events_url": format!("{api}/received_events"), "repos_url": format!("{api}/repos"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
    })
}

/// A `minimal-repository` for the simulated repository, with every required field.
fn repository() -> Value {
    let api = format!("https://api.github.com/repos/{SIM_REPO}");
    let (owner, name) = SIM_REPO.split_once('/').unwrap_or((SIM_REPO, SIM_REPO));
    let mut v = json!({
        "id": 1296269, "node_id": "R_sim", "name": name, "full_name": SIM_REPO,
        "owner": user(owner), "private": true, "fork": false, "description": null,
        "html_url": format!("https://github.com/{SIM_REPO}"), "url": api,
    });
    for (field, rest) in [
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ] {
        v[field] = json!(format!("{api}{rest}"));
    }
    v
}

/// One page of `items` and its `Link` header (`per_page` ≤ 100, default 30).
fn paginate(
    items: Vec<Value>,
    q: &BTreeMap<String, String>,
    url: &url::Url,
) -> (Vec<Value>, Option<String>) {
    let per_page = q
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = q
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let start = (page - 1) * per_page;
    let out: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
    let link_to = |p: usize, rel: &str| {
        let mut u = url.clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        u.query_pairs_mut()
            .clear()
            .extend_pairs(pairs)
            .append_pair("page", &p.to_string());
        format!("<{u}>; rel=\"{rel}\"")
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link_to(page + 1, "next"));
        links.push(link_to(last, "last"));
    }
    if page > 1 {
        links.push(link_to(1, "first"));
        links.push(link_to(page - 1, "prev"));
    }
    (out, (!links.is_empty()).then(|| links.join(", ")))
}

fn page_of(items: Vec<Value>, q: &BTreeMap<String, String>, url: &url::Url) -> Out {
    let (items, link) = paginate(items, q, url);
    let mut out = ok(200, Value::Array(items));
    if let Some(l) = link {
        out.headers.push(("link", l));
    }
    out
}

fn wrapped_page(key: &str, items: Vec<Value>, q: &BTreeMap<String, String>, url: &url::Url) -> Out {
    let total = items.len();
    let (items, link) = paginate(items, q, url);
    let mut out = ok(200, json!({"total_count": total, key: items}));
    if let Some(l) = link {
        out.headers.push(("link", l));
    }
    out
}

/// `>=2026-01-01T00:00:00Z` (the only form of `created` the simulator needs).
fn created_since(q: &BTreeMap<String, String>) -> Option<DateTime<Utc>> {
    q.get("created")?.strip_prefix(">=")?.parse().ok()
}

impl State {
    fn run_status(&self, r: &SimRun) -> (&'static str, Option<&'static str>) {
        let age = (self.clock.now() - r.attempt_started)
            .to_std()
            .unwrap_or_default();
        if age < self.run_time / 10 {
            ("queued", None)
        } else if age < self.run_time {
            ("in_progress", None)
        } else if r.fails {
            ("completed", Some("failure"))
        } else {
            ("completed", Some("success"))
        }
    }

    /// A finished deploy run records its deployment: `success` (the earlier one goes
    /// `inactive`) when promoted, `inactive` when only staged, `failure` when the run failed.
    fn settle(&mut self) {
        let now = self.clock.now();
        let done: Vec<usize> = (0..self.runs.len())
            .filter(|&i| !self.runs[i].settled && self.run_status(&self.runs[i]).0 == "completed")
            .collect();
        for i in done {
            self.runs[i].settled = true;
            let run = self.runs[i].clone();
            if run.workflow != SIM_WORKFLOW {
                continue;
            }
            let env = run
                .inputs
                .get("environment")
                .cloned()
                .unwrap_or_else(|| SIM_ENVIRONMENT.into());
            let version = run.inputs.get("version").cloned().unwrap_or_default();
            let promote = run.inputs.get("promote").map(String::as_str) != Some("false");
            let at =
                run.attempt_started + chrono::Duration::from_std(self.run_time).unwrap_or_default();
            let state = if run.fails {
                "failure"
            } else if promote {
                "success"
            } else {
                "inactive"
            };
            if state == "success" {
                for d in self.deployments.iter_mut().filter(|d| d.environment == env) {
                    if d.statuses.last().is_some_and(|s| s.0 == "success") {
                        d.statuses.push(("inactive".into(), s_url(), at.min(now)));
                    }
                }
            }
            let id = self.next_number();
            self.deployments.push(SimDeployment {
                id,
                environment: env,
                version,
                sha: format!("{:040x}", run.id),
                created: at.min(now),
                statuses: vec![
                    ("in_progress".into(), None, at.min(now)),
                    (state.into(), s_url(), at.min(now)),
                ],
            });
        }
    }

    fn render_run(&self, r: &SimRun) -> Value {
        let (status, conclusion) = self.run_status(r);
        let name = if r.workflow == SIM_WORKFLOW {
            "Deploy"
        } else {
            "CI"
        };
        json!({
            "id": r.id, "name": name, "node_id": "WFR_sim", "head_branch": r.git_ref,
            "head_sha": format!("{:040x}", r.id), "path": format!(".github/workflows/{}@{}", r.workflow, r.git_ref),
            "run_number": r.id - 1000, "event": r.event,
            "display_title": r.inputs.get("version").map_or(name.to_string(), |v| format!("Deploy {v}")),
            "status": status, "conclusion": conclusion, "workflow_id": if r.workflow == SIM_WORKFLOW { 161335 } else { 161336 },
            "url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}", r.id),
            "html_url": format!("https://github.com/{SIM_REPO}/actions/runs/{}", r.id),
            "pull_requests": [], "created_at": iso(r.created), "updated_at": iso(self.clock.now().min(r.attempt_started + chrono::Duration::from_std(self.run_time).unwrap_or_default())),
            "actor": user("ops-bot"), "run_attempt": r.attempt, "run_started_at": iso(r.attempt_started),
            "triggering_actor": user("ops-bot"),
            "jobs_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}/jobs", r.id),
            "logs_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}/logs", r.id),
            "check_suite_url": format!("https://api.github.com/repos/{SIM_REPO}/check-suites/{}", r.id),
            "cancel_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}/cancel", r.id),
            "rerun_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}/rerun", r.id),
            "artifacts_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}/artifacts", r.id),
            "workflow_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/workflows/{}", r.workflow),
            "head_commit": {"id": format!("{:040x}", r.id), "tree_id": format!("{:040x}", r.id + 1),
                            "message": format!("deploy {}", r.git_ref), "timestamp": iso(r.created),
                            "author": {"name": "ops-bot", "email": "ops-bot@users.noreply.github.com"},
                            "committer": {"name": "GitHub", "email": "noreply@github.com"}},
            "repository": repository(), "head_repository": repository(),
        })
    }

    fn render_issue(&self, i: &SimIssue) -> Value {
        let mut v = json!({
            "id": i.number * 10, "node_id": "I_sim", "number": i.number, "state": i.state,
            "state_reason": i.state_reason, "title": i.title, "body": i.body,
            "url": format!("https://api.github.com/repos/{SIM_REPO}/issues/{}", i.number),
            "html_url": format!("https://github.com/{SIM_REPO}/issues/{}", i.number),
            "labels": i.labels.iter().map(|l| json!({"id": 1, "name": l, "color": "d73a4a", "default": false})).collect::<Vec<_>>(),
            "assignees": i.assignees.iter().map(|a| user(a)).collect::<Vec<_>>(),
            "user": user("ops-bot"), "comments": i.comments.len(), "locked": false,
            "created_at": iso(i.created), "updated_at": iso(i.updated),
            "closed_at": if i.state == "closed" { json!(iso(i.updated)) } else { Value::Null },
            "assignee": i.assignees.first().map_or(Value::Null, |a| user(a)), "milestone": null,
            "repository_url": format!("https://api.github.com/repos/{SIM_REPO}"),
            "comments_url": format!("https://api.github.com/repos/{SIM_REPO}/issues/{}/comments", i.number),
            "events_url": format!("https://api.github.com/repos/{SIM_REPO}/issues/{}/events", i.number),
            "labels_url": format!("https://api.github.com/repos/{SIM_REPO}/issues/{}/labels{{/name}}", i.number),
        });
        if i.pull_request {
            v["pull_request"] = json!({
                "url": format!("https://api.github.com/repos/{SIM_REPO}/pulls/{}", i.number),
                "html_url": format!("https://github.com/{SIM_REPO}/pull/{}", i.number),
                "diff_url": format!("https://github.com/{SIM_REPO}/pull/{}.diff", i.number),
                "patch_url": format!("https://github.com/{SIM_REPO}/pull/{}.patch", i.number),
            });
        }
        v
    }

    fn scope_key(&mut self, scope: &str) -> (String, String) {
        if !self.scope_keys.contains_key(scope) {
            let key_id = format!("{}", 568250167242549743u64 + self.scope_keys.len() as u64);
            let secret = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
            self.scope_keys
                .insert(scope.to_string(), ScopeKey { key_id, secret });
        }
        let k = &self.scope_keys[scope];
        (
            k.key_id.clone(),
            STANDARD.encode(k.secret.public_key().as_bytes()),
        )
    }

    fn secrets_route(
        &mut self,
        method: &str,
        scope: &str,
        rest: &[&str],
        q: &BTreeMap<String, String>,
        body: &Value,
        url: &url::Url,
    ) -> Out {
        let now = self.clock.now();
        let org = scope.starts_with("orgs/");
        let render = |name: &str, s: &SimSecret| {
            let mut v =
                json!({"name": name, "created_at": iso(s.created), "updated_at": iso(s.updated)});
            if let Some(vis) = &s.visibility {
                v["visibility"] = json!(vis);
                if vis == "selected" {
                    v["selected_repositories_url"] = json!(format!(
                        "https://api.github.com/{scope}/{name}/repositories"
                    ));
                }
            }
            v
        };
        match (method, rest) {
            ("GET", []) => {
                let items: Vec<Value> = self
                    .secrets
                    .iter()
                    .filter(|((s, _), _)| s == scope)
                    .map(|((_, n), v)| render(n, v))
                    .collect();
                wrapped_page("secrets", items, q, url)
            }
            ("GET", ["public-key"]) => {
                let (key_id, key) = self.scope_key(scope);
                ok(200, json!({"key_id": key_id, "key": key}))
            }
            ("GET", [name]) => match self.secrets.get(&(scope.to_string(), name.to_string())) {
                Some(s) => ok(200, render(name, s)),
                None => gh_error(404, "Not Found"),
            },
            ("PUT", [name]) => {
                let (key_id, _) = self.scope_key(scope);
                let Some(sent_key) = body.get("key_id").and_then(Value::as_str) else {
                    return validation("key_id", "missing_field", "key_id is required");
                };
                if sent_key != key_id {
                    return gh_error(
                        422,
                        "Bad request - key_id does not match the current public key",
                    );
                }
                let Some(ciphertext) = body
                    .get("encrypted_value")
                    .and_then(Value::as_str)
                    .and_then(|v| STANDARD.decode(v).ok())
                else {
                    return validation(
                        "encrypted_value",
                        "invalid",
                        "encrypted_value is not base64",
                    );
                };
                if ciphertext.len() < 48 {
                    return gh_error(422, "Bad request - encrypted_value is not a sealed box");
                }
                let visibility = if org {
                    match body.get("visibility").and_then(Value::as_str) {
                        Some(v @ ("all" | "private" | "selected")) => Some(v.to_string()),
                        _ => {
                            return validation(
                                "visibility",
                                "missing_field",
                                "visibility is required for organization secrets",
                            );
                        }
                    }
                } else {
                    None
                };
                self.mutations += 1;
                let key = (scope.to_string(), name.to_string());
                match self.secrets.get_mut(&key) {
                    Some(s) => {
                        s.ciphertext = ciphertext;
                        s.updated = now;
                        s.visibility = visibility;
                        no_content()
                    }
                    None => {
                        self.secrets.insert(
                            key,
                            SimSecret {
                                ciphertext,
                                created: now,
                                updated: now,
                                visibility,
                            },
                        );
                        ok(201, json!({}))
                    }
                }
            }
            ("DELETE", [name]) => match self.secrets.remove(&(scope.to_string(), name.to_string()))
            {
                Some(_) => {
                    self.mutations += 1;
                    no_content()
                }
                None => gh_error(404, "Not Found"),
            },
            _ => gh_error(404, "Not Found"),
        }
    }

    fn route(
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

    fn repo_route(
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
                self.mutations += 1;
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
                        self.mutations += 1;
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
                        self.mutations += 1;
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
            ("GET", ["actions", "workflows", wf, "runs"]) => {
                if *wf != SIM_WORKFLOW && *wf != "161335" {
                    return gh_error(404, "Not Found");
                }
                let items = self.list_runs(q, Some(SIM_WORKFLOW));
                wrapped_page("workflow_runs", items, q, url)
            }
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
                        self.mutations += 1;
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
                self.mutations += 1;
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
            _ => gh_error(404, "Not Found"),
        }
    }

    fn list_runs(&self, q: &BTreeMap<String, String>, workflow: Option<&str>) -> Vec<Value> {
        let since = created_since(q);
        let mut runs: Vec<&SimRun> = self
            .runs
            .iter()
            .filter(|r| workflow.is_none_or(|w| r.workflow == w))
            .filter(|r| q.get("event").is_none_or(|e| *e == r.event))
            .filter(|r| q.get("branch").is_none_or(|b| *b == r.git_ref))
            .filter(|r| since.is_none_or(|s| r.created >= s))
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse((r.created, r.id)));
        runs.into_iter().map(|r| self.render_run(r)).collect()
    }

    fn dispatch(&mut self, wf: &str, body: &Value, now: DateTime<Utc>) -> Out {
        if wf != SIM_WORKFLOW && wf != "161335" {
            return gh_error(404, "Not Found");
        }
        let Some(git_ref) = body.get("ref").and_then(Value::as_str) else {
            return validation("ref", "missing_field", "ref is required");
        };
        if git_ref != "main" {
            return gh_error(422, &format!("No ref found for: {git_ref}"));
        }
        let inputs: BTreeMap<String, String> = match body.get("inputs") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(m)) => {
                if m.len() > 25 {
                    return gh_error(422, "inputs are too large (at most 25 properties)");
                }
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let Some(v) = v.as_str() else {
                        return gh_error(422, &format!("Invalid value for input '{k}'"));
                    };
                    if !["version", "environment", "promote"].contains(&k.as_str()) {
                        return gh_error(422, &format!("Unexpected inputs provided: [\"{k}\"]"));
                    }
                    out.insert(k.clone(), v.to_string());
                }
                out
            }
            Some(_) => return gh_error(422, "inputs must be an object"),
        };
        if !inputs.contains_key("version") {
            return gh_error(422, "Required input 'version' not provided");
        }
        if let Some(p) = inputs.get("promote")
            && p != "true"
            && p != "false"
        {
            return gh_error(422, "Provided value for input 'promote' is not a boolean");
        }
        let id = self.next_number();
        let fails = self.failing_versions.contains(&inputs["version"]);
        self.runs.push(SimRun {
            id,
            workflow: SIM_WORKFLOW.into(),
            git_ref: git_ref.into(),
            event: "workflow_dispatch".into(),
            inputs,
            created: now,
            attempt: 1,
            attempt_started: now,
            fails,
            settled: false,
        });
        self.mutations += 1;
        if self.return_run_details
            && body.get("return_run_details").and_then(Value::as_bool) == Some(true)
        {
            ok(
                200,
                json!({
                    "workflow_run_id": id,
                    "run_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{id}"),
                    "html_url": format!("https://github.com/{SIM_REPO}/actions/runs/{id}"),
                }),
            )
        } else {
            no_content()
        }
    }

    /// `POST /app/installations/{id}/access_tokens` with an App JWT whose issuer is the
    /// simulated App and which has not expired. (The signature is checked by the API tests;
    /// the simulator has no App key of its own.)
    fn mint_token(&mut self, installation: &str, auth: &str, now: DateTime<Utc>) -> Out {
        if installation != SIM_INSTALLATION.to_string() {
            return gh_error(404, "Not Found");
        }
        let claims = auth
            .strip_prefix("Bearer ")
            .and_then(|jwt| jwt.split('.').nth(1))
            .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
            .and_then(|c| serde_json::from_slice::<Value>(&c).ok());
        let Some(claims) = claims else {
            return gh_error(401, "A JSON web token could not be decoded");
        };
        let exp = claims["exp"].as_i64().unwrap_or(0);
        if claims["iss"].as_str() != Some(SIM_APP_ID)
            || exp <= now.timestamp()
            || exp - claims["iat"].as_i64().unwrap_or(0) > 600
        {
            return gh_error(
                401,
                "'Expiration time' claim ('exp') is too far in the future",
            );
        }
        let token = format!("ghs_sim{:030}", self.next_number());
        let expires = now + Duration::hours(1);
        self.app_tokens.push((token.clone(), expires));
        ok(
            201,
            json!({"token": token, "expires_at": iso(expires), "permissions": {"issues": "write", "actions": "write", "secrets": "write"}, "repository_selection": "all"}),
        )
    }
}

fn s_url() -> Option<String> {
    Some("https://app.acme.dev".into())
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

/// Every request, with the state locked.
pub(super) fn respond(s: &mut State, req: &Request) -> ResponseTemplate {
    let method = req.method.as_str().to_string();
    let path = req.url.path().to_string();
    s.requests.push(match req.url.query() {
        Some(q) => format!("{method} {path}?{q}"),
        None => format!("{method} {path}"),
    });
    let now = s.clock.now();
    if let Some(fault) = s.faults.take(&method, &path) {
        return fault_response(fault, now);
    }
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
