//! The client core: configuration ([`KubeConfig`]), the authenticated client ([`KubeClient`])
//! with the one error mapping ([`parse_error`]), and list paging that survives an expired
//! `continue` token (410 Gone) by listing again.

mod credentials;
mod error;
mod replace;

use std::sync::Arc;

use ops_core::clock::SharedClock;
use ops_core::http::{
    Authorizer, HttpClient, HttpConfig, JsonRequest, SendOptions, TlsOptions, TokenProvider,
};
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

pub use credentials::{Credentials, ExecPlugin};
pub use error::{ApiStatus, StatusCause, StatusDetails, parse_error};
pub(crate) use replace::replace;

/// The provider name in errors.
pub(crate) const PROVIDER: &str = "kubernetes";

/// How to reach a cluster.
#[derive(Debug, Clone)]
pub struct KubeConfig {
    /// The API server (`https://10.0.0.1:6443`).
    pub server: Url,
    /// The namespace calls act in.
    pub namespace: String,
    /// How requests authenticate.
    pub credentials: Credentials,
    /// The cluster's certificate authority and a client certificate, if any.
    pub tls: TlsOptions,
    /// Timeouts and retries.
    pub http: HttpConfig,
}

impl KubeConfig {
    /// The API server at `server`, in `namespace`, without credentials.
    pub fn new(server: &str, namespace: &str) -> Result<Self> {
        let server = Url::parse(server)
            .map_err(|e| Error::invalid_input(PROVIDER, "config", "server", e.to_string()))?;
        check_name("config", "namespace", namespace)?;
        Ok(Self {
            server,
            namespace: namespace.to_string(),
            credentials: Credentials::None,
            tls: TlsOptions::default(),
            http: HttpConfig::default(),
        })
    }

    /// The same config with a bearer token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.credentials = Credentials::Token(secrecy::SecretString::from(token.into()));
        self
    }

    /// The same config in `namespace`.
    pub fn namespace(mut self, namespace: &str) -> Result<Self> {
        check_name("config", "namespace", namespace)?;
        self.namespace = namespace.to_string();
        Ok(self)
    }
}

/// A Kubernetes object name (or namespace): a DNS-1123 subdomain, at most 253 characters of
/// lower-case letters, digits, `-` and `.`, starting and ending alphanumeric. Anything else
/// is `InvalidInput` before a request is made, so a name can never change the URL's path.
pub fn check_name(operation: &'static str, what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
        && name
            .as_bytes()
            .last()
            .is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            PROVIDER,
            operation,
            what,
            format!("{name:?} is not a Kubernetes name (lower-case letters, digits, '-', '.')"),
        ))
    }
}

/// An authenticated client of one cluster, acting in one namespace.
#[derive(Debug, Clone)]
pub struct KubeClient {
    http: HttpClient,
    auth: Authorizer,
    server: Arc<Url>,
    namespace: Arc<str>,
    page_size: u32,
}

impl KubeClient {
    /// A client for `config`.
    pub fn new(config: KubeConfig) -> Result<Self> {
        let http = HttpClient::with_tls(PROVIDER, &config.http, &config.tls)?
            .with_error_parser(Arc::new(parse_error));
        let auth = match config.credentials {
            Credentials::None => Authorizer::none(),
            Credentials::Token(t) => {
                use secrecy::ExposeSecret;
                if t.expose_secret().trim().is_empty() {
                    return Err(Error::invalid_input(
                        PROVIDER, "config", "token", "is empty",
                    ));
                }
                Authorizer::bearer(t.expose_secret())
            }
            Credentials::TokenFile(path) => Authorizer::tokens(Arc::new(TokenProvider::new(
                Arc::new(credentials::TokenFileSource(path)),
            ))),
            Credentials::Exec(plugin) => Authorizer::tokens(Arc::new(TokenProvider::new(
                Arc::new(credentials::ExecSource(plugin)),
            ))),
        };
        let mut server = config.server;
        if !server.path().ends_with('/') {
            let p = format!("{}/", server.path());
            server.set_path(&p);
        }
        Ok(Self {
            http,
            auth,
            server: Arc::new(server),
            namespace: config.namespace.into(),
            page_size: 500,
        })
    }

