//! The simulator's starting repository: a week of activity and a production deployment.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::replies::user;
use super::{SIM_ENVIRONMENT, SIM_REPO, SIM_WORKFLOW, SimDeployment, SimRun, State};

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn sha(n: u64) -> String {
    format!("{n:040x}")
}

pub(super) fn seed(s: &mut State, now: DateTime<Utc>) {
    let base = format!("https://github.com/{SIM_REPO}");
    // v0.9.0 served until v1.0.0 replaced it a day ago.
    for (version, age_h, state) in [("v0.9.0", 72, "inactive"), ("v1.0.0", 24, "success")] {
        let id = s.next_number();
        let at = now - Duration::hours(age_h);
        s.deployments.push(SimDeployment {
            id,
            environment: SIM_ENVIRONMENT.into(),
            version: version.into(),
            sha: sha(id),
            created: at,
            statuses: vec![
                ("success".into(), Some("https://app.acme.dev".into()), at),
                (state.into(), Some("https://app.acme.dev".into()), at),
            ],
        });
        let run = s.next_number();
        s.runs.push(SimRun {
            id: run,
            workflow: SIM_WORKFLOW.into(),
            git_ref: "main".into(),
            event: "workflow_dispatch".into(),
            inputs: [("version".to_string(), version.to_string())].into(),
            created: at - Duration::minutes(3),
            attempt: 1,
            attempt_started: at - Duration::minutes(3),
            fails: false,
            settled: true,
        });
    }
    let failed_push = s.next_number();
    s.runs.push(SimRun {
        id: failed_push,
        workflow: "ci.yml".into(),
        git_ref: "main".into(),
        event: "push".into(),
        inputs: Default::default(),
        created: now - Duration::hours(30),
        attempt: 1,
        attempt_started: now - Duration::hours(30),
        fails: true,
        settled: true,
    });
    for (i, (title, author, age_h)) in [
        ("Fix retry of payment webhooks", "mona", 5),
        ("Bump tokio to 1.47", "dependabot[bot]", 20),
        ("Add canary metrics", "hubot", 50),
        ("Tidy logging", "mona", 100),
        ("Initial import", "octocat", 300),
    ]
    .into_iter()
    .enumerate()
    {
        let at = now - Duration::hours(age_h);
        let commit_sha = sha(0xc0ffee + i as u64);
        let api = format!("https://api.github.com/repos/{SIM_REPO}");
        // The account shapes GitHub sends: a user, `null` (an email tied to no account) and
        // `{}` (seen in real replies, and in the description).
        let account = match author {
            a if a.starts_with("dependabot") => serde_json::Value::Null,
            "octocat" => json!({}),
            a => user(a),
        };
        s.commits.push(json!({
            "sha": commit_sha, "node_id": "C_sim",
            "html_url": format!("{base}/commit/{commit_sha}"),
            "url": format!("{api}/commits/{commit_sha}"),
            "comments_url": format!("{api}/commits/{commit_sha}/comments"),
            "commit": {
                "url": format!("{api}/git/commits/{commit_sha}"),
                "message": format!("{title}\n\nDetails of the change."),
                "author": {"name": author, "email": format!("{author}@example.com"), "date": iso(at)},
                "committer": {"name": author, "email": format!("{author}@example.com"), "date": iso(at)},
                "tree": {"sha": sha(0xbeef + i as u64), "url": format!("{api}/git/trees/{}", sha(0xbeef + i as u64))},
                "comment_count": 0,
            },
            "author": account.clone(), "committer": account,
            "parents": [],
        }));
    }
    for (number, title, merged_h, updated_h) in [
        (41u64, "Fix retry of payment webhooks", Some(5), 5),
        (40, "Bump tokio to 1.47", Some(20), 20),
        (39, "Experiment: new cache (abandoned)", None, 30),
        (38, "Add canary metrics", Some(50), 49),
        (30, "Initial import", Some(300), 300),
    ] {
        s.pulls.push(json!({
            "number": number, "state": "closed", "title": title,
            "html_url": format!("{base}/pull/{number}"),
            "user": {"login": "mona", "id": 1, "type": "User"},
            "created_at": iso(now - Duration::hours(updated_h + 24)),
            "updated_at": iso(now - Duration::hours(updated_h)),
            "closed_at": iso(now - Duration::hours(updated_h)),
            "merged_at": merged_h.map(|h| iso(now - Duration::hours(h))),
            "base": {"ref": "main", "sha": sha(1)}, "head": {"ref": format!("topic-{number}"), "sha": sha(2)},
        }));
    }
    s.releases.push(json!({
        "id": 1, "tag_name": "v1.0.0", "name": "v1.0.0", "body": "First release", "draft": false,
        "prerelease": false, "html_url": format!("{base}/releases/tag/v1.0.0"),
        "created_at": iso(now - Duration::hours(24)),
    }));
    s.hooks = vec![
        json!({"type": "Repository", "id": 1, "name": "web", "active": true, "events": ["push"],
            "config": {"content_type": "json", "insecure_ssl": "0", "url": "https://ci.acme.dev/hook", "secret": "********"},
            "created_at": iso(now - Duration::days(200)), "updated_at": iso(now - Duration::days(200)),
            "last_response": {"code": 200, "status": "active", "message": "OK"}}),
        json!({"type": "Repository", "id": 2, "name": "web", "active": true, "events": ["*"],
            "config": {"content_type": "form", "insecure_ssl": "1", "url": "http://legacy.acme.dev/hook"},
            "created_at": iso(now - Duration::days(900)), "updated_at": iso(now - Duration::days(900)),
            "last_response": {"code": 502, "status": "active", "message": "Bad Gateway"}}),
    ];
    s.collaborators = vec![
        json!({"login": "contractor-admin", "id": 11, "type": "User", "site_admin": false,
            "permissions": {"pull": true, "triage": true, "push": true, "maintain": true, "admin": true}, "role_name": "admin"}),
        json!({"login": "auditor", "id": 12, "type": "User", "site_admin": false,
            "permissions": {"pull": true, "triage": false, "push": false, "maintain": false, "admin": false}, "role_name": "read"}),
    ];
    s.keys = vec![
        json!({"id": 1, "key": "ssh-ed25519 AAAAC3Nza...", "url": format!("https://api.github.com/repos/{SIM_REPO}/keys/1"),
            "title": "deploy-bot", "verified": true, "created_at": iso(now - Duration::days(30)), "read_only": true,
            "added_by": "mona", "last_used": iso(now - Duration::days(1)), "enabled": true}),
        json!({"id": 2, "key": "ssh-rsa AAAAB3Nza...", "url": format!("https://api.github.com/repos/{SIM_REPO}/keys/2"),
            "title": "old-ci", "verified": true, "created_at": iso(now - Duration::days(800)), "read_only": false,
            "added_by": "octocat", "last_used": null, "enabled": true}),
    ];
    s.dependabot_alerts = super::security_alerts::dependabot(now);
    s.code_scanning_alerts = super::security_alerts::code_scanning(now);
}
