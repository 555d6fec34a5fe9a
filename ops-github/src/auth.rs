//! GitHub App authentication: a JWT signed (RS256) with the App's private key is exchanged for
//! an installation access token, which lasts an hour and is cached by
//! [`ops_core::http::TokenProvider`] until five minutes before it expires.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ops_core::http::{AccessToken, Authorizer, HttpClient, JsonRequest, TokenSource};
use ops_core::retry::Idempotency;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use url::Url;

/// A GitHub App installation: who signs, and which installation the token is for.
#[derive(Clone)]
pub struct GithubApp {
    app_id: String,
    installation_id: u64,
    // ring never prints the key; `Debug` below shows only the ids.
    key: Arc<RsaKeyPair>,
}

impl fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubApp")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl GithubApp {
    /// The App `app_id` (its numeric id or client id) acting as `installation_id`, signing
    /// with the PEM private key GitHub issued (PKCS#1 `RSA PRIVATE KEY` or PKCS#8). Errors never
    /// echo the key.
    pub fn from_pem(app_id: impl Into<String>, installation_id: u64, pem: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::invalid_input("github", "app", "private_key", reason);
        let app_id = app_id.into();
        if app_id.trim().is_empty() {
            return Err(Error::invalid_input("github", "app", "app_id", "is empty"));
        }
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| invalid("not a PEM private key"))?;
        let key = match &der {
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            _ => return Err(invalid("not an RSA key")),
        }
        .map_err(|_| invalid("not a usable RSA key"))?;
        Ok(Self {
            app_id,
            installation_id,
            key: Arc::new(key),
        })
    }

    /// `GITHUB_APP_ID`, `GITHUB_APP_INSTALLATION_ID` and the key from
    /// `GITHUB_APP_PRIVATE_KEY` (PEM text) or `GITHUB_APP_PRIVATE_KEY_PATH`.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::invalid_input("github", "app", name, "is not set"))
        };
        let app_id = var("GITHUB_APP_ID")?;
        let installation = var("GITHUB_APP_INSTALLATION_ID")?
            .trim()
            .parse::<u64>()
            .map_err(|_| {
                Error::invalid_input(
                    "github",
                    "app",
                    "GITHUB_APP_INSTALLATION_ID",
                    "is not a number",
                )
            })?;
        let pem = match var("GITHUB_APP_PRIVATE_KEY") {
            Ok(pem) => pem,
            Err(_) => {
                let path = var("GITHUB_APP_PRIVATE_KEY_PATH")?;
                std::fs::read_to_string(&path)
                    .map_err(|e| ops_core::error::from_io("github", "app", e))?
            }
        };
        Self::from_pem(app_id, installation, &pem)
    }

    /// The installation the tokens are for.
    pub fn installation_id(&self) -> u64 {
        self.installation_id
    }

    /// The App JWT at `now`: issued a minute in the past (clock drift, as GitHub advises),
    /// valid for nine minutes (GitHub's limit is ten).
    pub fn jwt(&self, now: DateTime<Utc>) -> Result<String> {
        let iat = now.timestamp() - 60;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        let claims = serde_json::json!({"iat": iat, "exp": iat + 600, "iss": self.app_id});
        let mut jwt = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                jwt.as_bytes(),
                &mut signature,
            )
            .map_err(|_| {
                Error::new(
                    "github",
                    "app_jwt",
                    ErrorKind::VerificationFailed {
                        check: "jwt_signature".into(),
                        detail: "signing the App JWT failed".into(),
                    },
                )
            })?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jwt)
    }

    /// The public key (DER `RSAPublicKey`), to verify JWTs in tests.
    pub fn public_key_der(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        self.key.public_key().as_ref().to_vec()
    }
}

/// Installation tokens from `POST /app/installations/{id}/access_tokens`.
#[derive(Debug)]
pub struct InstallationTokens {
    app: GithubApp,
    http: HttpClient,
    base_url: Url,
    api_version: String,
}

impl InstallationTokens {
    /// Tokens for `app`, asked of the API at `base_url`.
    pub fn new(app: GithubApp, http: HttpClient, base_url: Url, api_version: String) -> Self {
        Self {
            app,
            http,
            base_url,
            api_version,
        }
    }
}

#[derive(Deserialize)]
struct TokenReply {
    token: String,
    expires_at: DateTime<Utc>,
}

#[async_trait]
impl TokenSource for InstallationTokens {
    async fn fetch(&self) -> Result<AccessToken> {
        let jwt = self.app.jwt(self.http.clock().now())?;
        let url = self
            .base_url
            .join(&format!(
                "app/installations/{}/access_tokens",
                self.app.installation_id
            ))
            .map_err(|e| Error::invalid_input("github", "app", "base_url", e.to_string()))?;
        // Minting a token changes nothing else: safe to repeat.
        let mut request = JsonRequest::new("installation_token", Method::POST, url)
            .idempotency(Idempotency::Idempotent)
            .resource(format!("installation {}", self.app.installation_id));
        request.headers = crate::api::headers(&self.api_version)?;
        let reply: TokenReply = self
            .http
            .call_json(&Authorizer::bearer(jwt), request)
            .await?;
        tracing::debug!(installation = self.app.installation_id, expires_at = %reply.expires_at, "minted a GitHub installation token");
        Ok(AccessToken::new(reply.token, Some(reply.expires_at)))
    }
}
