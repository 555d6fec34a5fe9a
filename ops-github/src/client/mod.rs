//! The client core: configuration, authentication (a token or a GitHub App installation), the
//! headers every call carries, primary rate-limit bookkeeping, ETag revalidation, `Link`
//! pagination, and the one error mapping ([`parse_error`]).

mod conditional;
mod error;
mod pages;
mod rate_limit;
pub mod tail;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::SharedClock;
use ops_core::http::{
    Authorizer, HttpClient, HttpConfig, JsonRequest, SendOptions, TokenProvider, pages as kit_pages,
};
use ops_core::{Error, ErrorKind, Result};
use reqwest::header::{HeaderMap, HeaderValue, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

pub use conditional::EtagCache;
pub use error::parse_error;
pub use ops_core::http::Reply;
pub use ops_core::http::pages::Paged;
pub use pages::next_link;
pub use rate_limit::RateLimit;

use crate::auth::{GithubApp, InstallationTokens};

pub use crate::api::{API_VERSION, MEDIA_TYPE};

/// How a client proves who it is.
#[derive(Clone)]
pub enum Credentials {
    /// A personal access token, a fine-grained token or `GITHUB_TOKEN` in Actions.
    Token(SecretString),
    /// A GitHub App installation: a JWT signed with the App's key is exchanged for an
    /// installation token, cached until near its expiry.
    App(GithubApp),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token([redacted])"),
            Credentials::App(app) => f.debug_tuple("App").field(app).finish(),
        }
    }
}

/// How to reach GitHub.
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// Who the client is.
    pub credentials: Credentials,
    /// The API base URL (`https://api.github.com/`; GitHub Enterprise Server:
    /// `https://HOST/api/v3/`).
    pub base_url: Url,
    /// `X-GitHub-Api-Version`.
    pub api_version: String,
    /// Timeouts and retries.
    pub http: HttpConfig,
    /// The longest the client waits for an exhausted primary rate limit to reset before
    /// sending; beyond it a call fails at once with `RateLimited`.
    pub max_rate_limit_wait: Duration,
}

impl GithubConfig {
    /// A config for a token against `https://api.github.com/`.
    pub fn token(token: impl Into<String>) -> Self {
        Self::with_credentials(Credentials::Token(SecretString::from(token.into())))
    }

    /// A config for a GitHub App installation.
    pub fn app(app: GithubApp) -> Self {
        Self::with_credentials(Credentials::App(app))
    }

    fn with_credentials(credentials: Credentials) -> Self {
        Self {
            credentials,
            base_url: Url::parse("https://api.github.com/").expect("a valid URL"),
            api_version: API_VERSION.into(),
            http: HttpConfig::default(),
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }

    /// `GITHUB_TOKEN` (or `GH_TOKEN`) from the environment, and `GITHUB_API_URL` if set (as in
    /// Actions and on GitHub Enterprise Server).
    pub fn from_env() -> Result<Self> {
        let token = ["GITHUB_TOKEN", "GH_TOKEN"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
            .ok_or_else(|| {
                Error::invalid_input(
                    "github",
                    "config",
                    "GITHUB_TOKEN",
                    "is not set: create a fine-grained token at github.com/settings/tokens",
                )
            })?;
        let config = Self::token(token);
        match std::env::var("GITHUB_API_URL") {
            Ok(url) if !url.trim().is_empty() => config.base_url(&url),
            _ => Ok(config),
        }
    }

    /// The same config against `base` (a simulator, a proxy, GitHub Enterprise Server).
    pub fn base_url(mut self, base: &str) -> Result<Self> {
        let mut url = Url::parse(base)
            .map_err(|e| Error::invalid_input("github", "config", "base_url", e.to_string()))?;
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        self.base_url = url;
        Ok(self)
    }
}

/// Redirect statuses GitHub answers with (a renamed or transferred repository).
const REDIRECTS: [u16; 4] = [301, 302, 307, 308];
/// The most bytes [`GithubClient::download_tail`] reads of one download.
pub const MAX_DOWNLOAD: u64 = 512 * 1024 * 1024;

/// The most redirects one request follows.
pub const MAX_REDIRECTS: usize = 5;

/// An authenticated client. Cheap to clone; clones share the token, the rate-limit state and
/// the ETag cache.
#[derive(Clone)]
pub struct GithubClient {
    http: HttpClient,
    config: Arc<GithubConfig>,
    auth: Authorizer,
    rate: Arc<RateLimit>,
    etags: Arc<EtagCache>,
    /// What every request carries (media type, API version), built once.
    headers: HeaderMap,
}

impl fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubClient")
            .field("base_url", &self.config.base_url.as_str())
            .field("credentials", &self.config.credentials)
            .finish_non_exhaustive()
    }
}

