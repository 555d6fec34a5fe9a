//! The project security audit against exact Resource Manager v3 and IAM v1 shapes.

mod support;

use ops_core::ErrorKind;
use ops_core::contracts::{SecurityAuditor, Severity};
use ops_gcp::ProjectAudit;
use serde_json::json;
use support::*;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn policy(server: &MockServer, bindings: serde_json::Value) {
    Mock::given(method("POST"))
        .and(path("/v3/projects/acme-prod:getIamPolicy"))
        .and(header("authorization", bearer().as_str()))
        .and(body_json(json!({"options": {"requestedPolicyVersion": 3}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "version": 3, "etag": "BwYk3sO1Kqo=", "bindings": bindings
        })))
        .mount(server)
        .await;
}

async fn accounts(server: &MockServer) {
    let sa = |email: &str| {
        json!({
            "name": format!("projects/acme-prod/serviceAccounts/{email}"), "projectId": "acme-prod",
            "uniqueId": "1049", "email": email, "displayName": "deployer", "etag": "MDEwMjE5MjA=",
            "oauth2ClientId": "1049"
        })
    };
    Mock::given(method("GET"))
        .and(path("/v1/projects/acme-prod/serviceAccounts"))
        .and(query_param("pageSize", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "accounts": [sa("deployer@acme-prod.iam.gserviceaccount.com"), sa("ci@acme-prod.iam.gserviceaccount.com")]
        })))
        .mount(server)
        .await;
    let key = |id: &str, after: &str| {
        json!({
            "name": format!("projects/acme-prod/serviceAccounts/deployer@acme-prod.iam.gserviceaccount.com/keys/{id}"),
            "validAfterTime": after, "validBeforeTime": "9999-12-31T23:59:59Z",
            "keyAlgorithm": "KEY_ALG_RSA_2048", "keyOrigin": "GOOGLE_PROVIDED", "keyType": "USER_MANAGED"
        })
    };
    Mock::given(method("GET"))
        .and(path("/v1/projects/acme-prod/serviceAccounts/deployer@acme-prod.iam.gserviceaccount.com/keys"))
        .and(query_param("keyTypes", "USER_MANAGED"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "keys": [key("0a1b2c3d4e5f", "2026-03-01T10:00:00Z"), key("9f8e7d6c5b4a", "2026-11-01T10:00:00Z")]
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/v1/projects/acme-prod/serviceAccounts/ci@acme-prod.iam.gserviceaccount.com/keys",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn broad_roles_public_grants_and_old_keys_are_findings() {
    let server = MockServer::start().await;
    policy(&server, json!([
        {"role": "roles/owner", "members": ["user:founder@acme.dev"]},
        {"role": "roles/editor", "members": ["serviceAccount:1049-compute@developer.gserviceaccount.com"]},
        {"role": "roles/run.invoker", "members": ["allUsers"]},
        {"role": "roles/storage.objectViewer", "members": ["group:ops@acme.dev"]}
    ])).await;
    accounts(&server).await;
    let audit = ProjectAudit::new(client(&server, clock()));
    let findings = audit.audit().await.unwrap();
    assert_eq!(findings.len(), 4, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Critical);
    assert!(
        findings[0]
            .issue
            .contains("roles/run.invoker is granted to allUsers")
    );
    let key = findings
        .iter()
        .find(|f| f.issue.contains("0a1b2c3d4e5f"))
        .unwrap();
    assert_eq!(key.resource, "deployer@acme-prod.iam.gserviceaccount.com");
    assert!(key.issue.contains("266 days old"), "{}", key.issue);
    assert!(
        !findings.iter().any(|f| f.issue.contains("9f8e7d6c5b4a")),
        "a 22-day-old key is fine"
    );
    assert!(findings.iter().any(|f| {
        f.issue
            .contains("user:founder@acme.dev has the basic role roles/owner")
    }));
}

/// The project audit passes the SecurityAuditor suite on the same policy: worst first,
/// complete findings, the known ones found, no token shown, the same findings twice.
#[tokio::test]
async fn the_project_audit_passes_the_security_auditor_suite() {
    let server = MockServer::start().await;
    policy(
        &server,
        json!([
            {"role": "roles/owner", "members": ["user:founder@acme.dev"]},
            {"role": "roles/run.invoker", "members": ["allUsers"]}
        ]),
    )
    .await;
    accounts(&server).await;
    let audit = ProjectAudit::new(client(&server, clock()));
    let fixture = ops_core::testkit::AuditFixture::new()
        .expect(Severity::Critical, "allUsers")
        .expect(Severity::Warning, "0a1b2c3d4e5f")
        .secret(TOKEN);
    ops_core::testkit::security_auditor(&audit, &fixture).await;
}

#[tokio::test]
async fn a_clean_project_has_no_findings_and_denied_reads_are_typed() {
    let server = MockServer::start().await;
    policy(
        &server,
        json!([{"role": "roles/run.admin", "members": ["group:ops@acme.dev"]}]),
    )
    .await;
    accounts(&server).await;
    let audit = ProjectAudit::new(client(&server, clock()))
        .with_max_key_age(std::time::Duration::from_secs(400 * 24 * 3600));
    assert!(audit.audit().await.unwrap().is_empty());

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/projects/acme-prod:getIamPolicy"))
        .respond_with(ResponseTemplate::new(403).set_body_json(google_error(
            403,
            "PERMISSION_DENIED",
            "The caller does not have permission",
        )))
        .mount(&server)
        .await;
    let err = ProjectAudit::new(client(&server, clock()))
        .audit()
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Forbidden { .. }));
}
