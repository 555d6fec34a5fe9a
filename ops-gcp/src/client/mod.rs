//! The client core every service module shares: configuration, base URLs, the authenticated
//! HTTP client with one error mapping ([`parse_error`]), and long-running operations.

mod error;
mod operation;
mod paging;

use std::sync::Arc;

use ops_core::clock::SharedClock;
use ops_core::http::{HttpClient, HttpConfig, SendOptions, bearer, decode_json};
use ops_core::{Error, ErrorKind, Result};
use reqwest::header::AUTHORIZATION;
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
        }
    }
}

impl Endpoints {
    /// Every API at one base URL (a simulator or a proxy).
    pub fn all_at(base: &str) -> Result<Self> {
        let mut url = Url::parse(base)
            .map_err(|e| Error::invalid_input("gcp", "endpoints", "base_url", e.to_string()))?;
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self {
            run: url.clone(),
            logging: url.clone(),
            monitoring: url.clone(),
            secret_manager: url.clone(),
            storage: url.clone(),
            sql_admin: url.clone(),
            resource_manager: url.clone(),
            iam: url,
        })
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

    /// Rejects an empty project or region.
    pub fn validate(&self) -> Result<()> {
        ops_core::contracts::validate_name("gcp", "config", "project", &self.project)?;
        ops_core::contracts::validate_name("gcp", "config", "region", &self.region)
    }
}

/// An authenticated client for the Google APIs.
#[derive(Debug, Clone)]
pub struct GcpClient {
    http: HttpClient,
    auth: Arc<TokenProvider>,
    config: Arc<GcpConfig>,
}

impl GcpClient {
    /// A client for `config` with tokens from `auth`.
    pub fn new(config: GcpConfig, auth: Arc<TokenProvider>) -> Result<Self> {
        config.validate()?;
        let http = HttpClient::new("gcp", &config.http)?.with_error_parser(Arc::new(parse_error));
        Ok(Self {
            http,
            auth,
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

    /// Sends a JSON request (`body` if any) and decodes the JSON answer. A 401 after a token
    /// refresh is possible gets one more try with a new token (the request was refused, so
    /// nothing ran twice).
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
        let build = |token: &str| -> Result<RequestBuilder> {
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, bearer(token)?);
            if let Some(b) = body {
                req = req.json(b);
            }
            Ok(req)
        };
        let token = self.auth.token().await?;
        let first = self
            .http
            .send_bytes(operation, build(token.secret())?, options)
            .await;
        let body = match first {
            Err(e)
                if matches!(e.kind(), ErrorKind::Unauthorized) && self.auth.invalidate(&token) =>
            {
                let token = self.auth.token().await?;
                self.http
                    .send_bytes(operation, build(token.secret())?, options)
                    .await?
                    .2
            }
            other => other?.2,
        };
        if body.is_empty() {
            return decode_json(self.http.provider(), operation, b"{}");
        }
        decode_json(self.http.provider(), operation, &body)
    }

    /// `req` with a current bearer token (for uploads, downloads and other non-JSON calls).
    pub async fn authorize(&self, req: RequestBuilder) -> Result<RequestBuilder> {
        let token = self.auth.token().await?;
        Ok(req.header(AUTHORIZATION, bearer(token.secret())?))
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
        let options = SendOptions {
            resource: Some(resource.to_string()),
            ..SendOptions::default()
        };
        self.call::<(), T>(operation, Method::GET, url, None, &options)
            .await
    }
}
