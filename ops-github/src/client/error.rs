//! GitHub's error bodies (`{"message","documentation_url","errors":[…]}`) → [`ErrorKind`], in
//! one place.

use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::redact::redact_text;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

/// How long to wait after a secondary rate limit that gives no `retry-after` (GitHub: "wait
/// for at least one minute").
pub const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<FieldError>,
}

/// One entry of `errors`: an object naming the field, or (also documented) a bare string.
#[derive(Deserialize)]
#[serde(untagged)]
enum FieldError {
    Detail(Detail),
    Text(String),
}

impl FieldError {
    fn detail(&self) -> Detail {
        match self {
            FieldError::Detail(d) => d.clone(),
            FieldError::Text(t) => Detail {
                message: Some(t.clone()),
                ..Detail::default()
            },
        }
    }
}

#[derive(Deserialize, Clone, Default)]
struct Detail {
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The [`ErrorKind`] of a GitHub error response, or `None` for the shared status mapping
/// (which reads `retry-after` and `x-ratelimit-*`).
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Option<ErrorKind> {
    let parsed: Option<Body> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .map(|b| redact_text(&b.message))
        .unwrap_or_default();
    let rate_limited = message.to_ascii_lowercase().contains("rate limit");
    let has_wait = headers.contains_key("retry-after")
        || headers
            .get("x-ratelimit-remaining")
            .is_some_and(|v| v.as_bytes() == b"0");
    match status.as_u16() {
        // Throttled: the shared mapping turns the headers into a wait.
        403 | 429 if has_wait => None,
        // A secondary limit without headers: wait the minute GitHub asks for.
        403 | 429 if rate_limited => Some(ErrorKind::RateLimited {
            retry_after: Some(SECONDARY_LIMIT_WAIT),
        }),
        401 => Some(ErrorKind::Unauthorized),
        403 => Some(ErrorKind::Forbidden {
            detail: message.clone(),
        }),
        409 => Some(ErrorKind::Conflict {
            detail: if message.is_empty() {
                "conflict".into()
            } else {
                message
            },
        }),
        422 => {
            let body = parsed?;
            let errors: Vec<Detail> = body.errors.iter().map(FieldError::detail).collect();
            let first = errors.first();
            if first.and_then(|e| e.code.as_deref()) == Some("already_exists") {
                let e = first.expect("checked above");
                return Some(ErrorKind::AlreadyExists {
                    resource: [e.resource.as_deref(), e.field.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" "),
                });
            }
            let details: Vec<String> = errors
                .iter()
                .map(|e| {
                    let what = e
                        .message
                        .clone()
                        .or_else(|| e.code.clone())
                        .unwrap_or_default();
                    match &e.field {
                        Some(f) => format!("{f}: {what}"),
                        None => what,
                    }
                })
                .filter(|s| !s.is_empty())
                .collect();
            Some(ErrorKind::InvalidInput {
                field: first
                    .and_then(|e| e.field.clone())
                    .unwrap_or_else(|| "request".into()),
                reason: redact_text(&if details.is_empty() {
                    body.message
                } else {
                    format!("{} ({})", body.message, details.join("; "))
                }),
            })
        }
        s if s >= 500 && s != 503 && !message.is_empty() => Some(ErrorKind::Provider {
            status: s,
            code: None,
            body_excerpt: message,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, headers: &[(&'static str, &str)], body: &str) -> Option<ErrorKind> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, v.parse().unwrap());
        }
        parse_error(StatusCode::from_u16(status).unwrap(), &h, body.as_bytes())
    }

    #[test]
    fn github_bodies_map_to_kinds() {
        let secondary = r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api","status":"403"}"#;
        assert_eq!(
            parse(403, &[], secondary),
            Some(ErrorKind::RateLimited {
                retry_after: Some(SECONDARY_LIMIT_WAIT)
            })
        );
        assert_eq!(parse(403, &[("retry-after", "30")], secondary), None);
        assert!(matches!(
            parse(
                403,
                &[],
                r#"{"message":"Resource not accessible by integration"}"#
            ),
            Some(ErrorKind::Forbidden { .. })
        ));
        assert_eq!(
            parse(401, &[], r#"{"message":"Bad credentials"}"#),
            Some(ErrorKind::Unauthorized)
        );
        let invalid = r#"{"message":"Validation Failed","errors":[{"resource":"Release","code":"custom","field":"tag_name","message":"tag_name is not a valid tag"}],"documentation_url":"https://docs.github.com/rest/releases/releases#create-a-release"}"#;
        assert_eq!(
            parse(422, &[], invalid),
            Some(ErrorKind::InvalidInput {
                field: "tag_name".into(),
                reason: "Validation Failed (tag_name: tag_name is not a valid tag)".into()
            })
        );
        let exists = r#"{"message":"Validation Failed","errors":[{"resource":"Release","code":"already_exists","field":"tag_name"}]}"#;
        assert_eq!(
            parse(422, &[], exists),
            Some(ErrorKind::AlreadyExists {
                resource: "Release tag_name".into()
            })
        );
        assert!(matches!(
            parse(409, &[], r#"{"message":"Git Repository is empty."}"#),
            Some(ErrorKind::Conflict { detail }) if detail == "Git Repository is empty."
        ));
        assert_eq!(parse(404, &[], r#"{"message":"Not Found"}"#), None);
        assert_eq!(parse(503, &[], r#"{"message":"Unavailable"}"#), None);
        assert!(matches!(
            parse(500, &[], r#"{"message":"Server Error"}"#),
            Some(ErrorKind::Provider { status: 500, .. })
        ));
    }
}
