//! Bearer tokens that expire: where they come from ([`TokenSource`]) and how they are shared
//! ([`TokenProvider`]: cached, refreshed before expiry, one refresh for all callers). Google
//! service accounts and GitHub App installations both use it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! use ops_core::http::TokenProvider;
//! // A fixed token (tests, a CI secret).
//! let auth = TokenProvider::static_token("example-token");
//! assert_eq!(format!("{:?}", auth.token().await?), "AccessToken { token: \"[redacted]\", expires_at: None }");
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::Result;
use crate::clock::{SharedClock, system_clock};

/// A bearer token and when it stops working. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    token: SecretString,
    expires_at: Option<DateTime<Utc>>,
}

impl AccessToken {
    /// A token valid until `expires_at` (`None`: no known expiry).
    pub fn new(token: impl Into<String>, expires_at: Option<DateTime<Utc>>) -> Self {
        Self {
            token: SecretString::from(token.into()),
            expires_at,
        }
    }

    /// The token itself, for an `Authorization` header.
    pub fn secret(&self) -> &str {
        self.token.expose_secret()
    }

    /// When it expires, if known.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    fn same_as(&self, other: &AccessToken) -> bool {
        self.secret() == other.secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where fresh tokens come from: a service-account key, the metadata server, a GitHub App
/// installation, a constant.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// Fetches a new token.
    async fn fetch(&self) -> Result<AccessToken>;

    /// How long before expiry a token counts as stale. Sources that cache on their own ask for less, so that when the provider asks, the source has refreshed.
    fn refresh_margin(&self) -> Duration {
        Duration::from_secs(300)
    }

    /// Whether a new fetch can give a different token (a 401 is then worth one retry).
    fn can_refresh(&self) -> bool {
        true
    }
}

/// A fixed token.
#[derive(Clone)]
pub struct StaticToken(SecretString);

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken([redacted])")
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn fetch(&self) -> Result<AccessToken> {
        Ok(AccessToken {
            token: self.0.clone(),
            expires_at: None,
        })
    }

    fn can_refresh(&self) -> bool {
        false
    }
}

/// Hands out tokens from a [`TokenSource`], cached until `refresh_margin` before expiry.
/// Concurrent callers that find the token stale share one fetch.
pub struct TokenProvider {
    source: Arc<dyn TokenSource>,
    clock: SharedClock,
    cached: RwLock<Option<AccessToken>>,
    refresh: tokio::sync::Mutex<()>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider over `source`, on the system clock.
    pub fn new(source: Arc<dyn TokenSource>) -> Self {
        Self {
            source,
            clock: system_clock(),
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// A provider that always hands out `token`.
    pub fn static_token(token: impl Into<String>) -> Self {
        Self::new(Arc::new(StaticToken(SecretString::from(token.into()))))
    }

    /// The same provider judging expiry by `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// A token that is not stale, fetching one if needed.
    pub async fn token(&self) -> Result<AccessToken> {
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        // One fetch at a time; whoever waited finds the token the first one stored.
        let _guard = self.refresh.lock().await;
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        let token = self.source.fetch().await?;
        tracing::debug!(expires_at = ?token.expires_at, "fetched an access token");
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        Ok(token)
    }

    /// Forgets `rejected` (the server answered 401 to it) so the next call fetches anew.
    /// Returns whether a new fetch can help.
    pub fn invalidate(&self, rejected: &AccessToken) -> bool {
        let mut cached = self.cached.write().unwrap_or_else(|e| e.into_inner());
        if cached.as_ref().is_some_and(|c| c.same_as(rejected)) {
            *cached = None;
        }
        self.source.can_refresh()
    }

    fn fresh(&self) -> Option<AccessToken> {
        let cached = self.cached.read().unwrap_or_else(|e| e.into_inner());
        let token = cached.as_ref()?;
        let margin = chrono::Duration::from_std(self.source.refresh_margin()).ok()?;
        match token.expires_at {
            Some(at) if self.clock.now() + margin >= at => None,
            _ => Some(token.clone()),
        }
    }
}