impl GithubClient {
    /// A client for `config`.
    pub fn new(config: GithubConfig) -> Result<Self> {
        let rate = Arc::new(RateLimit::default());
        // Every reply's rate-limit headers are recorded, error replies included (a primary
        // limit's 403 is the one that matters most), before the error is mapped.
        let observer = rate.clone();
        let http = HttpClient::new("github", &config.http)?.with_error_parser(Arc::new(
            move |status, headers, body| {
                observer.observe(headers);
                parse_error(status, headers, body)
            },
        ));
        if let Credentials::Token(t) = &config.credentials
            && t.expose_secret().trim().is_empty()
        {
            return Err(Error::invalid_input(
                "github", "config", "token", "is empty",
            ));
        }
        let auth = token_provider(&config, &http);
        Ok(Self {
            http,
            auth: Authorizer::tokens(Arc::new(auth)),
            rate,
            etags: Arc::new(EtagCache::new(256)),
            headers: crate::api::headers(&config.api_version)?,
            config: Arc::new(config),
        })
    }

    /// The same client on `clock` (token expiry, rate-limit waits, retries, polling).
    pub fn with_clock(self, clock: SharedClock) -> Self {
        let http = self.http.with_clock(clock.clone());
        let auth = token_provider(&self.config, &http).with_clock(clock);
        Self {
            http,
            auth: Authorizer::tokens(Arc::new(auth)),
            ..self
        }
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        self.http.clock()
    }

    /// The primary rate limit as last reported by GitHub.
    pub fn rate_limit(&self) -> &RateLimit {
        &self.rate
    }

