//! Google's error bodies → [`ErrorKind`], in one place for every service of this crate.
//!
//! Google answers `{"error":{"code":409,"message":"…","status":"ABORTED","details":[…]}}`.
//! The HTTP status alone is ambiguous (a 409 is `ALREADY_EXISTS` or `ABORTED`, a 400 may be a
//! failed precondition); the `status` name says which.

use ops_core::ErrorKind;
use ops_core::redact::redact_text;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

/// The longest message kept from an error body.
const MESSAGE_LIMIT: usize = 300;

#[derive(Debug, Deserialize)]
struct Envelope {
    error: RpcStatus,
}

/// A `google.rpc.Status`: the `error` of an HTTP error body and of a failed operation.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
pub struct RpcStatus {
    /// The HTTP status (in HTTP bodies) or the `google.rpc.Code` number (in operations).
    #[serde(default)]
    pub code: i64,
    /// The developer-facing message.
    #[serde(default)]
    pub message: String,
    /// The code's name (`NOT_FOUND`, `ABORTED`, …); absent in operation errors.
    #[serde(default)]
    pub status: Option<String>,
    /// Typed details (`google.rpc.BadRequest`, `ErrorInfo`, …).
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
}

/// The older per-error `reason`s some APIs still send beside the status (BigQuery, Cloud
/// Storage): `{"error":{"errors":[{"reason":"rateLimitExceeded",…}],…}}`.
#[derive(Debug, Deserialize)]
struct Reasons {
    error: ReasonList,
}

#[derive(Debug, Deserialize)]
struct ReasonList {
    #[serde(default)]
    errors: Vec<Reason>,
}

#[derive(Debug, Deserialize)]
struct Reason {
    #[serde(default)]
    reason: String,
}