    /// The same client on `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.http = self.http.with_clock(clock);
        self
    }

    /// Items per page of a list (default 500, at least 1).
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        self.http.clock()
    }

    /// The namespace calls act in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `path` (no leading `/`) on the API server, with `query`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url> {
        let mut url = self
            .server
            .join(path)
            .map_err(|e| Error::invalid_input(PROVIDER, "url", "path", e.to_string()))?;
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// GET and decode.
    pub async fn get<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
        resource: &str,
    ) -> Result<T> {
        let request = JsonRequest::get(operation, url).resource(resource);
        decode(operation, self.http.call_json(&self.auth, request).await?)
    }

    /// A write (`PUT`, `POST`, `PATCH` with `content_type`) and its decoded reply. A `PUT`
    /// carrying the object's `resourceVersion` is retried like any idempotent call: the server
    /// refuses a second application with `Conflict`, which callers read back.
    pub async fn write<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: &B,
        content_type: Option<&'static str>,
    ) -> Result<T> {
        let mut request = JsonRequest::new(operation, method, url).json(body)?;
        if let Some(ct) = content_type {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        decode(operation, self.http.call_json(&self.auth, request).await?)
    }

    /// DELETE.
    pub async fn delete(&self, operation: &'static str, url: Url, resource: &str) -> Result<()> {
        let request = JsonRequest::new(operation, Method::DELETE, url).resource(resource);
        self.http.exchange(&self.auth, &request).await.map(|_| ())
    }

    /// A plain-text GET (pod logs): the whole body, up to the HTTP client's buffered-body cap
    /// (32 MiB; `tailLines` keeps logs well under it).
    pub async fn text(&self, operation: &'static str, url: Url, resource: &str) -> Result<String> {
        let request = JsonRequest::get(operation, url).resource(resource);
        let reply = self.http.exchange(&self.auth, &request).await?;
        Ok(String::from_utf8_lossy(&reply.body).into_owned())
    }

    /// Every item of a collection at `path` (no leading `/`), matching `label_selector`, in
    /// pages of [`KubeClient::page_size`]. A `continue` token that expired between pages (410 Gone) restarts the
    /// list once from the beginning, as client-go's pager does, so nothing is missed or
    /// counted twice.
    pub async fn list<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        label_selector: Option<&str>,
    ) -> Result<Vec<T>> {
        #[derive(serde::Deserialize)]
        struct Page<T> {
            #[serde(default = "Vec::new")]
            items: Vec<T>,
            #[serde(default)]
            metadata: ListMeta,
        }
        #[derive(serde::Deserialize, Default)]
        struct ListMeta {
            #[serde(default, rename = "continue")]
            continue_: Option<String>,
        }
        let mut restarted = false;
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10_000 {
            let limit = self.page_size.to_string();
            let mut query = vec![("limit", limit.as_str())];
            if let Some(s) = label_selector {
                query.push(("labelSelector", s));
            }
            if let Some(t) = token.as_deref() {
                query.push(("continue", t));
            }
            let request =
                JsonRequest::get(operation, self.url(path, &query)?).options(SendOptions {
                    accept: vec![410],
                    resource: Some(path.to_string()),
                    ..SendOptions::default()
                });
            let reply = self.http.exchange(&self.auth, &request).await?;
            if reply.status.as_u16() == 410 {
                if restarted || token.is_none() {
                    return Err(Error::new(
                        PROVIDER,
                        operation,
                        ErrorKind::Conflict {
                            detail: "the list expired twice (410 Gone)".into(),
                        },
                    ));
                }
                tracing::info!(path, "list continue token expired: listing again");
                restarted = true;
                items.clear();
                token = None;
                continue;
            }
            let page: Page<T> = decode(operation, reply.json(PROVIDER, operation)?)?;
            items.extend(page.items);
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(items),
            }
        }
        Err(Error::new(
            PROVIDER,
            operation,
            ErrorKind::Decode {
                detail: "more than 10 000 pages".into(),
            },
        ))
    }
}

/// Decodes a reply into `T` after taking out `apiVersion` and `kind` (of the object and of a
/// list's items): the path asked already fixes them, and k8s-openapi refuses any value but its
/// own where the description allows any string.
fn decode<T: DeserializeOwned>(operation: &'static str, mut v: serde_json::Value) -> Result<T> {
    fn strip(v: &mut serde_json::Value) {
        if let Some(o) = v.as_object_mut() {
            o.remove("apiVersion");
            o.remove("kind");
            if let Some(items) = o.get_mut("items").and_then(serde_json::Value::as_array_mut) {
                items.iter_mut().for_each(strip);
            }
        }
    }
    strip(&mut v);
    serde_json::from_value(v).map_err(|e| {
        Error::new(
            PROVIDER,
            operation,
            ErrorKind::Decode {
                detail: e.to_string(),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kubernetes_names_pass() {
        for ok in ["web", "event-stream", "a", "db.v2", "x1"] {
            assert!(check_name("t", "name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Web",
            "-web",
            "web-",
            "a/b",
            "..",
            "a b",
            "web%2F",
            &"a".repeat(254),
        ] {
            assert!(check_name("t", "name", bad).is_err(), "{bad}");
        }
    }
}
