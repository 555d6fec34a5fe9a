//! Access tokens for the Google APIs: where they come from ([`TokenSource`]) and how they are
//! shared ([`TokenProvider`]: cached, refreshed before expiry, one refresh for all callers).
//!
//! ```
//! # async fn f() -> ops_core::Result<()> {
//! use ops_gcp::auth::TokenProvider;
//! // A fixed token (tests, `gcloud auth print-access-token`, a CI secret).
//! let auth = TokenProvider::static_token("ya29.example");
//! assert_eq!(format!("{:?}", auth.token().await?), "AccessToken { token: \"[redacted]\", expires_at: None }");
//! # Ok(()) }
//! ```

mod adc;
mod service_account;

pub use adc::{GcpAuthSource, application_default};
pub use service_account::{ServiceAccount, TOKEN_GRANT_TYPE};

// The token cache is shared with the other providers (GitHub App installations).
pub use ops_core::http::{AccessToken, StaticToken, TokenProvider, TokenSource};

/// The OAuth scope every API here is called with.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
