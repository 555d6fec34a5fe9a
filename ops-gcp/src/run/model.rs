//! Cloud Run Admin API v2 resources, as far as this crate reads them. The revision template is
//! kept as raw JSON: a write sends back every field it did not mean to change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST`.
pub const LATEST: &str = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST";
/// `TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION`.
pub const BY_REVISION: &str = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION";
/// Ingress that admits nothing: how this crate stops a service (see `stop_serving`).
pub const INGRESS_NONE: &str = "INGRESS_TRAFFIC_NONE";
/// Ingress that admits everything.
pub const INGRESS_ALL: &str = "INGRESS_TRAFFIC_ALL";
/// The ingress the API may read back when none was set; it means the default (all).
pub const INGRESS_UNSPECIFIED: &str = "INGRESS_TRAFFIC_UNSPECIFIED";

/// The ingress to restore after a stop: the recorded one, unless it was unset or unspecified
/// (both mean the default, all traffic), which is never written back.
pub fn ingress_to_restore(recorded: Option<&str>) -> &str {
    match recorded {
        None | Some("") | Some(INGRESS_UNSPECIFIED) | Some(INGRESS_NONE) => INGRESS_ALL,
        Some(other) => other,
    }
}
/// The service annotation that remembers the ingress in force before a stop.
pub const INGRESS_BEFORE_STOP: &str = "ops.rs/ingress-before-stop";
/// The service annotation that remembers the service-level scaling (JSON) before a stop.
pub const SCALING_BEFORE_STOP: &str = "ops.rs/scaling-before-stop";
/// `scalingMode` that pins the instance count (`manualInstanceCount`), overriding every
/// revision's own minimum and maximum.
pub const SCALING_MANUAL: &str = "MANUAL";

/// A `Service`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// `projects/P/locations/L/services/S`.
    pub name: String,
    /// Concurrency token.
    #[serde(default)]
    pub etag: Option<String>,
    /// The public URL.
    #[serde(default)]
    pub uri: Option<String>,
    /// Who may reach it.
    #[serde(default)]
    pub ingress: Option<String>,
    /// Service annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The template new revisions are made from (raw JSON).
    #[serde(default)]
    pub template: serde_json::Value,
    /// Desired traffic.
    #[serde(default)]
    pub traffic: Vec<TrafficTarget>,
    /// Traffic in force.
    #[serde(default)]
    pub traffic_statuses: Vec<TrafficTarget>,
    /// Service-level scaling.
    #[serde(default)]
    pub scaling: Option<ServiceScaling>,
    /// Full name of the newest ready revision.
    #[serde(default)]
    pub latest_ready_revision: Option<String>,
    /// Full name of the newest revision.
    #[serde(default)]
    pub latest_created_revision: Option<String>,
    /// The service's overall condition.
    #[serde(default)]
    pub terminal_condition: Option<Condition>,
    /// Other conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Whether a change is still being rolled out.
    #[serde(default)]
    pub reconciling: bool,
}

/// A `TrafficTarget` / `TrafficTargetStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTarget {
    /// `…_LATEST` or `…_REVISION`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Revision name (short) for `…_REVISION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Percent of requests.
    #[serde(default)]
    pub percent: u8,
    /// A tag giving the target its own URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The tag's URL (statuses only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl TrafficTarget {
    /// `percent` to the revision `name`.
    pub fn to_revision(name: &str, percent: u8) -> Self {
        Self {
            kind: Some(BY_REVISION.into()),
            revision: Some(name.into()),
            percent,
            ..Self::default()
        }
    }

    /// `percent` to whatever revision is newest.
    pub fn to_latest(percent: u8) -> Self {
        Self {
            kind: Some(LATEST.into()),
            percent,
            ..Self::default()
        }
    }

    /// Whether this follows the latest revision.
    pub fn is_latest(&self) -> bool {
        self.kind.as_deref() == Some(LATEST)
    }
}

