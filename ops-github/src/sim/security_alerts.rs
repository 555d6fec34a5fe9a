//! Dependabot and code-scanning alerts in the simulator, in the shapes of GitHub's OpenAPI
//! description: a critical advisory with a fix, a moderate one without, one dismissed and one
//! fixed; a high-severity SQL injection found by CodeQL and a note.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::SIM_REPO;
use super::replies::{iso, user};

/// The alerts whose `state` matches the query's (all without one).
pub(super) fn by_state(alerts: &[Value], q: &BTreeMap<String, String>) -> Vec<Value> {
    alerts
        .iter()
        .filter(|a| {
            q.get("state")
                .is_none_or(|want| want.split(',').any(|w| a["state"] == *w))
        })
        .cloned()
        .collect()
}

/// One advisory as the simulator seeds it.
struct Advisory<'a> {
    package: (&'a str, &'a str),
    severity: &'a str,
    summary: &'a str,
    range: &'a str,
    patched: Option<&'a str>,
}

fn dependabot_alert(number: u64, state: &str, a: Advisory<'_>, created: DateTime<Utc>) -> Value {
    let Advisory {
        package: (ecosystem, name),
        severity,
        summary,
        range,
        patched,
    } = a;
    let pkg = json!({"ecosystem": ecosystem, "name": name});
    let patched = patched.map(|v| json!({"identifier": v}));
    let vuln = json!({"package": pkg, "severity": severity, "vulnerable_version_range": range,
        "first_patched_version": patched});
    json!({
        "number": number, "state": state,
        "dependency": {"package": pkg, "manifest_path": "package-lock.json", "scope": "runtime", "relationship": "direct"},
        "security_advisory": {
            "ghsa_id": format!("GHSA-sim{number:04}-xxxx-yyyy"), "cve_id": format!("CVE-2026-{:05}", 10000 + number),
            "summary": summary, "description": summary, "severity": severity,
            "identifiers": [{"type": "GHSA", "value": format!("GHSA-sim{number:04}-xxxx-yyyy")}],
            "references": [], "published_at": iso(created), "updated_at": iso(created), "withdrawn_at": null,
            "vulnerabilities": [vuln.clone()],
            "cvss": {"vector_string": null, "score": 9.1}, "cwes": [],
        },
        "security_vulnerability": vuln,
        "url": format!("https://api.github.com/repos/{SIM_REPO}/dependabot/alerts/{number}"),
        "html_url": format!("https://github.com/{SIM_REPO}/security/dependabot/{number}"),
        "created_at": iso(created), "updated_at": iso(created),
        "dismissed_at": if state == "dismissed" { json!(iso(created)) } else { Value::Null },
        "dismissed_by": if state == "dismissed" { user("mona") } else { Value::Null },
        "dismissed_reason": if state == "dismissed" { json!("tolerable_risk") } else { Value::Null },
        "dismissed_comment": null,
        "fixed_at": if state == "fixed" { json!(iso(created)) } else { Value::Null },
        "auto_dismissed_at": null,
    })
}

pub(super) fn dependabot(now: DateTime<Utc>) -> Vec<Value> {
    let advisory = |package, severity, summary, range, patched| Advisory {
        package,
        severity,
        summary,
        range,
        patched,
    };
    vec![
        dependabot_alert(
            1,
            "open",
            advisory(
                ("npm", "lodash"),
                "critical",
                "Prototype pollution in lodash",
                "< 4.17.21",
                Some("4.17.21"),
            ),
            now - Duration::days(40),
        ),
        dependabot_alert(
            2,
            "open",
            advisory(
                ("npm", "tar"),
                "medium",
                "Arbitrary file write in tar",
                "<= 6.2.0",
                None,
            ),
            now - Duration::days(3),
        ),
        dependabot_alert(
            3,
            "dismissed",
            advisory(
                ("npm", "minimist"),
                "high",
                "Prototype pollution in minimist",
                "< 1.2.6",
                Some("1.2.6"),
            ),
            now - Duration::days(90),
        ),
        dependabot_alert(
            4,
            "fixed",
            advisory(
                ("npm", "axios"),
                "high",
                "SSRF in axios",
                "< 1.7.4",
                Some("1.7.4"),
            ),
            now - Duration::days(20),
        ),
    ]
}

fn code_scanning_alert(
    number: u64,
    rule: (&str, &str, Option<&str>, &str),
    at: (&str, u64),
    created: DateTime<Utc>,
) -> Value {
    let (id, severity, security, description) = rule;
    let (path, line) = at;
    json!({
        "number": number, "state": "open", "created_at": iso(created), "updated_at": iso(created),
        "url": format!("https://api.github.com/repos/{SIM_REPO}/code-scanning/alerts/{number}"),
        "html_url": format!("https://github.com/{SIM_REPO}/security/code-scanning/{number}"),
        "instances_url": format!("https://api.github.com/repos/{SIM_REPO}/code-scanning/alerts/{number}/instances"),
        "fixed_at": null, "dismissed_by": null, "dismissed_at": null, "dismissed_reason": null, "dismissed_comment": null,
        "rule": {"id": id, "name": id, "severity": severity, "security_severity_level": security,
            "description": description, "tags": ["security"]},
        "tool": {"name": "CodeQL", "guid": null, "version": "2.19.0"},
        "most_recent_instance": {"ref": "refs/heads/main", "analysis_key": ".github/workflows/codeql.yml:analyze",
            "environment": "{}", "category": ".github/workflows/codeql.yml:analyze", "state": "open",
            "commit_sha": format!("{:040x}", number), "message": {"text": description},
            "location": {"path": path, "start_line": line, "end_line": line, "start_column": 5, "end_column": 40},
            "classifications": []},
    })
}

pub(super) fn code_scanning(now: DateTime<Utc>) -> Vec<Value> {
    vec![
        code_scanning_alert(
            7,
            (
                "js/sql-injection",
                "error",
                Some("high"),
                "Database query built from user-controlled sources",
            ),
            ("src/db.ts", 42),
            now - Duration::days(12),
        ),
        code_scanning_alert(
            8,
            (
                "js/unused-local-variable",
                "note",
                None,
                "Unused variable, import, function or class",
            ),
            ("src/util.ts", 7),
            now - Duration::days(2),
        ),
    ]
}
