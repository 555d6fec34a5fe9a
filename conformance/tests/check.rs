//! The checker itself: it must accept what the descriptions allow and catch what they do not,
//! on the vendored descriptions and on small hand-made ones.

use std::path::PathBuf;

use ops_conformance::report::{Report, load_descriptions};
use ops_conformance::{Description, check, path_matches};
use ops_core::http::record::RecordedRequest;
use proptest::prelude::*;
use serde_json::json;

fn vendored() -> Vec<Description> {
    load_descriptions(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("descriptions")).unwrap()
}

fn request(provider: &str, method: &str, path: &str, query: &[(&str, &str)]) -> RecordedRequest {
    RecordedRequest {
        provider: provider.into(),
        operation: "test".into(),
        method: method.into(),
        path: path.into(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        content_type: None,
        body: None,
        reply_status: None,
        reply: None,
    }
}

fn of(provider: &str) -> Vec<Description> {
    vendored()
        .into_iter()
        .filter(|d| d.provider == provider)
        .collect()
}

#[test]
fn templates_match_segments_and_reserved_expansions() {
    assert!(path_matches(
        "/storage/v1/b/{bucket}/o/{object}",
        "/storage/v1/b/acme/o/backup%2Fa.db"
    ));
    assert!(!path_matches(
        "/storage/v1/b/{bucket}/o/{object}",
        "/storage/v1/b/acme/o/backup/a.db"
    ));
    assert!(!path_matches(
        "/storage/v1/b/{bucket}/o/{object}",
        "/storage/v1/b/acme/o/"
    ));
    assert!(path_matches(
        "/v2/{+name}",
        "/v2/projects/p/locations/l/services/s"
    ));
    assert!(!path_matches("/v2/{+name}", "/v2/"));
    assert!(path_matches(
        "/v1/projects/{projectsId}/secrets/{secretsId}:addVersion",
        "/v1/projects/p/secrets/db-url:addVersion"
    ));
    assert!(!path_matches(
        "/v1/projects/{projectsId}/secrets/{secretsId}:addVersion",
        "/v1/projects/p/secrets/db-url"
    ));
    assert!(path_matches(
        "/repositories/{+rest}",
        "/repositories/1296269/issues"
    ));
}

proptest! {
    #[test]
    fn matching_never_panics(t in "[a-z{}+:/]{0,30}", p in "[a-z%0-9:/]{0,30}") {
        let _ = path_matches(&t, &p);
    }
}

#[test]
fn the_vendored_descriptions_load_and_cover_the_providers() {
    let all = vendored();
    for provider in [
        "gcp",
        "github",
        "vercel",
        "pagerduty",
        "prometheus",
        "slack",
    ] {
        let ops: usize = all
            .iter()
            .filter(|d| d.provider == provider)
            .map(|d| d.operations.len())
            .sum();
        assert!(ops >= 1, "{provider}: {ops} operations");
    }
}

#[test]
fn described_requests_pass() {
    let gcp = of("gcp");
    let ok = [
        request(
            "gcp",
            "GET",
            "/storage/v1/b/acme/o",
            &[
                ("prefix", "backup/"),
                ("maxResults", "1000"),
                ("pageToken", "x"),
            ],
        ),
        request(
            "gcp",
            "POST",
            "/storage/v1/b/acme/o/a.db/rewriteTo/b/acme/o/backup%2Fa.db",
            &[
                ("ifGenerationMatch", "0"),
                ("ifSourceGenerationMatch", "17"),
            ],
        ),
        request(
            "gcp",
            "PUT",
            "/upload/storage/v1/b/acme/o",
            &[("uploadType", "resumable"), ("upload_id", "ADPycdu")],
        ),
    ];
    for r in ok {
        assert_eq!(check(&gcp, &r), vec![], "{r:?}");
    }
}

#[test]
fn unknown_parameters_wrong_types_and_missing_ones_are_caught() {
    let gcp = of("gcp");
    let bad_type = request(
        "gcp",
        "GET",
        "/storage/v1/b/acme/o",
        &[("maxResults", "a thousand")],
    );
    let v = check(&gcp, &bad_type);
    assert!(v.iter().any(|v| v.problem.contains("maxResults")), "{v:?}");
    let unknown = request(
        "gcp",
        "GET",
        "/storage/v1/b/acme/o",
        &[("prefx", "backup/")],
    );
    let v = check(&gcp, &unknown);
    assert!(
        v.iter()
            .any(|v| v.problem.contains("unknown query parameter \"prefx\"")),
        "{v:?}"
    );
    let bad_enum = request(
        "gcp",
        "GET",
        "/storage/v1/b/acme/o",
        &[("projection", "everything")],
    );
    assert!(!check(&gcp, &bad_enum).is_empty());
    let session = request("gcp", "PUT", "/upload/storage/v1/b/acme/o", &[]);
    let v = check(&gcp, &session);
    assert!(v.iter().any(|v| v.problem.contains("upload_id")), "{v:?}");
    let nowhere = request("gcp", "GET", "/storage/v1/b/acme/objects", &[]);
    assert!(check(&gcp, &nowhere)[0].problem.contains("no operation"));
}

#[test]
fn bodies_are_checked_field_by_field() {
    let gcp = of("gcp");
    let mut patch = request("gcp", "PATCH", "/storage/v1/b/acme/o/backup%2Fa.db", &[]);
    patch.body = Some(json!({"metadata": {"ops-verification": "verified", "gone": null}}));
    assert_eq!(
        check(&gcp, &patch),
        vec![],
        "a patch may clear a key with null"
    );
    patch.body = Some(json!({"metadata": {"k": 3}}));
    let v = check(&gcp, &patch);
    assert!(
        v.iter().any(|v| v.problem.contains("body.metadata.k")),
        "{v:?}"
    );
    patch.body = Some(json!({"metadta": {}}));
    let v = check(&gcp, &patch);
    assert!(
        v.iter().any(|v| v
            .problem
            .contains("body.metadta: a field the description does not have")),
        "{v:?}"
    );

    let github = of("github");
    let mut issue = request("github", "POST", "/repos/o/r/issues", &[]);
    issue.body = Some(json!({"title": "db down", "labels": ["incident"], "assignees": ["ann"]}));
    assert_eq!(check(&github, &issue), vec![]);
    issue.body = Some(json!({"title": "db down", "labels": "incident"}));
    assert!(
        !check(&github, &issue).is_empty(),
        "labels must be an array"
    );
    let mut close = request("github", "PATCH", "/repos/o/r/issues/7", &[]);
    close.body = Some(json!({"state": "closed", "state_reason": "completed"}));
    assert_eq!(check(&github, &close), vec![]);
    close.body = Some(json!({"state": "shut"}));
    assert!(!check(&github, &close).is_empty(), "state is an enum");
}

#[test]
fn the_report_fails_on_a_violation_and_on_an_empty_run() {
    let all = vendored();
    let mut report = Report::default();
    assert!(!report.passed(), "nothing checked is not a pass");
    report.add(
        &all,
        request("gcp", "GET", "/storage/v1/b/acme/o", &[("prefix", "b/")]),
    );
    report.add(&all, request("test", "GET", "/v1/thing", &[]));
    report.add(
        &all,
        request("github", "GET", "/repositories/1296269/issues", &[]),
    );
    assert!(report.passed(), "{}", report.render());
    assert_eq!(report.not_covered.get("test"), Some(&1));
    assert_eq!(report.exempt.get("github"), Some(&1));
    report.add(
        &all,
        request("gcp", "GET", "/storage/v1/b/acme/o", &[("prefx", "b/")]),
    );
    assert!(!report.passed());
    assert!(report.render().contains("VIOLATION"), "{}", report.render());
}

#[test]
fn a_pagerduty_event_needs_its_action_and_a_known_severity() {
    let pd = of("pagerduty");
    let mut event = request("pagerduty", "POST", "/v2/enqueue", &[]);
    event.body = Some(
        json!({"routing_key": "[REDACTED]", "event_action": "trigger", "client": "ops",
        "dedup_key": "incident/INC-1",
        "payload": {"summary": "checkout is down", "source": "api", "severity": "critical",
                    "timestamp": "2026-11-23T09:00:00Z", "custom_details": {"service": "api"}},
        "links": [{"href": "https://grafana.acme.dev/d/api", "text": "dashboard"}]}),
    );
    assert_eq!(check(&pd, &event), vec![]);
    event.body = Some(
        json!({"routing_key": "k", "payload": {"summary": "s", "source": "api",
        "severity": "fatal"}}),
    );
    let v = check(&pd, &event);
    assert!(
        v.iter()
            .any(|v| v.problem.contains("event_action: required")),
        "{v:?}"
    );
    assert!(v.iter().any(|v| v.problem.contains("severity")), "{v:?}");
}

#[test]
fn prometheus_queries_may_sit_below_a_path_prefix() {
    let prom = of("prometheus");
    let q = request(
        "prometheus",
        "GET",
        "/api/v1/query",
        &[("query", "up"), ("time", "1795424700")],
    );
    assert_eq!(check(&prom, &q), vec![]);
    let proxied = request(
        "prometheus",
        "GET",
        "/prometheus/api/v1/query",
        &[("query", "up")],
    );
    assert_eq!(check(&prom, &proxied), vec![]);
    let missing = request(
        "prometheus",
        "GET",
        "/api/v1/query_range",
        &[("query", "up")],
    );
    assert_eq!(
        check(&prom, &missing).len(),
        3,
        "start, end and step are required"
    );
}

#[test]
fn slack_messages_need_a_channel_and_history_needs_one_too() {
    let slack = of("slack");
    let mut post = request("slack", "POST", "/api/chat.postMessage", &[]);
    post.body = Some(json!({"channel": "C0123456789", "text": "checkout is down",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "down"}}],
        "metadata": {"event_type": "ops_incident", "event_payload": {"dedup_key": "inc-1"}}}));
    assert_eq!(check(&slack, &post), vec![]);
    post.body = Some(json!({"text": "no channel", "metadata": {"event_type": "x"}}));
    let v = check(&slack, &post);
    assert!(
        v.iter()
            .any(|v| v.problem.contains("body.channel: required")),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|v| v.problem.contains("event_payload: required")),
        "{v:?}"
    );
    let history = request(
        "slack",
        "GET",
        "/api/conversations.history",
        &[("limit", "200")],
    );
    let v = check(&slack, &history);
    assert!(
        v.iter().any(|v| v.problem.contains("\"channel\" missing")),
        "{v:?}"
    );
}

