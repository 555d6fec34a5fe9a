//! HTTP status and transport failures → [`ErrorKind`], in one place for every provider.
//! Providers refine with their own error bodies (a GCP `ALREADY_EXISTS` 409, a Slack
//! `ok: false`) and otherwise use these.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::{BODY_EXCERPT_LIMIT, redact_excerpt, retry_after};
use crate::{Error, ErrorKind};

/// The error for a non-success response.
///
/// `resource` names what was asked for (for `NotFound`); it must not contain a secret.
pub fn error_for_status(
    provider: impl Into<Cow<'static, str>>,
    operation: impl Into<Cow<'static, str>>,
    resource: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Error {
    let wait = retry_after(headers, now);
    let excerpt = || redact_excerpt(body, BODY_EXCERPT_LIMIT);
    let throttled_403 = status == StatusCode::FORBIDDEN
        && (headers.contains_key("retry-after")
            || headers
                .get("x-ratelimit-remaining")
                .is_some_and(|v| v.as_bytes() == b"0"));
    let kind = match status.as_u16() {
        401 => ErrorKind::Unauthorized,
        // GitHub's secondary rate limit is a 403 with retry-after (or no remaining quota).
        403 if throttled_403 => ErrorKind::RateLimited { retry_after: wait },
        403 => ErrorKind::Forbidden { detail: excerpt() },
        404 | 410 => ErrorKind::NotFound {
            resource: resource.to_string(),
        },
        408 => ErrorKind::Timeout {
            after: Duration::ZERO,
        },
        409 | 412 => ErrorKind::Conflict { detail: excerpt() },
        429 => ErrorKind::RateLimited { retry_after: wait },
        503 => ErrorKind::Unavailable { retry_after: wait },
        s => ErrorKind::Provider {
            status: s,
            code: provider_code(body),
            body_excerpt: excerpt(),
        },
    };
    Error::new(provider, operation, kind)
}

/// The provider's own error code from common JSON error shapes: `{"error":{"status":…}}`
/// (Google), `{"error":{"code":"…"}}` (Vercel), `{"error":"…"}` (Slack), `{"code":…}`.
pub fn provider_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let as_code = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= 100 => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v.get("error") {
        Some(e @ serde_json::Value::Object(_)) => e
            .get("status")
            .and_then(as_code)
            .or_else(|| e.get("code").and_then(as_code)),
        Some(e) => as_code(e),
        None => v.get("code").and_then(as_code),
    }
}

/// The error for a request that got no complete response.
pub fn error_for_transport(
    provider: impl Into<Cow<'static, str>>,
    operation: impl Into<Cow<'static, str>>,
    err: &reqwest::Error,
    timeout: Duration,
) -> Error {
    let (provider, operation) = (provider.into(), operation.into());
    if err.is_builder() {
        // reqwest's own text names the URL, which may carry a token (webhook URLs do).
        let reason = std::error::Error::source(err)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "invalid request".into());
        return Error::invalid_input(provider, operation, "request", reason);
    }
    if err.is_timeout() {
        return Error::new(provider, operation, ErrorKind::Timeout { after: timeout });
    }
    if err.is_connect() {
        // The connection never opened: nothing reached the server.
        return Error::new(
            provider,
            operation,
            ErrorKind::Unavailable { retry_after: None },
        )
        .mark_not_sent();
    }
    if let Some(io) = find_io_error(err) {
        return Error::new(
            provider,
            operation,
            ErrorKind::Io {
                kind: io.kind(),
                message: io.to_string(),
            },
        );
    }
    if err.is_body() || err.is_decode() {
        return Error::new(
            provider,
            operation,
            ErrorKind::Io {
                kind: std::io::ErrorKind::UnexpectedEof,
                message: format!("response body cut short: {err}"),
            },
        );
    }
    // The connection closed before a response (reset mid-request, server went away).
    Error::new(
        provider,
        operation,
        ErrorKind::Unavailable { retry_after: None },
    )
}

fn find_io_error(err: &reqwest::Error) -> Option<&std::io::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, headers: &[(&'static str, &str)], body: &str) -> ErrorKind {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, v.parse().unwrap());
        }
        let now = DateTime::<Utc>::UNIX_EPOCH;
        error_for_status(
            "p",
            "op",
            "thing",
            StatusCode::from_u16(status).unwrap(),
            &h,
            body.as_bytes(),
            now,
        )
        .kind()
        .clone()
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(map(401, &[], ""), ErrorKind::Unauthorized);
        assert!(matches!(map(403, &[], ""), ErrorKind::Forbidden { .. }));
        assert_eq!(
            map(403, &[("retry-after", "60")], ""),
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(60))
            }
        );
        assert_eq!(
            map(404, &[], ""),
            ErrorKind::NotFound {
                resource: "thing".into()
            }
        );
        assert!(
            matches!(map(409, &[], "etag mismatch"), ErrorKind::Conflict { detail } if detail.contains("etag"))
        );
        assert!(matches!(map(412, &[], ""), ErrorKind::Conflict { .. }));
        assert_eq!(
            map(429, &[("retry-after", "2")], ""),
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            map(503, &[], ""),
            ErrorKind::Unavailable { retry_after: None }
        );
        let google = r#"{"error":{"code":500,"message":"boom","status":"INTERNAL"}}"#;
        assert_eq!(
            map(500, &[], google),
            ErrorKind::Provider {
                status: 500,
                code: Some("INTERNAL".into()),
                body_excerpt: google.into()
            }
        );
    }

    #[test]
    fn provider_codes_from_common_shapes() {
        assert_eq!(
            provider_code(br#"{"error":{"code":"forbidden","message":"x"}}"#).as_deref(),
            Some("forbidden")
        );
        assert_eq!(
            provider_code(br#"{"ok":false,"error":"channel_not_found"}"#).as_deref(),
            Some("channel_not_found")
        );
        assert_eq!(provider_code(br#"{"code":42}"#).as_deref(), Some("42"));
        assert_eq!(provider_code(b"<html>"), None);
    }
}
