//! The client core every service module shares: configuration, base URLs, the authenticated
//! HTTP client with one error mapping ([`parse_error`]), and long-running operations.

mod error;
mod operation;
mod paging;

use std::sync::Arc;

use ops_core::clock::SharedClock;
use ops_core::http::{Authorizer, HttpClient, HttpConfig, JsonRequest, SendOptions};
use ops_core::{Error, Result};
use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

pub use error::{RpcStatus, operation_error_kind, parse_error};
pub use operation::{Operation, OperationPolling};
pub use paging::collect_pages;

use crate::auth::TokenProvider;

/// Base URLs of the APIs, each ending in `/`. Tests, simulators and regional endpoints set
/// their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Cloud Run Admin API (`https://run.googleapis.com/`).
    pub run: Url,
    /// Cloud Logging API (`https://logging.googleapis.com/`).
    pub logging: Url,
    /// Cloud Monitoring API (`https://monitoring.googleapis.com/`).
    pub monitoring: Url,
    /// Secret Manager API (`https://secretmanager.googleapis.com/`).
    pub secret_manager: Url,
    /// Cloud Storage JSON API (`https://storage.googleapis.com/`).
    pub storage: Url,
    /// Cloud SQL Admin API (`https://sqladmin.googleapis.com/`).
    pub sql_admin: Url,
    /// Resource Manager API (`https://cloudresourcemanager.googleapis.com/`).
    pub resource_manager: Url,
    /// IAM API (`https://iam.googleapis.com/`).
    pub iam: Url,
    /// BigQuery API (`https://bigquery.googleapis.com/`).
    pub bigquery: Url,
    /// Cloud Billing Budget API (`https://billingbudgets.googleapis.com/`).
    pub billing_budgets: Url,
}

impl Default for Endpoints {
    fn default() -> Self {
        let url = |s: &str| Url::parse(s).expect("a valid built-in URL");
        Self {
            run: url("https://run.googleapis.com/"),
            logging: url("https://logging.googleapis.com/"),
            monitoring: url("https://monitoring.googleapis.com/"),
            secret_manager: url("https://secretmanager.googleapis.com/"),
            storage: url("https://storage.googleapis.com/"),
            sql_admin: url("https://sqladmin.googleapis.com/"),
            resource_manager: url("https://cloudresourcemanager.googleapis.com/"),
            iam: url("https://iam.googleapis.com/"),
            bigquery: url("https://bigquery.googleapis.com/"),
            billing_budgets: url("https://billingbudgets.googleapis.com/"),
        }
    }
}

impl Endpoints {
    /// Every API at one base URL (a simulator or a proxy): `http(s)://host[:port][/path]`,
    /// without an API path such as `/storage/v1/` (the clients add those).
    pub fn all_at(base: &str) -> Result<Self> {
        let url = base_url("base_url", base)?;
        Ok(Self {
            run: url.clone(),
            logging: url.clone(),
            monitoring: url.clone(),
            secret_manager: url.clone(),
            storage: url.clone(),
            sql_admin: url.clone(),
            resource_manager: url.clone(),
            iam: url.clone(),
            bigquery: url.clone(),
            billing_budgets: url,
        })
    }

    /// These endpoints with Cloud Storage at `host`, as Google's client libraries read
    /// `STORAGE_EMULATOR_HOST`: `host:port` means `http://host:port`; a value with a scheme is
    /// used as it is.
    pub fn with_storage_emulator(mut self, host: &str) -> Result<Self> {
        let host = host.trim();
        let full = if host.contains("://") {
            host.to_string()
        } else {
            format!("http://{host}")
        };
        self.storage = base_url("STORAGE_EMULATOR_HOST", &full)?;
        Ok(self)
    }