    /// `path` (no leading `/`) on the API, with `query`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url> {
        let mut url = self
            .config
            .base_url
            .join(path)
            .map_err(|e| Error::invalid_input("github", "url", "path", e.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends one request and returns the reply. GETs revalidate with `If-None-Match` when a
    /// body for the same URL is cached (a `304` costs no quota). An exhausted primary rate
    /// limit is waited out first (up to `max_rate_limit_wait`); a rejected App token is
    /// replaced once.
    pub async fn send<B>(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<&B>,
        options: &SendOptions,
    ) -> Result<Reply>
    where
        B: Serialize + ?Sized + Sync,
    {
        self.rate
            .wait_if_exhausted(self.clock(), self.config.max_rate_limit_wait, operation)
            .await?;
        let cached = (method == Method::GET)
            .then(|| self.etags.get(url.as_str()))
            .flatten();
        let mut options = options.clone();
        if cached.is_some() {
            options.accept.push(304);
        }
        options.accept.extend(REDIRECTS);
        let mut target = url.clone();
        let mut hops = 0;
        let reply = loop {
            let reply = self
                .attempt(operation, &method, &target, body, &options, cached.as_ref())
                .await?;
            self.rate.observe(&reply.headers);
            if !REDIRECTS.contains(&reply.status.as_u16()) {
                break reply;
            }
            // A renamed or transferred repository answers 301 (GET) or 307 (writes): repeat
            // the request as it was at the new location, as GitHub documents. A redirect is
            // an answer, not an effect, so nothing runs twice.
            hops += 1;
            target = self.redirect_target(operation, &target, &reply, hops)?;
            tracing::info!(operation, status = reply.status.as_u16(), to = %target.path(), "GitHub redirected the request");
        };
        if reply.status == StatusCode::NOT_MODIFIED {
            let (_, cached_body) = cached.expect("304 is accepted only with a cached body");
            return Ok(Reply {
                status: StatusCode::OK,
                headers: reply.headers,
                body: cached_body,
            });
        }
        if method == Method::GET
            && let Some(etag) = reply.headers.get(reqwest::header::ETAG)
            && let Ok(etag) = etag.to_str()
        {
            self.etags.put(url.as_str(), etag, &reply.body);
        }
        Ok(reply)
    }

    /// One attempt through the provider kit: the current token (a rejected App token is
    /// replaced once), GitHub's media type and API version, and `If-None-Match` when a body
    /// is cached.
    async fn attempt<B>(
        &self,
        operation: &'static str,
        method: &Method,
        url: &Url,
        body: Option<&B>,
        options: &SendOptions,
        cached: Option<&(String, Vec<u8>)>,
    ) -> Result<Reply>
    where
        B: Serialize + ?Sized + Sync,
    {
        let mut request = JsonRequest::new(operation, method.clone(), url.clone())
            .json_opt(body)?
            .options(options.clone());
        request.headers = self.headers.clone();
        if let Some((etag, _)) = cached
            && let Ok(etag) = HeaderValue::from_str(etag)
        {
            request = request.header(IF_NONE_MATCH, etag);
        }
        self.http.exchange(&self.auth, &request).await
    }

    /// Where a redirect points, if the client may follow it: on the API's own host and
    /// scheme (the token must not travel elsewhere), within [`MAX_REDIRECTS`] hops.
    fn redirect_target(
        &self,
        operation: &'static str,
        from: &Url,
        reply: &Reply,
        hops: usize,
    ) -> Result<Url> {
        let refuse = |detail: String| {
            Error::new(
                "github",
                operation,
                ErrorKind::Provider {
                    status: reply.status.as_u16(),
                    code: Some("redirect".into()),
                    body_excerpt: detail,
                },
            )
        };
        let location = reply
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| refuse("a redirect without a Location".into()))?;
        let to = from
            .join(location)
            .map_err(|e| refuse(format!("an unreadable Location: {e}")))?;
        let base = &self.config.base_url;
        if to.scheme() != base.scheme() || to.host() != base.host() || to.port() != base.port() {
            return Err(refuse(format!(
                "a redirect to another host ({}), not followed with the token",
                to.host_str().unwrap_or("none")
            )));
        }
        if hops > MAX_REDIRECTS {
            return Err(refuse(format!("more than {MAX_REDIRECTS} redirects")));
        }
        Ok(to)
    }

    /// GETs `url`, which answers with a redirect to a signed download elsewhere (job logs,
    /// archives), and returns where it points without following it: the token must not travel
    /// to the storage host, so the caller fetches the target without credentials.
    pub async fn download_location(
        &self,
        operation: &'static str,
        url: Url,
        resource: &str,
    ) -> Result<Url> {
        self.rate
            .wait_if_exhausted(self.clock(), self.config.max_rate_limit_wait, operation)
            .await?;
        let mut options = resource_options(resource);
        options.accept.extend(REDIRECTS);
        let reply = self
            .attempt::<()>(operation, &Method::GET, &url, None, &options, None)
            .await?;
        self.rate.observe(&reply.headers);
        let refuse = |detail: String| {
            Error::new(
                "github",
                operation,
                ErrorKind::Provider {
                    status: reply.status.as_u16(),
                    code: Some("download".into()),
                    body_excerpt: detail,
                },
            )
        };
        if !REDIRECTS.contains(&reply.status.as_u16()) {
            return Err(refuse(format!(
                "expected a redirect to the download, got {}",
                reply.status
            )));
        }
        let location = reply
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| refuse("a redirect without a Location".into()))?;
        let to = url
            .join(location)
            .map_err(|e| refuse(format!("an unreadable Location: {e}")))?;
        if !matches!(to.scheme(), "https" | "http") {
            return Err(refuse(format!("a download over {}", to.scheme())));
        }
        Ok(to)
    }

