//! Runtime-log rows: the `application/stream+json` body of
//! `GET /v1/projects/{projectId}/deployments/{deploymentId}/runtime-logs`, one JSON object per
//! line (`GetRuntimeLogsResponseBody` in Vercel's SDK), decoded as the bytes arrive.
//!
//! Every field is read leniently (a missing or `null` field is its default), because a log
//! line that decodes is worth more than a perfect one; a line that is not a JSON object at all,
//! or longer than [`MAX_LINE`], is a typed [`ErrorKind::Decode`] error.

use chrono::{DateTime, Utc};
use ops_core::contracts::{LogEntry, LogSeverity};
use ops_core::http::lenient;
use ops_core::{Error, ErrorKind, Result};
use serde::Deserialize;

/// The longest line accepted (1 MiB): Vercel truncates messages long before that
/// (`messageTruncated`), so a longer line is a broken or hostile stream.
pub const MAX_LINE: usize = 1 << 20;

/// One runtime-log row.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeRow {
    /// The row's id (unique per deployment).
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub row_id: String,
    /// `trace`, `debug`, `info`, `warning`, `error` or `fatal`.
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub level: String,
    /// The line.
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub message: String,
    /// The message was cut by Vercel.
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub message_truncated: bool,
    /// `request`, `serverless`, `edge-function`, `edge-middleware` or `delimiter`.
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub source: String,
    /// When, in milliseconds since the epoch.
    #[serde(default, deserialize_with = "lenient::opt_whole_number")]
    pub timestamp_in_ms: Option<i64>,
    /// The domain the request came in on.
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub domain: String,
    /// The request's method.
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub request_method: String,
    /// The request's path.
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub request_path: String,
    /// The response's status code (0 when the row carries none).
    #[serde(default, deserialize_with = "lenient::opt_whole_number")]
    pub response_status_code: Option<i64>,
}

impl RuntimeRow {
    /// When it was logged; `None` for a row without a usable time.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.timestamp_in_ms?)
    }

    /// The status code, when the row carries a real one (100–599).
    pub fn status(&self) -> Option<u16> {
        self.response_status_code
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (100..=599).contains(s))
    }

    /// Whether the row is a request record (one per request served), which is what request
    /// counts count: function output rows repeat the status of the request they belong to.
    pub fn is_request(&self) -> bool {
        self.source == "request" && self.status().is_some()
    }

    /// The row's severity on Cloud Logging's scale; a server error on a request row is at least
    /// an error.
    pub fn severity(&self) -> LogSeverity {
        let by_level = match self.level.to_ascii_lowercase().as_str() {
            "trace" | "debug" => LogSeverity::Debug,
            "info" => LogSeverity::Info,
            "warning" | "warn" => LogSeverity::Warning,
            "error" => LogSeverity::Error,
            "fatal" => LogSeverity::Critical,
            _ => LogSeverity::Default,
        };
        match self.status() {
            Some(s) if s >= 500 => by_level.max(LogSeverity::Error),
            _ => by_level,
        }
    }

    /// The row as a log entry of `deployment`; `None` without a usable time.
    pub fn entry(&self, deployment: &str) -> Option<LogEntry> {
        let mut labels = std::collections::BTreeMap::new();
        labels.insert("source".to_string(), self.source.clone());
        for (k, v) in [
            ("domain", &self.domain),
            ("method", &self.request_method),
            ("path", &self.request_path),
        ] {
            if !v.is_empty() {
                labels.insert(k.to_string(), v.clone());
            }
        }
        if let Some(s) = self.status() {
            labels.insert("status".into(), s.to_string());
        }
        if self.message_truncated {
            labels.insert("truncated".into(), "true".into());
        }
        Some(LogEntry {
            timestamp: self.at()?,
            severity: self.severity(),
            message: self.message.clone(),
            payload: None,
            release: Some(deployment.to_string()),
            labels,
        })
    }
}

/// Splits a byte stream into rows as its chunks arrive.
#[derive(Debug, Default)]
pub struct RowDecoder {
    partial: Vec<u8>,
    line: u64,
}