    /// Google's public endpoints, with Cloud Storage at `STORAGE_EMULATOR_HOST` when that is
    /// set (fake-gcs-server, the Cloud Storage testbench), as Google's libraries do.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Endpoints::from_env`] over any variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        match lookup("STORAGE_EMULATOR_HOST").filter(|h| !h.trim().is_empty()) {
            Some(host) => Self::default().with_storage_emulator(&host),
            None => Ok(Self::default()),
        }
    }
}

/// `text` as a base URL the clients can join API paths onto (see [`check_base`]), with the
/// trailing `/` added if missing.
fn base_url(field: &str, text: &str) -> Result<Url> {
    let mut url = Url::parse(text)
        .map_err(|e| Error::invalid_input("gcp", "endpoints", field, format!("{text:?}: {e}")))?;
    if !url.cannot_be_a_base() && !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    check_base(field, &url)?;
    Ok(url)
}

/// Refuses, at construction rather than as a "not found" later, a URL the clients cannot
/// join API paths onto: not http(s) with a host (`localhost:4443` parses with the scheme
/// `localhost`), a query, a path not ending in `/`, or an API path already in it
/// (`…/storage/v1/`).
fn check_base(field: &str, url: &Url) -> Result<()> {
    let bad = |reason: String| Error::invalid_input("gcp", "endpoints", field, reason);
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(format!(
            "{url} is not an http(s) base URL (write http://host:port)"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(format!("{url} has a query or fragment")));
    }
    let api_path = url
        .path_segments()
        .into_iter()
        .flatten()
        .any(|s| matches!(s, "v1" | "v2" | "v3" | "v1beta4" | "storage" | "upload"));
    if api_path {
        return Err(bad(format!(
            "{url} already contains an API path; give the server's root (the clients add \
             /storage/v1/ and the like)"
        )));
    }
    if !url.path().ends_with('/') {
        return Err(bad(format!("{url} must end in '/'")));
    }
    Ok(())
}

impl Endpoints {
    /// Checks every base URL (see [`Endpoints::all_at`] for what is accepted).
    pub fn validate(&self) -> Result<()> {
        let all = [
            ("run", &self.run),
            ("logging", &self.logging),
            ("monitoring", &self.monitoring),
            ("secret_manager", &self.secret_manager),
            ("storage", &self.storage),
            ("sql_admin", &self.sql_admin),
            ("resource_manager", &self.resource_manager),
            ("iam", &self.iam),
            ("bigquery", &self.bigquery),
            ("billing_budgets", &self.billing_budgets),
        ];
        all.into_iter()
            .try_for_each(|(field, url)| check_base(field, url))
    }
}

/// What every Google service client needs.
#[derive(Debug, Clone)]
pub struct GcpConfig {
    /// The project id.
    pub project: String,
    /// The region (Cloud Run location), e.g. `europe-west1`.
    pub region: String,
    /// API base URLs.
    pub endpoints: Endpoints,
    /// Timeouts and retries.
    pub http: HttpConfig,
}

impl GcpConfig {
    /// A config for `project` in `region` against Google's public endpoints.
    pub fn new(project: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            region: region.into(),
            endpoints: Endpoints::default(),
            http: HttpConfig::default(),
        }
    }

    /// Rejects an empty project or region, and endpoints the clients cannot use.
    pub fn validate(&self) -> Result<()> {
        ops_core::contracts::validate_name("gcp", "config", "project", &self.project)?;
        ops_core::contracts::validate_name("gcp", "config", "region", &self.region)?;
        self.endpoints.validate()
    }
}

/// An authenticated client for the Google APIs.
#[derive(Debug, Clone)]
pub struct GcpClient {
    http: HttpClient,
    auth: Authorizer,
    config: Arc<GcpConfig>,
}

impl GcpClient {
    /// A client for `config` with tokens from `auth`.
    pub fn new(config: GcpConfig, auth: Arc<TokenProvider>) -> Result<Self> {
        config.validate()?;
        let http = HttpClient::new("gcp", &config.http)?.with_error_parser(Arc::new(parse_error));
        Ok(Self {
            http,
            auth: Authorizer::tokens(auth),
            config: Arc::new(config),
        })
    }

