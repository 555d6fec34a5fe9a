//! Vercel JSON shapes, as far as this crate reads them (field names from Vercel's published
//! SDK models).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ops_core::contracts::{Release, ReleaseState};
use serde::{Deserialize, Serialize};

/// The deployment `meta` key holding the version a deploy asked for.
pub const VERSION_META: &str = "opsVersion";

/// A deployment (`/v7/deployments` items and `/v13/deployments/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(from = "RawDeployment")]
pub struct Deployment {
    /// The id (`dpl_…`); list items call it `uid`.
    pub id: String,
    /// Its own URL, without scheme.
    pub url: String,
    /// `QUEUED`, `INITIALIZING`, `BUILDING`, `READY`, `ERROR`, `CANCELED`.
    pub ready_state: String,
    /// `production`, or none for a preview.
    pub target: Option<String>,
    /// Creation time, in milliseconds since the epoch.
    pub created_at: Option<i64>,
    /// Git metadata (`githubCommitSha`, `githubCommitRef`, …).
    pub meta: BTreeMap<String, String>,
    /// Why it failed.
    pub error_code: Option<String>,
    /// Why it failed, in words.
    pub error_message: Option<String>,
    /// Aliases assigned to it (the production domains, when it is production).
    pub alias: Vec<String>,
}

/// The two shapes Vercel uses: list items (`uid`, `state`, `created`) and single deployments
/// (`id`, `readyState`, `createdAt`); some carry both names.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDeployment {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default, deserialize_with = "ops_core::http::lenient::null_as_default")]
    url: String,
    #[serde(default)]
    ready_state: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(
        default,
        deserialize_with = "ops_core::http::lenient::opt_whole_number"
    )]
    created_at: Option<i64>,
    #[serde(
        default,
        deserialize_with = "ops_core::http::lenient::opt_whole_number"
    )]
    created: Option<i64>,
    #[serde(default, deserialize_with = "ops_core::http::lenient::null_as_default")]
    meta: BTreeMap<String, String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default, deserialize_with = "ops_core::http::lenient::null_as_default")]
    alias: Vec<String>,
}

impl From<RawDeployment> for Deployment {
    fn from(r: RawDeployment) -> Self {
        Self {
            id: r.id.or(r.uid).unwrap_or_default(),
            url: r.url,
            ready_state: r.ready_state.or(r.state).unwrap_or_default(),
            target: r.target,
            created_at: r.created_at.or(r.created),
            meta: r.meta,
            error_code: r.error_code,
            error_message: r.error_message,
            alias: r.alias,
        }
    }
}

impl Deployment {
    /// Whether it finished (ready, failed or cancelled).
    pub fn is_final(&self) -> bool {
        matches!(self.ready_state.as_str(), "READY" | "ERROR" | "CANCELED")
    }

    /// When it was created.
    pub fn created(&self) -> Option<DateTime<Utc>> {
        self.created_at.and_then(DateTime::from_timestamp_millis)
    }

    /// What was deployed: the version this crate asked for, else the commit, else the
    /// branch, else the id.
    pub fn version(&self) -> String {
        [
            VERSION_META,
            "githubCommitSha",
            "gitlabCommitSha",
            "bitbucketCommitSha",
            "githubCommitRef",
        ]
        .iter()
        .find_map(|k| self.meta.get(*k).cloned())
        .unwrap_or_else(|| self.id.clone())
    }

    /// As a release.
    pub fn release(&self) -> Release {
        let state = match self.ready_state.as_str() {
            "READY" => ReleaseState::Ready,
            "ERROR" | "CANCELED" => ReleaseState::Failed,
            _ => ReleaseState::Pending,
        };
        let mut labels = BTreeMap::new();
        labels.insert(
            "target".to_string(),
            self.target.clone().unwrap_or_else(|| "preview".into()),
        );
        if let Some(r) = self.meta.get("githubCommitRef") {
            labels.insert("ref".to_string(), r.clone());
        }
        Release {
            id: self.id.clone(),
            version: self.version(),
            state,
            created_at: self.created(),
            url: (!self.url.is_empty()).then(|| format!("https://{}", self.url)),
            labels,
        }
    }
}

/// Cursor pagination: `next` is the `until` of the next page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pagination {
    /// Items in this page.
    #[serde(default, deserialize_with = "ops_core::http::lenient::count")]
    pub count: u64,
    /// The next page's `until`, if any.
    #[serde(
        default,
        deserialize_with = "ops_core::http::lenient::opt_whole_number"
    )]
    pub next: Option<i64>,
}

/// A page of `/v7/deployments`.
#[derive(Debug, Default, Deserialize)]
pub struct DeploymentPage {
    /// The deployments, newest first.
    #[serde(default, deserialize_with = "ops_core::http::lenient::null_as_default")]
    pub deployments: Vec<Deployment>,
    /// Where the next page starts.
    #[serde(default, deserialize_with = "ops_core::http::lenient::null_as_default")]
    pub pagination: Pagination,
}