    /// The last `max_lines` lines of the text at `url` (a signed download from
    /// [`GithubClient::download_location`]), fetched without credentials. The body streams
    /// through; only the last `keep_bytes` are held, so a large log costs little memory, and
    /// reading stops after [`MAX_DOWNLOAD`] bytes (the tail is then of that much, and says so).
    pub async fn download_tail(
        &self,
        operation: &'static str,
        url: Url,
        max_lines: usize,
        keep_bytes: usize,
    ) -> Result<Vec<String>> {
        let mut resp = self
            .http
            .send_with(operation, self.http.get(url), &SendOptions::default())
            .await?;
        let mut tail = tail::Tail::new(keep_bytes);
        let io = |e: reqwest::Error| {
            Error::new(
                "github",
                operation,
                ErrorKind::Io {
                    kind: std::io::ErrorKind::UnexpectedEof,
                    message: format!("the download broke off: {e}"),
                },
            )
        };
        while let Some(chunk) = resp.chunk().await.map_err(io)? {
            tail.push(&chunk);
            if tail.read() > MAX_DOWNLOAD {
                break;
            }
        }
        let cut = tail.read() > MAX_DOWNLOAD;
        let mut out = tail.lines(max_lines);
        if cut {
            out.push(format!(
                "[ops: the log is longer than {MAX_DOWNLOAD} bytes; this is the tail of its start]"
            ));
        }
        Ok(out)
    }

    /// Sends and decodes the JSON answer.
    pub async fn call<B, T>(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<&B>,
        options: &SendOptions,
    ) -> Result<T>
    where
        B: Serialize + ?Sized + Sync,
        T: DeserializeOwned,
    {
        self.send(operation, method, url, body, options)
            .await?
            .json("github", operation)
    }

    /// GET and decode; `resource` names what was asked for in a `NotFound`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
        resource: &str,
    ) -> Result<T> {
        self.call::<(), T>(
            operation,
            Method::GET,
            url,
            None,
            &resource_options(resource),
        )
        .await
    }

    /// Every item of a paginated list, following `Link: rel="next"`, stopping at `cap` items.
    /// `extract` takes the items out of one page (an array, or a wrapper such as
    /// `{"total_count":…,"secrets":[…]}`).
    pub async fn get_pages<P, T>(
        &self,
        operation: &'static str,
        first: Url,
        cap: usize,
        extract: impl Fn(P) -> Vec<T>,
    ) -> Result<Paged<T>>
    where
        P: DeserializeOwned,
    {
        let resource = first.path().to_string();
        let extract = &extract;
        let (first, resource) = (&first, &resource);
        kit_pages::collect_pages("github", operation, cap, |next: Option<Url>| async move {
            let url = next.unwrap_or_else(|| first.clone());
            let reply = self
                .send::<()>(
                    operation,
                    Method::GET,
                    url,
                    None,
                    &resource_options(resource),
                )
                .await?;
            let page: P = reply.json("github", operation)?;
            Ok((extract(page), next_link(&reply.headers)?))
        })
        .await
    }
}

/// Where the client's tokens come from: the fixed token, or App installation tokens minted
/// through `http` (and on its clock).
fn token_provider(config: &GithubConfig, http: &HttpClient) -> TokenProvider {
    match &config.credentials {
        Credentials::Token(t) => TokenProvider::static_token(t.expose_secret()),
        Credentials::App(app) => TokenProvider::new(Arc::new(InstallationTokens::new(
            app.clone(),
            http.clone(),
            config.base_url.clone(),
            config.api_version.clone(),
        ))),
    }
}

/// Options naming `resource` in a `NotFound`.
pub fn resource_options(resource: &str) -> SendOptions {
    SendOptions {
        resource: Some(resource.to_string()),
        ..SendOptions::default()
    }
}

/// What a path segment keeps unencoded: RFC 3986 unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment (a secret or environment name, a workflow file).
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// `owner/repo`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repo {
    /// The owner (user or organisation).
    pub owner: String,
    /// The repository's name.
    pub name: String,
}

impl Repo {
    /// Parses `owner/repo`; `InvalidInput` for anything else.
    pub fn parse(full_name: &str) -> Result<Self> {
        let invalid = || {
            Error::invalid_input(
                "github",
                "repo",
                "repo",
                format!("{full_name:?} is not owner/name"),
            )
        };
        let (owner, name) = full_name.split_once('/').ok_or_else(invalid)?;
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && s != "."
                && s != ".."
        };
        if !ok(owner) || !ok(name) {
            return Err(invalid());
        }
        Ok(Self {
            owner: owner.into(),
            name: name.into(),
        })
    }

    /// `repos/{owner}/{repo}/{rest}`.
    pub fn path(&self, rest: &str) -> String {
        if rest.is_empty() {
            format!("repos/{}/{}", self.owner, self.name)
        } else {
            format!("repos/{}/{}/{rest}", self.owner, self.name)
        }
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}
