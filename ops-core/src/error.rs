//! The one error type of `ops`: every contract, adapter and provider returns [`Error`].
//!
//! An [`Error`] is a typed [`ErrorKind`] plus where it came from (provider and operation). Its
//! text never contains a secret: HTTP bodies are kept only as a bounded, redacted excerpt
//! (see [`crate::http`]), and secret values are never part of any kind.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, independent of which provider said it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The named resource does not exist.
    #[error("not found: {resource}")]
    NotFound {
        /// The resource that was looked up (a name, id or path; never a secret value).
        resource: String,
    },
    /// A resource with that name already exists.
    #[error("already exists: {resource}")]
    AlreadyExists {
        /// The resource that was to be created.
        resource: String,
    },
    /// The resource changed under us (etag / generation mismatch, concurrent update).
    #[error("conflict: {detail}")]
    Conflict {
        /// What conflicted.
        detail: String,
    },
    /// Credentials are missing, expired or invalid.
    #[error("unauthorized")]
    Unauthorized,
    /// Credentials are valid but lack the permission.
    #[error("forbidden{}", fmt_detail(detail))]
    Forbidden {
        /// What was refused, as the provider says it (the missing permission, or verb and
        /// resource); empty when it says nothing.
        detail: String,
    },
    /// The provider throttled us.
    #[error("rate limited{}", fmt_after(*retry_after))]
    RateLimited {
        /// How long the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The provider is temporarily unavailable (503, connection refused or reset).
    #[error("unavailable{}", fmt_after(*retry_after))]
    Unavailable {
        /// How long the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// No answer within the deadline.
    #[error("timed out after {after:?}")]
    Timeout {
        /// The deadline that passed.
        after: Duration,
    },
    /// The caller's input was rejected before anything was sent.
    #[error("invalid input: {field}: {reason}")]
    InvalidInput {
        /// The field (or argument) at fault.
        field: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// The provider cannot do this at all (e.g. reading a GitHub Actions secret's value).
    #[error("unsupported: {capability}")]
    Unsupported {
        /// The capability that is missing.
        capability: String,
    },
    /// A check after a change failed (health, error logs, metrics): the change did not hold.
    #[error("verification failed: {check}: {detail}")]
    VerificationFailed {
        /// What was checked.
        check: String,
        /// What was found.
        detail: String,
    },
    /// Data did not match its recorded checksum.
    #[error("checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The checksum that was recorded.
        expected: String,
        /// The checksum of the bytes actually read.
        actual: String,
    },
    /// Any other provider failure, with the HTTP status and a redacted excerpt of the body.
    #[error(
        "provider error (status {status}{}){}",
        fmt_code(code),
        fmt_excerpt(body_excerpt)
    )]
    Provider {
        /// HTTP status (or 0 when the provider has no status).
        status: u16,
        /// The provider's own error code, when its body had one.
        code: Option<String>,
        /// At most [`crate::http::BODY_EXCERPT_LIMIT`] bytes of the body, secrets masked.
        body_excerpt: String,
    },
    /// Local I/O failed.
    #[error("i/o error ({kind:?}): {message}")]
    Io {
        /// The I/O error kind.
        kind: std::io::ErrorKind,
        /// The I/O error's text.
        message: String,
    },
    /// A response or file could not be decoded.
    #[error("decode error: {detail}")]
    Decode {
        /// What could not be decoded, and why.
        detail: String,
    },
    /// Code panicked (a bug): the engine caught it as a failure of the step, so the run still
    /// undoes what it did and records its end.
    #[error("panicked: {message}")]
    Panicked {
        /// The panic's message (bounded, credentials masked).
        message: String,
    },
    /// A step asked for the output of an earlier step that has produced none: it has not run
    /// yet, or it is a mutation a dry run only planned.
    #[error("no output yet from step {step}: {why}")]
    OutputPending {
        /// The earlier step.
        step: String,
        /// Why there is none.
        why: String,
    },
}

fn fmt_detail(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

fn fmt_after(d: Option<Duration>) -> String {
    d.map(|d| format!(" (retry after {d:?})"))
        .unwrap_or_default()
}

fn fmt_code(code: &Option<String>) -> String {
    code.as_ref()
        .map(|c| format!(", code {c}"))
        .unwrap_or_default()
}

fn fmt_excerpt(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl ErrorKind {
    /// Whether the same request may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ErrorKind::RateLimited { .. } | ErrorKind::Unavailable { .. } => true,
            ErrorKind::Timeout { .. } => true,
            ErrorKind::Provider { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            ErrorKind::Io { kind, .. } => matches!(
                kind,
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }

    /// The wait the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ErrorKind::RateLimited { retry_after } | ErrorKind::Unavailable { retry_after } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A short stable name for the kind, for reports and metrics (`"not_found"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::NotFound { .. } => "not_found",
            ErrorKind::AlreadyExists { .. } => "already_exists",
            ErrorKind::Conflict { .. } => "conflict",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden { .. } => "forbidden",
            ErrorKind::RateLimited { .. } => "rate_limited",
            ErrorKind::Unavailable { .. } => "unavailable",
            ErrorKind::Timeout { .. } => "timeout",
            ErrorKind::InvalidInput { .. } => "invalid_input",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Unsupported { .. } => "unsupported",
            ErrorKind::VerificationFailed { .. } => "verification_failed",
            ErrorKind::ChecksumMismatch { .. } => "checksum_mismatch",
            ErrorKind::Provider { .. } => "provider",
            ErrorKind::Io { .. } => "io",
            ErrorKind::Decode { .. } => "decode",
            ErrorKind::Panicked { .. } => "panicked",
            ErrorKind::OutputPending { .. } => "output_pending",
        }
    }
}

/// An error from a contract call: what went wrong ([`ErrorKind`]), in which provider, during
/// which operation.
///
/// ```
/// use ops_core::{Error, ErrorKind};
/// let e = Error::new("fs-backup", "get", ErrorKind::NotFound { resource: "db-1".into() });
/// assert_eq!(e.to_string(), "fs-backup get: not found: db-1");
/// assert!(!e.is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    provider: Cow<'static, str>,
    operation: Cow<'static, str>,
    not_sent: bool,
}

