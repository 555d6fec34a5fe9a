//! The simulated front of an app: Services, Gateway API `HTTPRoute`s (with a gateway
//! controller that accepts them and resolves their backends), and the requests they send to
//! each Deployment's ready pods over time, failing as the image's behaviour says.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::controller::k8s_time;
use super::routes::{conflict, not_found, status};
use super::{SIM_NAMESPACE, State};

/// The Gateway API group and version the simulator serves.
pub(super) const GATEWAY_API: &str = "gateway.networking.k8s.io/v1";
/// The gateway controller that accepts routes.
const CONTROLLER: &str = "gateway.ops.dev/sim-controller";
/// The largest backend weight the Gateway API allows.
const MAX_WEIGHT: i64 = 1_000_000;

/// A failure that shows only under load: pods of an image containing `image_part` fail
/// `ratio` of their requests once they take at least `from_share` % of a front's traffic.
#[derive(Debug, Clone)]
pub(super) struct LoadFault {
    pub image_part: String,
    pub from_share: f64,
    pub ratio: f64,
}

/// Requests per second and error ratio from a moment on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Segment {
    pub from: DateTime<Utc>,
    pub rate: f64,
    pub error_ratio: f64,
}

/// The deployment a pod belongs to: its ReplicaSet's name less the template hash.
pub(super) fn deployment_of(set: &str) -> &str {
    set.rsplit_once('-').map_or(set, |(d, _)| d)
}

impl State {
    /// Ready pods per Deployment among those `selector` (`matchLabels`-like) picks.
    fn ready_behind(&self, selector: &BTreeMap<String, String>) -> BTreeMap<String, (f64, String)> {
        let now = self.clock.now();
        let mut out: BTreeMap<String, (f64, String)> = BTreeMap::new();
        for p in &self.pods {
            if !p.ready(now, self.pod_ready_after)
                || !selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
                || selector.is_empty()
            {
                continue;
            }
            let image = p
                .containers
                .first()
                .map(|c| c.1.clone())
                .unwrap_or_default();
            let e = out
                .entry(deployment_of(&p.set).to_string())
                .or_insert((0.0, image));
            e.0 += 1.0;
        }
        out
    }

    fn service_selector(&self, service: &str) -> BTreeMap<String, String> {
        self.services
            .get(service)
            .and_then(|s| s.pointer("/spec/selector"))
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default()
    }

