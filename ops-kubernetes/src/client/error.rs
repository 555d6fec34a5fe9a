//! The one reading of the API server's error bodies: a `Status` object
//! (`{"kind":"Status","status":"Failure","reason":…,"message":…,"details":…,"code":…}`).

use ops_core::ErrorKind;
use ops_core::redact::redact_text;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

/// The parts of a `Status` this crate reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiStatus {
    /// `Conflict`, `AlreadyExists`, `NotFound`, `Forbidden`, `Invalid`, `Expired`,
    /// `TooManyRequests`, …
    #[serde(default)]
    pub reason: Option<String>,
    /// What the server says, for a person.
    #[serde(default)]
    pub message: Option<String>,
    /// What it concerns.
    #[serde(default)]
    pub details: Option<StatusDetails>,
}

/// `Status.details`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusDetails {
    /// The object's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its kind (`deployments`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Field-level causes of an `Invalid` (422).
    #[serde(default)]
    pub causes: Option<Vec<StatusCause>>,
}

/// One cause of a `Status`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusCause {
    /// The field (`spec.template.spec.containers[0].image`).
    #[serde(default)]
    pub field: Option<String>,
    /// Why.
    #[serde(default)]
    pub message: Option<String>,
}

/// The [`ErrorKind`] of a failed call; `None` leaves throttling (429, and 503 with
/// `Retry-After`) and bodies that are no `Status` to the shared mapping, which reads
/// `Retry-After`.
///
/// A 403 keeps the server's message, which names the user, the verb and the resource
/// (`User "system:serviceaccount:ops:deployer" cannot update resource "deployments" in API
/// group "apps" in the namespace "web"`): the RBAC rule to add.
pub fn parse_error(status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> Option<ErrorKind> {
    let s: ApiStatus = serde_json::from_slice(body).ok()?;
    let message = redact_text(s.message.as_deref().unwrap_or(""));
    let reason = s.reason.as_deref().unwrap_or("");
    let what = || {
        let d = s.details.clone().unwrap_or_default();
        match (d.kind, d.name) {
            (Some(k), Some(n)) => format!("{k}/{n}"),
            (_, Some(n)) => n,
            _ => message.clone(),
        }
    };
    Some(match (status.as_u16(), reason) {
        (429, _) | (503, _) => return None,
        (_, "AlreadyExists") => ErrorKind::AlreadyExists { resource: what() },
        (409, _) | (_, "Conflict") => ErrorKind::Conflict { detail: message },
        (404, _) => ErrorKind::NotFound { resource: message },
        (401, _) => ErrorKind::Unauthorized,
        (403, _) => ErrorKind::Forbidden { detail: message },
        // A list's `continue` token or a watch's resourceVersion too old to serve.
        (410, _) => ErrorKind::Conflict {
            detail: format!("expired (410 Gone): {message}"),
        },
        (400 | 422, _) => ErrorKind::InvalidInput {
            field: s
                .details
                .as_ref()
                .and_then(|d| d.causes.as_ref()?.first()?.field.clone())
                .unwrap_or_else(|| "request".into()),
            reason: message,
        },
        (code, _) if code >= 500 => ErrorKind::Provider {
            status: code,
            code: (!reason.is_empty()).then(|| reason.to_string()),
            body_excerpt: message,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Any status and body give a kind or `None`, never a panic; a 403 always keeps the
        // body's message, redacted.
        #[test]
        fn any_reply_maps_without_panic(code in 400u16..600, reason in "[A-Za-z]{0,20}", message in "\\PC{0,120}", junk in proptest::collection::vec(any::<u8>(), 0..200)) {
            let status = StatusCode::from_u16(code).unwrap();
            let _ = parse_error(status, &HeaderMap::new(), &junk);
            let body = serde_json::json!({"kind": "Status", "reason": reason, "message": message, "code": code}).to_string();
            let kind = parse_error(status, &HeaderMap::new(), body.as_bytes());
            if code == 403 {
                let keeps = matches!(kind, Some(ErrorKind::Forbidden { .. }));
                prop_assert!(keeps || reason == "AlreadyExists" || reason == "Conflict");
            }
        }
    }

    fn parse(code: u16, body: &str) -> Option<ErrorKind> {
        parse_error(
            StatusCode::from_u16(code).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn statuses_read_as_their_kinds() {
        let forbidden = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"web\" is forbidden: User \"system:serviceaccount:ops:deployer\" cannot update resource \"deployments\" in API group \"apps\" in the namespace \"web\"","reason":"Forbidden","details":{"name":"web","group":"apps","kind":"deployments"},"code":403}"#;
        match parse(403, forbidden) {
            Some(ErrorKind::Forbidden { detail }) => {
                assert!(
                    detail.contains("cannot update resource \"deployments\""),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(
                409,
                r#"{"kind":"Status","reason":"Conflict","message":"Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again","code":409}"#
            ),
            Some(ErrorKind::Conflict { .. })
        ));
        assert!(matches!(
            parse(409, r#"{"kind":"Status","reason":"AlreadyExists","details":{"name":"db","kind":"secrets"},"code":409}"#),
            Some(ErrorKind::AlreadyExists { resource }) if resource == "secrets/db"
        ));
        assert!(matches!(
            parse(422, r#"{"kind":"Status","reason":"Invalid","message":"Deployment.apps \"web\" is invalid","details":{"causes":[{"reason":"FieldValueRequired","message":"Required value","field":"spec.template.spec.containers[0].image"}]},"code":422}"#),
            Some(ErrorKind::InvalidInput { field, .. }) if field == "spec.template.spec.containers[0].image"
        ));
        assert!(matches!(
            parse(410, r#"{"kind":"Status","reason":"Expired","message":"The provided continue parameter is too old","code":410}"#),
            Some(ErrorKind::Conflict { detail }) if detail.starts_with("expired")
        ));
        assert_eq!(
            parse(
                429,
                r#"{"kind":"Status","reason":"TooManyRequests","code":429}"#
            ),
            None
        );
        assert_eq!(parse(500, "<html>oops</html>"), None);
        assert!(matches!(
            parse(500, r#"{"kind":"Status","reason":"InternalError","message":"etcdserver: request timed out","code":500}"#),
            Some(ErrorKind::Provider { status: 500, code: Some(c), .. }) if c == "InternalError"
        ));
    }
}