#[test]
fn reply_variants_reach_fields_inside_array_replies_and_every_alternative() {
    let d = ops_conformance::vendored("github-rest.json");
    let all = ops_conformance::replies::variants(&d, "repos/list-commits.response", &[]);
    let authors: Vec<&serde_json::Value> = all
        .iter()
        .filter(|v| v.name.starts_with("value [].author="))
        .map(|v| &v.value[0]["author"])
        .collect();
    assert!(
        authors.contains(&&json!({})),
        "the empty-object alternative: {authors:?}"
    );
    assert!(
        authors.iter().any(|a| a.get("login").is_some()),
        "the user alternative"
    );
    let nulls = all.iter().find(|v| v.name == "nulls").unwrap();
    assert_eq!(
        nulls.value[0]["author"],
        serde_json::Value::Null,
        "author is nullable"
    );
    let sparse = all.iter().find(|v| v.name == "sparse").unwrap();
    assert!(
        sparse.value[0].get("files").is_none(),
        "optional fields left out"
    );
    assert!(sparse.value[0].get("sha").is_some(), "required fields kept");
    let states: Vec<String> =
        ops_conformance::replies::variants(&d, "issues/list-for-repo.response", &[])
            .into_iter()
            .filter(|v| v.name.starts_with("value [].state_reason="))
            .map(|v| v.value[0]["state_reason"].to_string())
            .collect();
    assert!(
        states.iter().any(|s| s.contains("VALUE_ADDED_LATER")),
        "{states:?}"
    );
}

