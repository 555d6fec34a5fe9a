//! One JSON call, the same for every provider: method, URL, body, extra headers and send
//! options in a [`JsonRequest`]; credentials from an [`Authorizer`] (a bearer token from a
//! [`TokenProvider`], fetched anew and the request sent once more when the server answers 401
//! to a token that can be refreshed); the provider's own error parser, retries and clock from
//! the [`HttpClient`]; an empty body read as `{}`.
//!
//! ```no_run
//! # async fn demo() -> ops_core::Result<()> {
//! use ops_core::http::{Authorizer, HttpClient, HttpConfig, JsonRequest};
//! let http = HttpClient::new("acme", &HttpConfig::default())?;
//! let auth = Authorizer::bearer("token-from-the-environment");
//! let url = url::Url::parse("https://api.acme.test/v1/things/42").unwrap();
//! let thing: serde_json::Value = http
//!     .call_json(&auth, JsonRequest::get("get_thing", url).resource("thing 42"))
//!     .await?;
//! # let _ = thing; Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::{HttpClient, SendOptions, TokenProvider, bearer, decode_json};
use crate::retry::Idempotency;
use crate::{Error, ErrorKind, Result};

/// Where a request's credentials come from.
#[derive(Clone, Default)]
pub struct Authorizer(Option<Arc<TokenProvider>>);

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Authorizer(none)"),
            Some(_) => f.write_str("Authorizer(bearer [redacted])"),
        }
    }
}

impl Authorizer {
    /// No credentials (a local Prometheus, a webhook whose URL is the secret).
    pub fn none() -> Self {
        Self(None)
    }

    /// A fixed bearer token (it cannot be refreshed: a 401 is final).
    pub fn bearer(token: impl Into<String>) -> Self {
        Self::tokens(Arc::new(TokenProvider::static_token(token)))
    }

    /// Bearer tokens from `tokens`: cached, refreshed before expiry, and fetched anew once
    /// when the server refuses one.
    pub fn tokens(tokens: Arc<TokenProvider>) -> Self {
        Self(Some(tokens))
    }

    /// `req` with a current token (for streamed uploads and downloads, which
    /// [`HttpClient::exchange`] does not send).
    pub async fn authorize(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        match &self.0 {
            None => Ok(req),
            Some(tokens) => {
                let token = tokens.token().await?;
                Ok(req.header(AUTHORIZATION, bearer(token.secret())?))
            }
        }
    }
}

/// One request whose body (if any) and reply are JSON.
#[derive(Clone)]
pub struct JsonRequest {
    /// Names the call in errors, logs and records (`get_deployment`).
    pub operation: &'static str,
    /// The method.
    pub method: Method,
    /// The full URL, query included.
    pub url: Url,
    /// The serialized JSON body.
    pub body: Option<Vec<u8>>,
    /// Headers besides credentials and content type.
    pub headers: HeaderMap,
    /// Idempotency, statuses accepted as replies, the resource named in `NotFound`.
    pub options: SendOptions,
}

impl fmt::Debug for JsonRequest {
    // The body may carry a secret (a new secret version): only its size is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonRequest")
            .field("operation", &self.operation)
            .field("method", &self.method)
            .field("path", &self.url.path())
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl JsonRequest {
    /// `method url` with no body.
    pub fn new(operation: &'static str, method: Method, url: Url) -> Self {
        Self {
            operation,
            method,
            url,
            body: None,
            headers: HeaderMap::new(),
            options: SendOptions::default(),
        }
    }

    /// `GET url`.
    pub fn get(operation: &'static str, url: Url) -> Self {
        Self::new(operation, Method::GET, url)
    }

    /// The same request with `body` as its JSON body.
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Result<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::invalid_input("ops-core", self.operation, "body", e.to_string()))?;
        self.body = Some(bytes);
        Ok(self)
    }

    /// The same request with `body` if there is one.
    pub fn json_opt<B: Serialize + ?Sized>(self, body: Option<&B>) -> Result<Self> {
        match body {
            Some(b) => self.json(b),
            None => Ok(self),
        }
    }

    /// The same request with a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// The same request naming `resource` in a `NotFound`.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.options.resource = Some(resource.into());
        self
    }

    /// The same request with its idempotency stated (a POST that is safe to repeat).
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.options.idempotency = Some(idempotency);
        self
    }

    /// The same request with these send options.
    pub fn options(mut self, options: SendOptions) -> Self {
        self.options = options;
        self
    }

    fn build(&self, http: &HttpClient, token: Option<&str>) -> Result<RequestBuilder> {
        let mut req = http
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone());
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, bearer(t)?);
        }
        if let Some(b) = &self.body {
            // A caller's own JSON media type (`application/json; charset=utf-8`) stands.
            if !self.headers.contains_key(CONTENT_TYPE) {
                req = req.header(CONTENT_TYPE, "application/json");
            }
            req = req.body(b.clone());
        }
        Ok(req)
    }
}

/// A whole reply.
#[derive(Debug)]
pub struct Reply {
    /// The status (a success, or one the request's options accept).
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON; an empty body reads as `{}` (a DELETE's or a POST's empty success).
    pub fn json<T: DeserializeOwned>(&self, provider: &str, operation: &'static str) -> Result<T> {
        let body: &[u8] = if self.body.is_empty() {
            b"{}"
        } else {
            &self.body
        };
        decode_json(provider, operation, body)
    }
}

impl HttpClient {
    /// Sends `request` with credentials from `auth` and reads the whole reply. A 401 to a
    /// token that can be refreshed gets one more try with a new token: the request was
    /// refused, so nothing ran twice.
    pub async fn exchange(&self, auth: &Authorizer, request: &JsonRequest) -> Result<Reply> {
        let send = |token: Option<String>| async move {
            let req = request.build(self, token.as_deref())?;
            self.send_bytes(request.operation, req, &request.options)
                .await
        };
        let (status, headers, body) = match &auth.0 {
            None => send(None).await?,
            Some(tokens) => {
                let token = tokens.token().await?;
                match send(Some(token.secret().to_string())).await {
                    Err(e)
                        if matches!(e.kind(), ErrorKind::Unauthorized)
                            && tokens.invalidate(&token) =>
                    {
                        let fresh = tokens.token().await?;
                        send(Some(fresh.secret().to_string())).await?
                    }
                    other => other?,
                }
            }
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// [`HttpClient::exchange`] and decode the JSON reply (`{}` when empty).
    pub async fn call_json<T: DeserializeOwned>(
        &self,
        auth: &Authorizer,
        request: JsonRequest,
    ) -> Result<T> {
        self.exchange(auth, &request)
            .await?
            .json(self.provider(), request.operation)
    }
}
