//! PostgreSQL errors → [`ErrorKind`], by SQLSTATE class, in one place.

use ops_core::{Error, ErrorKind};
use tokio_postgres::error::SqlState;

/// The error for a failed statement or connection. Messages come from the server and never
/// contain the connection password.
pub fn pg_error(operation: &'static str, e: &tokio_postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        // No server answer: the connection failed or closed.
        let kind = if e.is_closed() || e.to_string().contains("connect") {
            ErrorKind::Unavailable { retry_after: None }
        } else {
            ErrorKind::Io {
                kind: std::io::ErrorKind::Other,
                message: e.to_string(),
            }
        };
        return Error::new("postgres", operation, kind);
    };
    let code = db.code();
    let message = ops_core::redact::redact_text(db.message());
    let kind = match code.code() {
        c if c == SqlState::INVALID_PASSWORD.code()
            || c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION.code() =>
        {
            ErrorKind::Unauthorized
        }
        c if c == SqlState::INSUFFICIENT_PRIVILEGE.code() => ErrorKind::Forbidden {
            detail: message.clone(),
        },
        c if c == SqlState::INVALID_CATALOG_NAME.code()
            || c == SqlState::UNDEFINED_TABLE.code()
            || c == SqlState::UNDEFINED_OBJECT.code() =>
        {
            ErrorKind::NotFound { resource: message }
        }
        c if c == SqlState::DUPLICATE_DATABASE.code()
            || c == SqlState::DUPLICATE_TABLE.code()
            || c == SqlState::UNIQUE_VIOLATION.code() =>
        {
            ErrorKind::AlreadyExists { resource: message }
        }
        c if c == SqlState::T_R_SERIALIZATION_FAILURE.code()
            || c == SqlState::T_R_DEADLOCK_DETECTED.code()
            || c == SqlState::LOCK_NOT_AVAILABLE.code()
            || c == SqlState::OBJECT_IN_USE.code() =>
        {
            ErrorKind::Conflict { detail: message }
        }
        c if c == SqlState::QUERY_CANCELED.code() => ErrorKind::Timeout {
            after: std::time::Duration::ZERO,
        },
        c if c == SqlState::TOO_MANY_CONNECTIONS.code()
            || c == SqlState::CANNOT_CONNECT_NOW.code()
            || c == SqlState::ADMIN_SHUTDOWN.code() =>
        {
            ErrorKind::Unavailable { retry_after: None }
        }
        c if c.starts_with("42") || c.starts_with("22") => ErrorKind::InvalidInput {
            field: "sql".into(),
            reason: message,
        },
        c => ErrorKind::Provider {
            status: 0,
            code: Some(format!("SQLSTATE {c}")),
            body_excerpt: message,
        },
    };
    Error::new("postgres", operation, kind)
}