    /// Each Deployment's share (0 to 1) of front `front` (a Service or an HTTPRoute), with
    /// the image its pods run.
    fn shares_of(&self, front: &str) -> BTreeMap<String, (f64, String)> {
        let mut out: BTreeMap<String, (f64, String)> = BTreeMap::new();
        let mut add = |behind: BTreeMap<String, (f64, String)>, weight: f64| {
            let total: f64 = behind.values().map(|(n, _)| n).sum();
            if total <= 0.0 {
                return;
            }
            for (d, (n, image)) in behind {
                out.entry(d).or_insert((0.0, image)).0 += weight * n / total;
            }
        };
        if let Some(route) = self.routes.get(front) {
            let refs: Vec<(String, f64)> = route
                .pointer("/spec/rules/0/backendRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|b| {
                    let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                    let w = b.get("weight").and_then(Value::as_f64).unwrap_or(1.0);
                    (name.to_string(), w.max(0.0))
                })
                .collect();
            let total: f64 = refs.iter().map(|(_, w)| w).sum();
            for (service, w) in refs {
                if total > 0.0 && w > 0.0 && self.services.contains_key(&service) {
                    add(
                        self.ready_behind(&self.service_selector(&service)),
                        w / total,
                    );
                }
            }
        } else if self.services.contains_key(front) {
            add(self.ready_behind(&self.service_selector(front)), 1.0);
        }
        out
    }

    /// Starts a new segment for every Deployment whose request rate or error ratio changed.
    pub(super) fn account_requests(&mut self) {
        let now = self.clock.now();
        let mut rates: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for (front, per_second) in self.traffic.clone() {
            for (d, (share, image)) in self.shares_of(&front) {
                let ratio = self
                    .load_faults
                    .iter()
                    .find(|f| image.contains(&f.image_part) && share * 100.0 >= f.from_share)
                    .map_or(0.0, |f| f.ratio);
                let e = rates.entry(d).or_insert((0.0, 0.0));
                let rate = per_second * share;
                // Errors weighted by each front's rate.
                e.1 = if e.0 + rate > 0.0 {
                    (e.1 * e.0 + ratio * rate) / (e.0 + rate)
                } else {
                    0.0
                };
                e.0 += rate;
            }
        }
        let names: Vec<String> = self.served.keys().chain(rates.keys()).cloned().collect();
        for d in names {
            let (rate, error_ratio) = rates.get(&d).copied().unwrap_or((0.0, 0.0));
            let segments = self.served.entry(d).or_default();
            let changed = segments
                .last()
                .is_none_or(|s| s.rate != rate || s.error_ratio != error_ratio);
            if changed {
                segments.push(Segment {
                    from: now,
                    rate,
                    error_ratio,
                });
            }
        }
    }

    /// Requests and failed requests Deployment `d` served between `from` and `to`.
    pub(super) fn served_between(
        &self,
        d: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> (f64, f64) {
        let Some(segments) = self.served.get(d) else {
            return (0.0, 0.0);
        };
        let (mut requests, mut errors) = (0.0, 0.0);
        for (i, s) in segments.iter().enumerate() {
            let end = segments.get(i + 1).map_or(to, |n| n.from.min(to));
            let start = s.from.max(from);
            if end > start {
                let secs = (end - start).num_milliseconds() as f64 / 1000.0;
                requests += s.rate * secs;
                errors += s.rate * s.error_ratio * secs;
            }
        }
        (requests, errors)
    }

    /// The gateway controller's status for `route`: accepted by its parents, its backends
    /// resolved when every Service they name exists.
    fn route_status(&self, route: &Value) -> Value {
        let generation = route.pointer("/metadata/generation").cloned();
        let missing: Vec<String> = route
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|r| r.get("backendRefs").and_then(Value::as_array).cloned())
            .flatten()
            .filter_map(|b| b.get("name").and_then(Value::as_str).map(str::to_string))
            .filter(|n| !self.services.contains_key(n))
            .collect();
        let at = k8s_time(self.clock.now());
        let (resolved, reason, message) = if missing.is_empty() {
            (
                "True",
                "ResolvedRefs",
                "Resolved all the Object references for the Route".to_string(),
            )
        } else {
            (
                "False",
                "BackendNotFound",
                format!("Service \"{}\" not found", missing.join("\", \"")),
            )
        };
        let parents: Vec<Value> = route
            .pointer("/spec/parentRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|parent| {
                json!({"parentRef": parent, "controllerName": CONTROLLER, "conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Accepted HTTPRoute",
                     "observedGeneration": generation, "lastTransitionTime": at},
                    {"type": "ResolvedRefs", "status": resolved, "reason": reason, "message": message,
                     "observedGeneration": generation, "lastTransitionTime": at}]})
            })
            .collect();
        json!({"parents": parents})
    }

    /// Stores `route` as the API server would, with the controller's status unless the
    /// gateway controller is down.
    pub(super) fn store_route(&mut self, name: &str, mut route: Value) -> Value {
        route["metadata"]["resourceVersion"] = json!(self.next_rv());
        route["status"] = if self.gateway_controller {
            self.route_status(&route)
        } else {
            json!({"parents": []})
        };
        self.routes.insert(name.to_string(), route.clone());
        route
    }

    /// A `PUT` of an HTTPRoute: the object must carry the stored `resourceVersion` and valid
    /// weights; the server keeps its own status, and the spec moves the generation.
    pub(super) fn put_route(&mut self, name: &str, body: &[u8], dry_run: bool) -> (u16, Value) {
        if let Some((edited, spec)) = self.route_edit_before_put.take()
            && let Some(mut route) = self.routes.get(&edited).cloned()
        {
            if spec {
                let generation = route
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64);
                route["metadata"]["generation"] = json!(generation.unwrap_or(1) + 1);
                if let Some(hosts) = route
                    .pointer_mut("/spec/hostnames")
                    .and_then(Value::as_array_mut)
                {
                    hosts.push(json!("added-by-someone-else.example.test"));
                }
            }
            self.store_route(&edited, route);
        }
        let Some(stored) = self.routes.get(name).cloned() else {
            return not_found("httproutes", "gateway.networking.k8s.io", name);
        };
        let Ok(mut route) = serde_json::from_slice::<Value>(body) else {
            return status(400, "BadRequest", "the body is not JSON", json!({}));
        };
        if route.get("apiVersion").and_then(Value::as_str) != Some(GATEWAY_API)
            || route.get("kind").and_then(Value::as_str) != Some("HTTPRoute")
        {
            return status(
                400,
                "BadRequest",
                "Object 'Kind' is missing or not HTTPRoute in gateway.networking.k8s.io/v1",
                json!({}),
            );
        }
        if route.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
            return status(
                400,
                "BadRequest",
                "the name of the object does not match the name on the URL",
                json!({}),
            );
        }
        if route.pointer("/metadata/resourceVersion") != stored.pointer("/metadata/resourceVersion")
        {
            return conflict("httproutes", "gateway.networking.k8s.io", name);
        }
        let rules = route
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, rule) in rules.iter().enumerate() {
            let refs = rule.get("backendRefs").and_then(Value::as_array);
            for (j, b) in refs.into_iter().flatten().enumerate() {
                let weight = b.get("weight");
                let bad = weight
                    .is_some_and(|w| w.as_i64().is_none_or(|w| !(0..=MAX_WEIGHT).contains(&w)));
                if bad
                    || b.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                {
                    let field = format!("spec.rules[{i}].backendRefs[{j}]");
                    return status(
                        422,
                        "Invalid",
                        &format!(
                            "HTTPRoute.gateway.networking.k8s.io \"{name}\" is invalid: {field}: Invalid value: a name and a weight from 0 to 1000000"
                        ),
                        json!({"name": name, "group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                               "causes": [{"reason": "FieldValueInvalid", "field": field}]}),
                    );
                }
            }
        }
        let generation = stored
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let moved = route.get("spec") != stored.get("spec");
        route["metadata"]["generation"] = json!(if moved { generation + 1 } else { generation });
        route["metadata"]["uid"] = stored["metadata"]["uid"].clone();
        route["metadata"]["creationTimestamp"] = stored["metadata"]["creationTimestamp"].clone();
        route["metadata"]["namespace"] = json!(SIM_NAMESPACE);
        if dry_run {
            route["status"] = stored.get("status").cloned().unwrap_or(json!({}));
            return (200, route);
        }
        let route = self.store_route(name, route);
        self.ledger.mutated();
        self.account_requests();
        (200, route)
    }
}
