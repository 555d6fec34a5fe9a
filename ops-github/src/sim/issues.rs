//! Issues in the simulator, rendered as the REST API does.

use serde_json::{Value, json};

use super::{SIM_REPO, SimIssue, State};

use super::replies::*;

impl State {
    pub(super) fn render_issue(&self, i: &SimIssue) -> Value {
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
}