/// Reads a Google error body; `None` leaves the response to the shared status mapping
/// (throttling and outages, whose `Retry-After` it reads).
pub fn parse_error(status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> Option<ErrorKind> {
    // BigQuery throttles with 403 PERMISSION_DENIED and a reason that says it is a limit.
    if let Ok(r) = serde_json::from_slice::<Reasons>(body)
        && r.error
            .errors
            .iter()
            .any(|e| matches!(e.reason.as_str(), "rateLimitExceeded" | "quotaExceeded"))
    {
        return Some(ErrorKind::RateLimited { retry_after: None });
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let name = envelope.error.status.clone()?;
    kind_for(&name, &envelope.error, Some(status))
}

/// The kind for a failed long-running operation's `error`.
pub fn operation_error_kind(error: &RpcStatus) -> ErrorKind {
    let name = error
        .status
        .clone()
        .unwrap_or_else(|| rpc_code_name(error.code).to_string());
    kind_for(&name, error, None).unwrap_or_else(|| ErrorKind::Provider {
        status: http_status_of(&name),
        code: Some(name),
        body_excerpt: message(error),
    })
}

fn kind_for(name: &str, error: &RpcStatus, http: Option<StatusCode>) -> Option<ErrorKind> {
    Some(match name {
        "ALREADY_EXISTS" => ErrorKind::AlreadyExists {
            resource: message(error),
        },
        // An etag or generation that no longer matches, a concurrent change, a state the
        // request needs but the resource is not in.
        "ABORTED" | "FAILED_PRECONDITION" => ErrorKind::Conflict {
            detail: message(error),
        },
        "INVALID_ARGUMENT" | "OUT_OF_RANGE" => ErrorKind::InvalidInput {
            field: violated_field(error).unwrap_or_else(|| "request".into()),
            reason: message(error),
        },
        "NOT_FOUND" => ErrorKind::NotFound {
            resource: message(error),
        },
        "PERMISSION_DENIED" => ErrorKind::Forbidden {
            detail: message(error),
        },
        "UNAUTHENTICATED" => ErrorKind::Unauthorized,
        // With an HTTP response, the shared mapping reads Retry-After for these.
        "RESOURCE_EXHAUSTED" | "UNAVAILABLE" if http.is_some() => return None,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited { retry_after: None },
        "UNAVAILABLE" => ErrorKind::Unavailable { retry_after: None },
        "DEADLINE_EXCEEDED" if http.is_none() => ErrorKind::Timeout {
            after: std::time::Duration::ZERO,
        },
        "CANCELLED" if http.is_none() => ErrorKind::Cancelled,
        _ => return None,
    })
}

fn message(error: &RpcStatus) -> String {
    let text = redact_text(&error.message);
    match text.char_indices().nth(MESSAGE_LIMIT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// The first field a `google.rpc.BadRequest` detail names.
fn violated_field(error: &RpcStatus) -> Option<String> {
    error.details.iter().find_map(|d| {
        d.get("fieldViolations")?
            .as_array()?
            .first()?
            .get("field")?
            .as_str()
            .map(str::to_owned)
    })
}

/// `google.rpc.Code` numbers (operation errors carry only the number).
fn rpc_code_name(code: i64) -> &'static str {
    match code {
        1 => "CANCELLED",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// The HTTP status Google maps a code name to (for errors that never had one).
fn http_status_of(name: &str) -> u16 {
    match name {
        "UNIMPLEMENTED" => 501,
        "INTERNAL" | "DATA_LOSS" | "UNKNOWN" => 500,
        _ => 400,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, body: &str) -> Option<ErrorKind> {
        parse_error(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn status_names_decide_the_kind() {
        let body = |code: u16, status: &str, msg: &str| {
            format!(r#"{{"error":{{"code":{code},"message":"{msg}","status":"{status}"}}}}"#)
        };
        assert!(matches!(
            parse(409, &body(409, "ALREADY_EXISTS", "exists")),
            Some(ErrorKind::AlreadyExists { .. })
        ));
        assert!(matches!(
            parse(409, &body(409, "ABORTED", "etag mismatch")),
            Some(ErrorKind::Conflict { detail }) if detail == "etag mismatch"
        ));
        assert!(matches!(
            parse(
                400,
                &body(400, "FAILED_PRECONDITION", "etag does not match")
            ),
            Some(ErrorKind::Conflict { .. })
        ));
        assert!(matches!(
            parse(403, &body(403, "PERMISSION_DENIED", "denied")),
            Some(ErrorKind::Forbidden { .. })
        ));
        // Throttling is left to the shared mapping, which reads Retry-After.
        assert_eq!(parse(429, &body(429, "RESOURCE_EXHAUSTED", "quota")), None);
        assert_eq!(parse(500, &body(500, "INTERNAL", "boom")), None);
        assert_eq!(parse(502, "<html>bad gateway</html>"), None);
    }

    #[test]
    fn bad_request_names_the_field() {
        let body = r#"{"error":{"code":400,"message":"bad image","status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations":[{"field":"spec.template.spec.containers[0].image","description":"bad"}]}]}}"#;
        assert_eq!(
            parse(400, body),
            Some(ErrorKind::InvalidInput {
                field: "spec.template.spec.containers[0].image".into(),
                reason: "bad image".into()
            })
        );
    }

    #[test]
    fn operation_errors_use_the_code_number() {
        let failed = RpcStatus {
            code: 9,
            message: "Revision 'api-00002' is not ready and cannot serve traffic.".into(),
            ..RpcStatus::default()
        };
        assert!(matches!(
            operation_error_kind(&failed),
            ErrorKind::Conflict { .. }
        ));
        let internal = RpcStatus {
            code: 13,
            message: "internal".into(),
            ..RpcStatus::default()
        };
        assert!(matches!(
            operation_error_kind(&internal),
            ErrorKind::Provider { status: 500, code: Some(c), .. } if c == "INTERNAL"
        ));
        assert_eq!(
            operation_error_kind(&RpcStatus {
                code: 4,
                ..RpcStatus::default()
            }),
            ErrorKind::Timeout {
                after: std::time::Duration::ZERO
            }
        );
    }

    #[test]
    fn bigquery_throttling_is_a_rate_limit_not_a_permission_error() {
        // As BigQuery answers a spent query quota (its documented error table: 403 with
        // reason quotaExceeded or rateLimitExceeded).
        for reason in ["rateLimitExceeded", "quotaExceeded"] {
            let body = format!(
                r#"{{"error":{{"code":403,"message":"Exceeded rate limits","errors":[{{"message":"Exceeded rate limits","domain":"usageLimits","reason":"{reason}"}}],"status":"PERMISSION_DENIED"}}}}"#
            );
            assert_eq!(
                parse(403, &body),
                Some(ErrorKind::RateLimited { retry_after: None }),
                "{reason}"
            );
        }
        let denied = r#"{"error":{"code":403,"message":"Access Denied","errors":[{"reason":"accessDenied"}],"status":"PERMISSION_DENIED"}}"#;
        assert!(matches!(
            parse(403, denied),
            Some(ErrorKind::Forbidden { .. })
        ));
    }

    #[test]
    fn messages_are_redacted_and_bounded() {
        let long = "x".repeat(1000);
        let body = format!(
            r#"{{"error":{{"code":400,"message":"Bearer abc123secret {long}","status":"INVALID_ARGUMENT"}}}}"#
        );
        let Some(ErrorKind::InvalidInput { reason, .. }) = parse(400, &body) else {
            panic!("expected invalid input")
        };
        assert!(!reason.contains("abc123secret"), "{reason}");
        assert!(reason.chars().count() <= MESSAGE_LIMIT + 1);
    }
}