impl RowDecoder {
    /// Rows completed by `chunk`. Blank lines are skipped.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<RuntimeRow>> {
        let mut rows = Vec::new();
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(nl);
            self.take(head)?;
            if let Some(row) = self.complete()? {
                rows.push(row);
            }
            rest = tail.get(1..).unwrap_or_default();
        }
        self.take(rest)?;
        Ok(rows)
    }

    /// The last row, when the stream ended without a final newline. Call only when the server
    /// closed the stream: a stream cut short by the reader's own deadline drops its partial
    /// line instead.
    pub fn finish(mut self) -> Result<Option<RuntimeRow>> {
        self.complete()
    }

    fn take(&mut self, bytes: &[u8]) -> Result<()> {
        if self.partial.len().saturating_add(bytes.len()) > MAX_LINE {
            return Err(decode(format!(
                "line {} of the runtime-log stream is longer than {MAX_LINE} bytes",
                self.line + 1
            )));
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    fn complete(&mut self) -> Result<Option<RuntimeRow>> {
        let line = std::mem::take(&mut self.partial);
        self.line = self.line.saturating_add(1);
        let text = line.trim_ascii();
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice::<RuntimeRow>(text)
            .map(Some)
            .map_err(|e| {
                decode(format!(
                    "line {} of the runtime-log stream is not a log row: {e}",
                    self.line
                ))
            })
    }
}

fn decode(detail: String) -> Error {
    Error::new("vercel", "get_runtime_logs", ErrorKind::Decode { detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ROW: &str = r#"{"level":"error","message":"TypeError: x is undefined","rowId":"r1","source":"serverless","timestampInMs":1764590400000,"domain":"site.acme.dev","messageTruncated":false,"requestMethod":"GET","requestPath":"/api/items","responseStatusCode":500}"#;

    #[test]
    fn a_documented_row_reads_as_an_error_entry() {
        let mut d = RowDecoder::default();
        let rows = d.feed(format!("{ROW}\n").as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        let e = rows[0].entry("dpl_1").unwrap();
        assert_eq!(e.severity, LogSeverity::Error);
        assert_eq!(e.release.as_deref(), Some("dpl_1"));
        assert_eq!(e.labels["status"], "500");
        assert_eq!(e.labels["path"], "/api/items");
        assert!(
            !rows[0].is_request(),
            "a function's row is not a request record"
        );
    }

    #[test]
    fn nulls_and_missing_fields_are_defaults_and_garbage_is_a_decode_error() {
        let mut d = RowDecoder::default();
        let rows = d
            .feed(b"{\"message\":null,\"timestampInMs\":1.0e12,\"source\":\"request\",\"responseStatusCode\":200}\n\n")
            .unwrap();
        assert_eq!(rows[0].message, "");
        assert!(rows[0].is_request());
        let err = d.feed(b"[1,2]\n").unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err}");
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut d = RowDecoder::default();
        let chunk = vec![b'x'; 64 * 1024];
        let mut failed = false;
        for _ in 0..(MAX_LINE / chunk.len() + 2) {
            if d.feed(&chunk).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "a line over MAX_LINE is an error");
    }

    #[test]
    fn a_status_outside_http_is_no_status() {
        for s in [-1i64, 0, 99, 600, i64::MAX] {
            let r = RuntimeRow {
                response_status_code: Some(s),
                source: "request".into(),
                ..RuntimeRow::default()
            };
            assert_eq!(r.status(), None, "{s}");
            assert!(!r.is_request());
        }
    }

    proptest! {
        // Any chunking of the same bytes gives the same rows, and the stream's last line
        // without a newline comes out of `finish`.
        #[test]
        fn any_chunking_gives_the_same_rows(
            msgs in proptest::collection::vec("[ -~]{0,40}", 1..8),
            cuts in proptest::collection::vec(0usize..400, 0..10),
            newline_at_end in any::<bool>(),
        ) {
            let lines: Vec<String> = msgs
                .iter()
                .enumerate()
                .map(|(i, m)| serde_json::json!({"rowId": format!("r{i}"), "message": m, "timestampInMs": 1_000 + i as i64}).to_string())
                .collect();
            let mut body = lines.join("\n");
            if newline_at_end { body.push('\n'); }
            let bytes = body.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut d = RowDecoder::default();
            let mut got = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                got.extend(d.feed(&bytes[at..c]).unwrap());
                at = c;
            }
            got.extend(d.finish().unwrap());
            let ids: Vec<String> = got.iter().map(|r| r.row_id.clone()).collect();
            let want: Vec<String> = (0..msgs.len()).map(|i| format!("r{i}")).collect();
            prop_assert_eq!(ids, want);
            for (r, m) in got.iter().zip(&msgs) {
                prop_assert_eq!(&r.message, m);
            }
        }

        // Arbitrary bytes never panic: rows or a typed error.
        #[test]
        fn any_bytes_give_rows_or_a_decode_error(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut d = RowDecoder::default();
            match d.feed(&bytes) {
                Ok(rows) => for r in rows { let _ = r.entry("dpl_x"); }
                Err(e) => { let decode = matches!(e.kind(), ErrorKind::Decode { .. }); prop_assert!(decode, "{}", e) }
            }
        }
    }
}
