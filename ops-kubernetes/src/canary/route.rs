//! Gateway API `HTTPRoute` (`gateway.networking.k8s.io/v1`): the parts a traffic split reads
//! and writes (a rule's backend references and their weights, and the status the gateway
//! controller writes), with every other field kept as read so a write changes only weights.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The group and version of the routes read and written.
pub const GATEWAY_API_VERSION: &str = "gateway.networking.k8s.io/v1";
/// The largest weight the Gateway API allows on a backend reference.
pub const MAX_WEIGHT: i32 = 1_000_000;

/// An `HTTPRoute`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRoute {
    /// The object's metadata (`resourceVersion`, `generation`).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the route asks for.
    #[serde(default)]
    pub spec: HttpRouteSpec,
    /// What the gateway controllers say about it; never written back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RouteStatus>,
}

/// `spec`: its rules, and every other field as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRouteSpec {
    /// The route's rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<HttpRouteRule>,
    /// Fields not read here (`parentRefs`, `hostnames`, …).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// One rule: where matching requests go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    /// The backends, each with a weight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<HttpBackendRef>,
    /// Fields not read here (`matches`, `filters`, …).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A backend reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpBackendRef {
    /// The backend's name.
    #[serde(default)]
    pub name: String,
    /// Its kind (`Service` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Its API group (the core group when absent or empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Its namespace (the route's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Its share relative to the rule's other backends (1 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Fields not read here (`filters`).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl HttpBackendRef {
    /// Whether this is the Service `name` in the route's namespace.
    pub fn is_service(&self, name: &str, namespace: &str) -> bool {
        self.name == name
            && self.kind.as_deref().is_none_or(|k| k == "Service")
            && self.group.as_deref().is_none_or(str::is_empty)
            && self.namespace.as_deref().is_none_or(|n| n == namespace)
    }
}

/// `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteStatus {
    /// One entry per parent (Gateway) whose controller has seen the route.
    #[serde(default)]
    pub parents: Vec<RouteParentStatus>,
}

/// What one parent's controller says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    /// The parent.
    #[serde(default)]
    pub parent_ref: Value,
    /// The controller writing this entry.
    #[serde(default)]
    pub controller_name: String,
    /// `Accepted`, `ResolvedRefs`, ….
    #[serde(default)]
    pub conditions: Vec<RouteCondition>,
}

/// A condition, read leniently (no field is required to read it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteCondition {
    /// `Accepted`, `ResolvedRefs`, ….
    #[serde(default, rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[serde(default)]
    pub status: String,
    /// A CamelCase reason (`BackendNotFound`, `NotAllowedByListeners`).
    #[serde(default)]
    pub reason: String,
    /// A human message.
    #[serde(default)]
    pub message: String,
    /// The generation the condition was written for.
    #[serde(default)]
    pub observed_generation: Option<i64>,
}

/// Where a route stands with its gateways, read the way `kubectl describe httproute` is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteReadiness {
    /// Every parent accepted the current generation and resolved its backends.
    Programmed,
    /// Not every parent has seen the current generation yet.
    Pending,
    /// A parent refused the route or cannot resolve a backend: the reason and message.
    Refused(String),
}

impl HttpRoute {
    /// Weights by backend Service name in `rule`, as the route has them (1 when absent).
    pub fn weights(&self, rule: usize, namespace: &str) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for b in self
            .spec
            .rules
            .get(rule)
            .map_or(&[][..], |r| &r.backend_refs)
        {
            if b.is_service(&b.name, namespace) {
                let w = u64::try_from(b.weight.unwrap_or(1)).unwrap_or(0);
                let sum = out.entry(b.name.clone()).or_insert(0u64);
                *sum = sum.saturating_add(w);
            }
        }
        out
    }

    /// Readiness of the current generation.
    pub fn readiness(&self) -> RouteReadiness {
        let generation = self.metadata.generation.unwrap_or(0);
        let parents = self.status.as_ref().map_or(&[][..], |s| &s.parents);
        if parents.is_empty() {
            return RouteReadiness::Pending;
        }
        let mut pending = false;
        for p in parents {
            for kind in ["Accepted", "ResolvedRefs"] {
                match p.conditions.iter().find(|c| c.type_ == kind) {
                    Some(c) if c.observed_generation.unwrap_or(generation) < generation => {
                        pending = true
                    }
                    Some(c) if c.status == "True" => {}
                    Some(c) if c.status == "False" => {
                        return RouteReadiness::Refused(format!(
                            "{kind} is False ({}): {}",
                            c.reason, c.message
                        ));
                    }
                    _ => pending = true,
                }
            }
        }
        if pending {
            RouteReadiness::Pending
        } else {
            RouteReadiness::Programmed
        }
    }
}