impl Error {
    /// An error of `kind` raised by `provider` while doing `operation`.
    pub fn new(
        provider: impl Into<Cow<'static, str>>,
        operation: impl Into<Cow<'static, str>>,
        kind: ErrorKind,
    ) -> Self {
        Self {
            kind,
            provider: provider.into(),
            operation: operation.into(),
            not_sent: false,
        }
    }

    /// Marks the error as raised before the request left this process (e.g. the connection
    /// could not be opened), so even non-idempotent work may be retried.
    pub fn mark_not_sent(mut self) -> Self {
        self.not_sent = true;
        self
    }

    /// Whether the failed request is known never to have reached the provider.
    pub fn was_not_sent(&self) -> bool {
        self.not_sent
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(
        provider: impl Into<Cow<'static, str>>,
        operation: impl Into<Cow<'static, str>>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::new(
            provider,
            operation,
            ErrorKind::InvalidInput {
                field: field.into(),
                reason: reason.into(),
            },
        )
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error.
    pub fn unsupported(
        provider: impl Into<Cow<'static, str>>,
        operation: impl Into<Cow<'static, str>>,
        capability: impl Into<String>,
    ) -> Self {
        Self::new(
            provider,
            operation,
            ErrorKind::Unsupported {
                capability: capability.into(),
            },
        )
    }

    /// Shorthand for an [`ErrorKind::Forbidden`] error saying what was refused.
    pub fn forbidden(
        provider: impl Into<Cow<'static, str>>,
        operation: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(
            provider,
            operation,
            ErrorKind::Forbidden {
                detail: detail.into(),
            },
        )
    }

    /// An I/O error, keeping its kind.
    pub fn io(
        provider: impl Into<Cow<'static, str>>,
        operation: impl Into<Cow<'static, str>>,
        err: &std::io::Error,
    ) -> Self {
        Self::new(
            provider,
            operation,
            ErrorKind::Io {
                kind: err.kind(),
                message: err.to_string(),
            },
        )
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The provider (or adapter) that raised it, e.g. `"gcp-run"`, `"fs-backup"`.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The operation that failed, e.g. `"set_traffic"`.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// Whether the same call may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The wait the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.kind.retry_after()
    }

    /// The same error, attributed to another operation (keeps the kind and provider).
    pub fn with_operation(mut self, operation: impl Into<Cow<'static, str>>) -> Self {
        self.operation = operation.into();
        self
    }
}

impl Error {
    /// A caught panic's payload as an [`ErrorKind::Panicked`] error: its message when it is a
    /// string, at most 512 bytes, credentials masked.
    pub fn from_panic(
        provider: &'static str,
        operation: impl Into<Cow<'static, str>>,
        payload: &(dyn std::any::Any + Send),
    ) -> Self {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic without a message)".into());
        let message = crate::redact::redact_excerpt(text.as_bytes(), 512);
        Self::new(provider, operation, ErrorKind::Panicked { message })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.provider, self.operation, self.kind)
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match e.kind() {
            ErrorKind::Io { kind, .. } => *kind,
            ErrorKind::NotFound { .. } => std::io::ErrorKind::NotFound,
            ErrorKind::ChecksumMismatch { .. } | ErrorKind::Decode { .. } => {
                std::io::ErrorKind::InvalidData
            }
            ErrorKind::Timeout { .. } => std::io::ErrorKind::TimedOut,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// Recovers an [`Error`] wrapped into an `io::Error` by a stream, or wraps a plain I/O error.
pub fn from_io(
    provider: impl Into<Cow<'static, str>>,
    operation: impl Into<Cow<'static, str>>,
    err: std::io::Error,
) -> Error {
    let io_kind = err.kind();
    let message = err.to_string();
    match err.into_inner() {
        Some(inner) => match inner.downcast::<Error>() {
            Ok(e) => *e,
            Err(other) => Error::new(
                provider,
                operation,
                ErrorKind::Io {
                    kind: io_kind,
                    message: other.to_string(),
                },
            ),
        },
        None => Error::new(
            provider,
            operation,
            ErrorKind::Io {
                kind: io_kind,
                message,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        assert!(ErrorKind::RateLimited { retry_after: None }.is_retryable());
        assert!(
            ErrorKind::Provider {
                status: 502,
                code: None,
                body_excerpt: String::new()
            }
            .is_retryable()
        );
        assert!(
            !ErrorKind::Provider {
                status: 400,
                code: None,
                body_excerpt: String::new()
            }
            .is_retryable()
        );
        assert!(!ErrorKind::Unauthorized.is_retryable());
        assert!(
            !ErrorKind::Conflict {
                detail: "etag".into()
            }
            .is_retryable()
        );
    }

    #[test]
    fn display_names_provider_operation_and_kind() {
        let e = Error::new(
            "gcp-run",
            "set_traffic",
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
        );
        assert_eq!(
            e.to_string(),
            "gcp-run set_traffic: rate limited (retry after 3s)"
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn io_round_trip_keeps_the_typed_error() {
        let e = Error::new(
            "fs-backup",
            "get",
            ErrorKind::ChecksumMismatch {
                expected: "a".into(),
                actual: "b".into(),
            },
        );
        let io: std::io::Error = e.clone().into();
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(from_io("x", "y", io), e);
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let back = from_io("x", "read", plain);
        assert!(back.is_retryable());
    }
}