#[test]
fn simulator_replies_are_checked_against_the_reply_schema() {
    let all = vendored();
    let mut reply = request("gcp", "GET", "/storage/v1/b/acme/o/backup%2Fa.db", &[]);
    reply.reply_status = Some(200);
    reply.reply = Some(
        json!({"kind": "storage#object", "name": "backup/a.db", "bucket": "acme",
        "generation": "1", "size": "3", "crc32c": "AAAAAA==", "metadata": {"k": "v"}}),
    );
    let mut report = Report::default();
    report.add(&all, reply.clone());
    assert!(report.violations.is_empty(), "{}", report.render());
    assert_eq!(report.replies_checked.get("gcp"), Some(&1));
    // A field the real API never sends, and a number where it sends a string.
    reply.reply = Some(json!({"name": "backup/a.db", "alias": "x", "size": 3}));
    report.add(&all, reply);
    let text = report.render();
    assert!(
        text.contains("reply.alias: a field the description does not have"),
        "{text}"
    );
    assert!(
        text.contains("reply.size: a number where the description has string"),
        "{text}"
    );
    // An operation without a vendored reply schema is counted, not passed silently.
    let mut pause = request("vercel", "POST", "/v1/projects/site/pause", &[]);
    pause.reply = Some(json!({}));
    report.add(&all, pause);
    assert_eq!(report.replies_unchecked.get("vercel"), Some(&1));
    // Tuples are checked position by position.
    let mut query = request("prometheus", "GET", "/api/v1/query", &[("query", "up")]);
    query.reply = Some(json!({"status": "success", "data": {"resultType": "vector",
        "result": [{"metric": {}, "value": [1763888400.0, "1", "extra"]}]}}));
    report.add(&all, query);
    let text = report.render();
    assert!(
        text.contains("value: 3 items where the description has 2"),
        "{text}"
    );
}
