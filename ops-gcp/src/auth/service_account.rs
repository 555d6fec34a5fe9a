//! The service-account flow: a JWT signed with the key file's private key (RS256), exchanged at
//! the key's `token_uri` for an access token (RFC 7523).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ops_core::clock::{SharedClock, system_clock};
use ops_core::http::{HttpClient, HttpConfig, SendOptions, decode_json};
use ops_core::retry::Idempotency;
use ops_core::{Error, ErrorKind, Result};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde::Deserialize;

use super::{AccessToken, CLOUD_PLATFORM_SCOPE, TokenSource};

/// The OAuth grant type of the JWT exchange.
pub const TOKEN_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long a signed assertion is valid (Google's maximum).
const ASSERTION_LIFETIME: i64 = 3600;

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key_id: Option<String>,
    token_uri: String,
    project_id: Option<String>,
}

/// A service account from its JSON key file.
pub struct ServiceAccount {
    email: String,
    key_id: Option<String>,
    token_uri: String,
    project_id: Option<String>,
    scopes: Vec<String>,
    // gcp_auth parses the PKCS#8 key and signs with ring; it never prints the key.
    signer: Arc<gcp_auth::CustomServiceAccount>,
    http: HttpClient,
    clock: SharedClock,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("email", &self.email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads a key file's JSON. Errors never echo the key.
    pub fn from_json(json: &str) -> Result<Self> {
        let invalid =
            |reason: String| Error::invalid_input("gcp-auth", "service_account", "key", reason);
        let file: KeyFile = serde_json::from_str(json).map_err(|e| {
            invalid(format!(
                "not a service-account key file (line {})",
                e.line()
            ))
        })?;
        if file.kind != "service_account" {
            return Err(invalid(format!(
                "type is {:?}, expected \"service_account\"",
                file.kind
            )));
        }
        let signer = gcp_auth::CustomServiceAccount::from_json(json)
            .map_err(|_| invalid("private_key is not an RSA PKCS#8 PEM key".into()))?;
        Ok(Self {
            email: file.client_email,
            key_id: file.private_key_id,
            token_uri: file.token_uri,
            project_id: file.project_id,
            scopes: vec![CLOUD_PLATFORM_SCOPE.to_string()],
            signer: Arc::new(signer),
            http: HttpClient::new("gcp-auth", &HttpConfig::default())?
                .with_error_parser(Arc::new(parse_token_error)),
            clock: system_clock(),
        })
    }

    /// Reads a key file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path)
            .map_err(|e| ops_core::error::from_io("gcp-auth", "service_account", e))?;
        Self::from_json(&json)
    }

    /// The same account using `http` (and its clock) for the exchange.
    pub fn with_http(mut self, http: HttpClient) -> Self {
        self.clock = http.clock().clone();
        self.http = http.with_error_parser(Arc::new(parse_token_error));
        self
    }

    /// The same account asking for `scopes` instead of cloud-platform.
    pub fn with_scopes(mut self, scopes: Vec<String>) -> Self {
        self.scopes = scopes;
        self
    }

    /// The account's email.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The project the key belongs to, if the file says.
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// The signed assertion sent to `token_uri`.
    pub fn assertion(&self) -> Result<String> {
        let iat = self.clock.now().timestamp();
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = kid.clone().into();
        }
        let claims = serde_json::json!({
            "iss": self.email,
            "scope": self.scopes.join(" "),
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME,
        });
        let mut jwt = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.signer.signer().sign(jwt.as_bytes()).map_err(|_| {
            Error::new(
                "gcp-auth",
                "service_account",
                ErrorKind::VerificationFailed {
                    check: "jwt_signature".into(),
                    detail: "signing the assertion failed".into(),
                },
            )
        })?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jwt)
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[async_trait]
impl TokenSource for ServiceAccount {
    async fn fetch(&self) -> Result<AccessToken> {
        let assertion = self.assertion()?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", TOKEN_GRANT_TYPE)
            .append_pair("assertion", &assertion)
            .finish();
        let req = self
            .http
            .post(&self.token_uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form);
        // The exchange changes nothing on the server: safe to repeat.
        let options = SendOptions {
            idempotency: Some(Idempotency::Idempotent),
            resource: Some("token".into()),
            ..SendOptions::default()
        };
        let (_, _, body) = self.http.send_bytes("token", req, &options).await?;
        let parsed: TokenResponse = decode_json("gcp-auth", "token", &body)?;
        let expires_at = self.clock.now() + Duration::from_secs(parsed.expires_in);
        Ok(AccessToken::new(parsed.access_token, Some(expires_at)))
    }
}

/// OAuth error bodies (`{"error":"invalid_grant","error_description":…}`): a rejected grant is
/// `Unauthorized`, whatever the status.
fn parse_token_error(status: StatusCode, _: &HeaderMap, body: &[u8]) -> Option<ErrorKind> {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
    }
    let e: OAuthError = serde_json::from_slice(body).ok()?;
    match e.error.as_str() {
        "invalid_grant" | "invalid_client" | "unauthorized_client" => Some(ErrorKind::Unauthorized),
        "invalid_scope" | "invalid_request" if status.is_client_error() => {
            Some(ErrorKind::InvalidInput {
                field: "token_request".into(),
                reason: e.error,
            })
        }
        _ => None,
    }
}