    /// The same client on `clock` (retries, operation polling, timestamps).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.http = self.http.with_clock(clock);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &GcpConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        self.http.clock()
    }

    /// `base` joined with `path` (which must not start with `/`).
    pub fn url(&self, base: &Url, path: &str) -> Result<Url> {
        base.join(path)
            .map_err(|e| Error::invalid_input("gcp", "url", "path", e.to_string()))
    }

    /// Sends a JSON request (`body` if any) and decodes the JSON answer (the provider kit's
    /// one call: a 401 after which a token refresh is possible gets one more try).
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
        let request = JsonRequest::new(operation, method, url)
            .json_opt(body)?
            .options(options.clone());
        self.http.call_json(&self.auth, request).await
    }

    /// `req` with a current bearer token (for uploads, downloads and other non-JSON calls).
    pub async fn authorize(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        self.auth.authorize(req).await
    }

    /// The HTTP client underneath.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// GET and decode.
    pub async fn get<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
        resource: &str,
    ) -> Result<T> {
        let request = JsonRequest::get(operation, url).resource(resource);
        self.http.call_json(&self.auth, request).await
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;
    use ops_core::ErrorKind;
    use proptest::prelude::*;

    #[test]
    fn base_urls_that_cannot_work_are_refused_at_construction() {
        for bad in [
            "localhost:4443",
            "127.0.0.1:4443",
            "ftp://host/",
            "http://localhost:4443/storage/v1/",
            "http://localhost:4443/upload/",
            "http://localhost:4443/?x=1",
            "mailto:ops@example.com",
        ] {
            let err = Endpoints::all_at(bad).unwrap_err();
            assert!(
                matches!(err.kind(), ErrorKind::InvalidInput { .. }),
                "{bad}: {err}"
            );
        }
        let e = Endpoints::all_at("http://127.0.0.1:4443").unwrap();
        assert_eq!(e.storage.as_str(), "http://127.0.0.1:4443/");
        let e = Endpoints::all_at("https://proxy.internal/google").unwrap();
        assert_eq!(e.run.as_str(), "https://proxy.internal/google/");

        let mut config = GcpConfig::new("p", "r");
        config.endpoints.storage = Url::parse("http://localhost:4443/storage/v1/").unwrap();
        let auth = Arc::new(TokenProvider::static_token("t"));
        let err = GcpClient::new(config, auth).unwrap_err();
        assert!(err.to_string().contains("API path"), "{err}");
    }

    #[test]
    fn storage_emulator_host_is_read_as_googles_libraries_read_it() {
        let env = |value: &'static str| {
            move |k: &str| (k == "STORAGE_EMULATOR_HOST").then(|| value.to_string())
        };
        let e = Endpoints::from_lookup(env("localhost:4443")).unwrap();
        assert_eq!(e.storage.as_str(), "http://localhost:4443/");
        assert_eq!(e.run, Endpoints::default().run, "only storage moves");
        let e = Endpoints::from_lookup(env("https://gcs.test:9000")).unwrap();
        assert_eq!(e.storage.as_str(), "https://gcs.test:9000/");
        assert_eq!(
            Endpoints::from_lookup(env("")).unwrap(),
            Endpoints::default()
        );
        assert_eq!(
            Endpoints::from_lookup(|_| None).unwrap(),
            Endpoints::default()
        );
        assert!(Endpoints::from_lookup(env("http://h:1/storage/v1")).is_err());
    }

    proptest! {
        #[test]
        fn any_emulator_host_is_an_endpoint_or_a_typed_error(host in ".{0,40}") {
            match Endpoints::default().with_storage_emulator(&host) {
                Ok(e) => prop_assert!(e.validate().is_ok()),
                Err(e) => {
                    let typed = matches!(e.kind(), ErrorKind::InvalidInput { .. });
                    prop_assert!(typed, "{}", e);
                }
            }
        }
    }
}