/// `ServiceScaling`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceScaling {
    /// Minimum instances over all revisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_instance_count: Option<u32>,
    /// Maximum instances over all revisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instance_count: Option<u32>,
    /// `AUTOMATIC` or `MANUAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_mode: Option<String>,
    /// Instances of a `MANUAL` service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_instance_count: Option<u32>,
    /// Fields this crate does not know yet, written back as they were read: a patch of
    /// `scaling` replaces the whole message, and must not clear what it did not mean to change.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl ServiceScaling {
    /// Manual scaling to zero instances: nothing runs, whatever the revisions' minimums.
    pub fn is_stopped(&self) -> bool {
        self.scaling_mode.as_deref() == Some(SCALING_MANUAL)
            && self.manual_instance_count == Some(0)
    }

    /// The same settings, pinned to zero instances.
    pub fn stopped(&self) -> Self {
        Self {
            scaling_mode: Some(SCALING_MANUAL.into()),
            manual_instance_count: Some(0),
            ..self.clone()
        }
    }

    /// What to restore from the annotation written by a stop. A missing or damaged annotation
    /// gives the current settings back to automatic scaling, never a service left at zero.
    pub fn to_restore(recorded: Option<&str>, current: Option<&ServiceScaling>) -> Self {
        if let Some(before) = recorded.and_then(|r| serde_json::from_str::<Self>(r).ok())
            && !before.is_stopped()
        {
            return before;
        }
        let mut s = current.cloned().unwrap_or_default();
        if s.is_stopped() {
            s.scaling_mode = None;
            s.manual_instance_count = None;
        }
        s
    }
}

/// A `Condition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `RoutesReady`, `ConfigurationsReady`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `CONDITION_SUCCEEDED`, `CONDITION_FAILED`, `CONDITION_PENDING`, `CONDITION_RECONCILING`.
    #[serde(default)]
    pub state: String,
    /// What is wrong, if anything.
    #[serde(default)]
    pub message: Option<String>,
}

impl Condition {
    /// `CONDITION_SUCCEEDED`.
    pub fn succeeded(&self) -> bool {
        self.state == "CONDITION_SUCCEEDED"
    }

    /// `CONDITION_FAILED`.
    pub fn failed(&self) -> bool {
        self.state == "CONDITION_FAILED"
    }
}

/// A `Revision`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// `projects/P/locations/L/services/S/revisions/R`.
    pub name: String,
    /// Concurrency token (a delete names it, so a changed revision is not deleted).
    #[serde(default)]
    pub etag: Option<String>,
    /// When it was created.
    #[serde(default)]
    pub create_time: Option<DateTime<Utc>>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its containers (the first one's image is the version).
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Readiness.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The part of a `Container` read here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The image reference.
    #[serde(default)]
    pub image: String,
    /// Its environment (what a configuration change sets).
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

/// One environment variable of a container: a plain value or a secret reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// A plain value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where the value comes from instead (`{"secretKeyRef": {"secret", "version"}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_source: Option<serde_json::Value>,
}

/// A page of `revisions.list`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionPage {
    /// The revisions.
    #[serde(default)]
    pub revisions: Vec<Revision>,
    /// The next page, if any.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// The last segment of a resource name (`…/revisions/api-00002-abc` → `api-00002-abc`).
pub fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_fields_this_crate_does_not_know_are_written_back() {
        let read = serde_json::json!({"scalingMode": "MANUAL", "manualInstanceCount": 3,
                                      "someFieldAddedLater": {"x": 1}});
        let mut scaling: ServiceScaling = serde_json::from_value(read.clone()).unwrap();
        assert_eq!(scaling.manual_instance_count, Some(3));
        scaling.max_instance_count = Some(8);
        let mut expected = read;
        expected["maxInstanceCount"] = serde_json::json!(8);
        assert_eq!(serde_json::to_value(&scaling).unwrap(), expected);
    }
}
