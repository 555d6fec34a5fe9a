//! An opt-in log of the requests this process sends, so that a test run can be checked against
//! the official API descriptions (`ops_core::testkit::conformance`).
//!
//! Set `OPS_HTTP_RECORD` to a directory: every request an [`HttpClient`](super::HttpClient)
//! sends is appended there, one JSON line per request, to `requests-<pid>.jsonl`. Secrets are
//! masked before anything is written (query values through `redact_text`, bodies through
//! [`redact_body_shape`], which keeps each value's type); headers are not recorded. Unset, the
//! cost is one check of a cached flag.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::redact::{MASK, is_secret_name, redact_body_shape, redact_text};

/// The environment variable naming the directory.
pub const RECORD_ENV: &str = "OPS_HTTP_RECORD";

/// The header `ops_core::sim` simulators put on every reply. Replies that carry it are recorded
/// too (masked), so that the simulators' replies can be checked against the descriptions: a
/// simulator must not answer with shapes the real API never sends.
pub const SIMULATOR_HEADER: &str = "x-ops-simulator";

/// One recorded request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The client's provider (`gcp`, `github`, …).
    pub provider: String,
    /// The operation name the client gave.
    pub operation: String,
    /// The HTTP method.
    pub method: String,
    /// The URL path, percent-encoded as sent.
    pub path: String,
    /// The query pairs, decoded, values masked where they look like credentials.
    pub query: Vec<(String, String)>,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body when it is JSON (masked, types kept); `None` for no body, a stream, or
    /// another media type.
    pub body: Option<serde_json::Value>,
    /// For a simulator's reply: its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_status: Option<u16>,
    /// For a simulator's reply: its JSON body (masked, types kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<serde_json::Value>,
}

fn sink() -> Option<&'static Mutex<File>> {
    static SINK: OnceLock<Option<Mutex<File>>> = OnceLock::new();
    SINK.get_or_init(|| {
        let dir = PathBuf::from(std::env::var_os(RECORD_ENV)?);
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join(format!("requests-{}.jsonl", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(
                |e| tracing::warn!(path = %path.display(), error = %e, "cannot record requests"),
            )
            .ok()?;
        Some(Mutex::new(file))
    })
    .as_ref()
}

/// The record of `request` (masked).
///
/// ```
/// let req = reqwest::Client::new()
///     .post("https://hooks.slack.com/services/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?token=abc")
///     .build()
///     .unwrap();
/// let r = ops_core::http::record::recorded("slack", "send", &req);
/// assert_eq!(r.path, "/services/T0A1B2C3D/B0A1B2C3D/[REDACTED]");
/// assert_eq!(r.query, vec![("token".to_string(), "[REDACTED]".to_string())]);
/// ```
pub fn recorded(provider: &str, operation: &str, request: &reqwest::Request) -> RecordedRequest {
    let content_type = request
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = request
        .body()
        .and_then(|b| b.as_bytes())
        .filter(|_| content_type.as_deref().is_some_and(|c| c.contains("json")))
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .map(|mut v| {
            redact_body_shape(&mut v);
            v
        });
    RecordedRequest {
        provider: provider.to_string(),
        operation: operation.to_string(),
        method: request.method().as_str().to_string(),
        // A path can carry a credential (a webhook's secret segment): masked like a URL's.
        path: redact_text(&format!("http://h{}", request.url().path()))
            .trim_start_matches("http://h")
            .to_string(),
        query: request
            .url()
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_name(&k) {
                    MASK.to_string()
                } else {
                    redact_text(&v)
                };
                (k.into_owned(), v)
            })
            .collect(),
        content_type,
        body,
        reply_status: None,
        reply: None,
    }
}

/// Appends `request` to the log when `OPS_HTTP_RECORD` is set.
pub(super) fn record(provider: &str, operation: &str, request: &reqwest::Request) {
    if sink().is_some() {
        write(&recorded(provider, operation, request));
    }
}

/// Whether replies should be looked at for recording (cheap when recording is off).
pub(super) fn recording() -> bool {
    sink().is_some()
}

/// Appends a simulator's reply to `request` (its `recorded` form) when it is JSON.
pub(super) fn record_reply(
    mut request: RecordedRequest,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) {
    // Only success replies have a described shape; a status the caller accepts besides them
    // (a 308 to resume an upload, a 410 for an expired list) is an error body.
    if sink().is_none() || !headers.contains_key(SIMULATOR_HEADER) || !(200..300).contains(&status)
    {
        return;
    }
    let Ok(mut reply) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    redact_body_shape(&mut reply);
    request.body = None;
    request.reply_status = Some(status);
    request.reply = Some(reply);
    write(&request);
}

fn write(record: &RecordedRequest) {
    let Some(sink) = sink() else {
        return;
    };
    let Ok(mut line) = serde_json::to_vec(record) else {
        return;
    };
    line.push(b'\n');
    let mut file = sink.lock().unwrap_or_else(|e| e.into_inner());
    // One write per line, so lines from several threads never interleave.
    if let Err(e) = file.write_all(&line) {
        tracing::warn!(error = %e, "cannot record a request");
    }
}
