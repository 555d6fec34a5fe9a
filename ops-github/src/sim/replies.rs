//! The shapes of the simulator's answers: statuses, errors, users, repositories, pages.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{SIM_ENVIRONMENT, SIM_REPO};

pub(super) const DOCS: &str = "https://docs.github.com/rest";
pub(super) const ENVIRONMENTS: [&str; 2] = [SIM_ENVIRONMENT, "staging"];

/// One answer before headers common to all are added.
pub(super) struct Out {
    pub(super) status: u16,
    pub(super) body: Option<Value>,
    pub(super) headers: Vec<(&'static str, String)>,
}

pub(super) fn ok(status: u16, body: Value) -> Out {
    Out {
        status,
        body: Some(body),
        headers: Vec::new(),
    }
}

pub(super) fn no_content() -> Out {
    Out {
        status: 204,
        body: None,
        headers: Vec::new(),
    }
}

pub(super) fn gh_error(status: u16, message: &str) -> Out {
    ok(
        status,
        json!({"message": message, "documentation_url": DOCS, "status": status.to_string()}),
    )
}

pub(super) fn validation(field: &str, code: &str, message: &str) -> Out {
    ok(
        422,
        json!({"message": "Validation Failed", "documentation_url": DOCS, "status": "422",
            "errors": [{"resource": "Request", "field": field, "code": code, "message": message}]}),
    )
}

pub(super) fn iso(t: DateTime<Utc>) -> String {
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
pub(super) fn repository() -> Value {
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
pub(super) fn paginate(
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

pub(super) fn page_of(items: Vec<Value>, q: &BTreeMap<String, String>, url: &url::Url) -> Out {
    let (items, link) = paginate(items, q, url);
    let mut out = ok(200, Value::Array(items));
    if let Some(l) = link {
        out.headers.push(("link", l));
    }
    out
}

pub(super) fn wrapped_page(
    key: &str,
    items: Vec<Value>,
    q: &BTreeMap<String, String>,
    url: &url::Url,
) -> Out {
    let total = items.len();
    let (items, link) = paginate(items, q, url);
    let mut out = ok(200, json!({"total_count": total, key: items}));
    if let Some(l) = link {
        out.headers.push(("link", l));
    }
    out
}

/// `>=2026-01-01T00:00:00Z` (the only form of `created` the simulator needs).
pub(super) fn created_since(q: &BTreeMap<String, String>) -> Option<DateTime<Utc>> {
    q.get("created")?.strip_prefix(">=")?.parse().ok()
}

/// The environment URL the simulated deployments report.
pub(super) fn s_url() -> Option<String> {
    Some("https://app.acme.dev".into())
}