/// A project (`/v9/projects/{idOrName}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Project {
    /// `prj_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Paused projects serve nothing.
    #[serde(default, deserialize_with = "ops_core::http::lenient::null_as_default")]
    pub paused: bool,
    /// `production` → the deployment serving production.
    #[serde(default, deserialize_with = "ops_core::http::lenient::null_as_default")]
    pub targets: BTreeMap<String, Option<Deployment>>,
}

impl Project {
    /// The production deployment, if any.
    pub fn production(&self) -> Option<&Deployment> {
        self.targets.get("production").and_then(Option::as_ref)
    }
}

/// An environment variable (the value only where Vercel decrypts it).
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Its id.
    #[serde(default, deserialize_with = "ops_core::http::lenient::null_as_default")]
    pub id: String,
    /// The variable name.
    pub key: String,
    /// `encrypted`, `sensitive`, `plain`, `system`.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "ops_core::http::lenient::null_as_default"
    )]
    pub kind: String,
    /// `production`, `preview`, `development` (a list, or one string).
    #[serde(default, deserialize_with = "one_or_many")]
    pub target: Vec<String>,
    /// The value (decrypted by `GET /v1/projects/{id}/env/{envId}`).
    #[serde(default)]
    pub value: Option<secrecy::SecretString>,
    /// Creation time (ms).
    #[serde(
        default,
        deserialize_with = "ops_core::http::lenient::opt_whole_number"
    )]
    pub created_at: Option<i64>,
    /// Last change (ms).
    #[serde(
        default,
        deserialize_with = "ops_core::http::lenient::opt_whole_number"
    )]
    pub updated_at: Option<i64>,
}

impl std::fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvVar")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("type", &self.kind)
            .field("target", &self.target)
            .field("value", &self.value.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        Some(Raw::One(s)) => vec![s],
        Some(Raw::Many(v)) => v,
        None => Vec::new(),
    })
}

/// `GET /v10/projects/{id}/env`, in each of its documented shapes: `{envs, pagination}`,
/// `{envs}`, or one bare variable.
#[derive(Debug, Default)]
pub struct EnvPage {
    /// The variables (values not decrypted).
    pub envs: Vec<EnvVar>,
    /// Where the next page starts, when the reply is paged.
    pub pagination: Option<Pagination>,
}

impl<'de> Deserialize<'de> for EnvPage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Listed {
            envs: Vec<EnvVar>,
            #[serde(default)]
            pagination: Option<Pagination>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Listed(Listed),
            One(Box<EnvVar>),
        }
        Ok(match Shape::deserialize(d)? {
            Shape::Listed(l) => EnvPage {
                envs: l.envs,
                pagination: l.pagination,
            },
            Shape::One(e) => EnvPage {
                envs: vec![*e],
                pagination: None,
            },
        })
    }
}

/// One build or runtime event (`/v3/deployments/{id}/events`). The line is at the top level
/// in some shapes and in `payload.text` in others; [`Event::line`] reads either.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Event {
    /// `command`, `stdout`, `stderr`, `exit`, `fatal`, `deployment-state`, …
    #[serde(
        rename = "type",
        default,
        deserialize_with = "ops_core::http::lenient::null_as_default"
    )]
    pub kind: String,
    /// When (ms).
    #[serde(
        default,
        deserialize_with = "ops_core::http::lenient::opt_whole_number"
    )]
    pub created: Option<i64>,
    /// The line, in the shapes that carry it at the top level.
    #[serde(default)]
    pub text: Option<String>,
    /// The event's id, in the shapes that carry it at the top level.
    #[serde(default)]
    pub id: Option<String>,
    /// `error` or `warning`, when set.
    #[serde(default)]
    pub level: Option<String>,
    /// The event's payload, in the shapes that nest it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<EventPayload>,
}

/// The nested part of an event.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct EventPayload {
    /// The line.
    #[serde(default)]
    pub text: Option<String>,
    /// The event's id.
    #[serde(default)]
    pub id: Option<String>,
    /// When (ms).
    #[serde(
        default,
        deserialize_with = "ops_core::http::lenient::opt_whole_number"
    )]
    pub created: Option<i64>,
}

impl Event {
    /// The event's line, wherever its shape puts it.
    pub fn line(&self) -> Option<&str> {
        self.text
            .as_deref()
            .or_else(|| self.payload.as_ref()?.text.as_deref())
    }

    /// The event's id, wherever its shape puts it.
    pub fn event_id(&self) -> Option<&str> {
        self.id
            .as_deref()
            .or_else(|| self.payload.as_ref()?.id.as_deref())
    }

    /// When it happened, wherever its shape puts it.
    pub fn at(&self) -> Option<i64> {
        self.created.or_else(|| self.payload.as_ref()?.created)
    }
}
