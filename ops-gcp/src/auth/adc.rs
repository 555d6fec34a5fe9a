//! Application Default Credentials: the same search order as Google's client libraries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::{Error, ErrorKind, Result};

use super::{AccessToken, CLOUD_PLATFORM_SCOPE, ServiceAccount, TokenProvider, TokenSource};

/// Finds credentials the way Google's libraries do and returns a provider over them:
///
/// 1. `GOOGLE_APPLICATION_CREDENTIALS` naming a service-account key file: [`ServiceAccount`]
///    (our own exchange, so the key's `token_uri`, retries and typed errors apply);
/// 2. otherwise gcp_auth's search: gcloud's `application_default_credentials.json` (user
///    credentials), the metadata server (on GCP), `gcloud auth print-access-token`.
///
/// Failing all, the error says what to set.
pub async fn application_default() -> Result<TokenProvider> {
    if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
        let json = std::fs::read_to_string(&path)
            .map_err(|e| ops_core::error::from_io("gcp-auth", "application_default", e))?;
        let is_service_account = serde_json::from_str::<serde_json::Value>(&json)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
            .is_some_and(|t| t == "service_account");
        if is_service_account {
            return Ok(TokenProvider::new(Arc::new(ServiceAccount::from_json(
                &json,
            )?)));
        }
    }
    let inner = gcp_auth::provider().await.map_err(|e| auth_error(&e))?;
    Ok(TokenProvider::new(Arc::new(GcpAuthSource::new(inner))))
}

/// A token source backed by a gcp_auth provider (user credentials, metadata server, gcloud).
pub struct GcpAuthSource {
    inner: Arc<dyn gcp_auth::TokenProvider>,
}

impl GcpAuthSource {
    /// Wraps a gcp_auth provider.
    pub fn new(inner: Arc<dyn gcp_auth::TokenProvider>) -> Self {
        Self { inner }
    }
}

impl fmt::Debug for GcpAuthSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GcpAuthSource")
    }
}

#[async_trait]
impl TokenSource for GcpAuthSource {
    async fn fetch(&self) -> Result<AccessToken> {
        let token = self
            .inner
            .token(&[CLOUD_PLATFORM_SCOPE])
            .await
            .map_err(|e| auth_error(&e))?;
        Ok(AccessToken::new(token.as_str(), Some(token.expires_at())))
    }

    // gcp_auth refreshes 20 s before expiry on its own; asking inside that margin gets a new one.
    fn refresh_margin(&self) -> Duration {
        Duration::from_secs(10)
    }
}

fn auth_error(e: &gcp_auth::Error) -> Error {
    let kind = match e {
        gcp_auth::Error::NoAuthMethod(..) => ErrorKind::InvalidInput {
            field: "credentials".into(),
            reason: "no Application Default Credentials: set GOOGLE_APPLICATION_CREDENTIALS to a \
                     key file, run `gcloud auth application-default login`, or run on GCP"
                .into(),
        },
        gcp_auth::Error::Http(..) => ErrorKind::Unavailable { retry_after: None },
        other => {
            // gcp_auth's messages name files and endpoints, never tokens or keys.
            tracing::warn!(error = %other, "Google credentials were refused");
            ErrorKind::Unauthorized
        }
    };
    Error::new("gcp-auth", "token", kind)
}
