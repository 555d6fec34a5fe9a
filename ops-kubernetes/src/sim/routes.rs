//! The simulator's request handling: the API's paths, `Status` error bodies, conflicts on a
//! stale `resourceVersion`, `dryRun=All`, label selectors, paging with `limit`/`continue`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use ops_core::sim::{Fault, Ledger, Request, ResponseTemplate, SimApi};
use serde_json::{Value, json};

use super::controller::k8s_time;
use super::{Fate, SIM_NAMESPACE, SIM_TOKEN, SimPod, State};

/// A `Status` failure body.
pub(super) fn status(code: u16, reason: &str, message: &str, details: Value) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "details": details, "code": code}),
    )
}

/// `deployments.apps`, `secrets`: a resource as the API server's messages name it.
fn full_kind(kind: &str, group: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

pub(super) fn not_found(kind: &str, group: &str, name: &str) -> (u16, Value) {
    let full = full_kind(kind, group);
    status(
        404,
        "NotFound",
        &format!("{full} \"{name}\" not found"),
        json!({"name": name, "group": group, "kind": kind}),
    )
}

/// The API server's 409 for a write with a stale `resourceVersion`.
pub(super) fn conflict(kind: &str, group: &str, name: &str) -> (u16, Value) {
    let full = full_kind(kind, group);
    status(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {full} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
        json!({"name": name, "group": group, "kind": kind}),
    )
}

/// A request body as a `kind` object, or the API server's 400 for one that is not.
fn decode_body<T: serde::de::DeserializeOwned>(body: &[u8], kind: &str) -> Result<T, (u16, Value)> {
    serde_json::from_slice(body).map_err(|e| {
        status(
            400,
            "BadRequest",
            &format!("the body is not a {kind}: {e}"),
            json!({}),
        )
    })
}

/// Whether `labels` match an equality selector (`a=b,c=d`).
fn selects(selector: Option<&String>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_none_or(|sel| {
        sel.split(',')
            .filter(|t| !t.is_empty())
            .all(|term| match term.split_once('=') {
                Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
                None => labels.contains_key(term),
            })
    })
}

impl State {
    fn list(
        &mut self,
        kind: &str,
        items: Vec<Value>,
        query: &BTreeMap<String, String>,
    ) -> (u16, Value) {
        let limit: usize = query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let start = match query.get("continue") {
            Some(token) => {
                if self.expire_continues > 0 {
                    self.expire_continues -= 1;
                    return status(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                        json!({}),
                    );
                }
                match token
                    .strip_prefix("offset-")
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    Some(n) => n,
                    None => {
                        return status(400, "BadRequest", "continue key is not valid", json!({}));
                    }
                }
            }
            None => 0,
        };
        let end = start.saturating_add(limit).min(items.len());
        let page: Vec<Value> = items
            .get(start..end)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        let next = (end < items.len()).then(|| format!("offset-{end}"));
        let mut metadata = json!({"resourceVersion": self.rv.to_string()});
        if let Some(n) = next {
            metadata["continue"] = json!(n);
            metadata["remainingItemCount"] = json!(items.len() - end);
        }
        (
            200,
            json!({"kind": format!("{kind}List"), "apiVersion": if matches!(kind, "Pod" | "Secret") { "v1" } else { "apps/v1" },
                     "metadata": metadata, "items": page}),
        )
    }

    fn pod_json(&self, p: &SimPod, now: DateTime<Utc>) -> Value {
        let age = p.age(now);
        let ready = p.ready(now, self.pod_ready_after);
        let started = age >= self.pod_ready_after;
        let restarts = if started {
            (age.as_secs() / 10 + 1) as i64
        } else {
            0
        };
        let statuses: Vec<Value> = p
            .containers
            .iter()
            .map(|(name, image)| {
                let (state, last) = match (p.fate, started) {
                    (Fate::Healthy, true) => (json!({"running": {"startedAt": k8s_time(p.created + chrono::Duration::from_std(self.pod_ready_after).unwrap_or_default())}}), json!({})),
                    (_, false) => (json!({"waiting": {"reason": "ContainerCreating"}}), json!({})),
                    (Fate::CrashLoop, true) => (
                        json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 40s restarting failed container={name} pod={}", p.name)}}),
                        json!({"terminated": {"reason": "Error", "exitCode": 1}}),
                    ),
                    (Fate::OomKilled, true) => (
                        json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 40s restarting failed container={name} pod={}", p.name)}}),
                        json!({"terminated": {"reason": "OOMKilled", "exitCode": 137}}),
                    ),
                    (Fate::ImagePull, true) => (
                        json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}}),
                        json!({}),
                    ),
                };
                let restarts = if matches!(p.fate, Fate::CrashLoop | Fate::OomKilled) { restarts } else { 0 };
                json!({"name": name, "image": image, "imageID": "", "ready": ready, "started": ready,
                       "restartCount": restarts, "state": state, "lastState": last})
            })
            .collect();
        json!({
            "metadata": {"name": p.name, "namespace": SIM_NAMESPACE, "labels": p.labels,
                         "creationTimestamp": k8s_time(p.created),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": p.set,
                                              "uid": format!("uid-{}", p.set), "controller": true}]},
            "spec": p.spec,
            "status": {"phase": if ready || started { "Running" } else { "Pending" },
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                       "containerStatuses": statuses}
        })
    }

    /// A `PUT` of a Deployment: the object must decode, carry the stored
    /// `resourceVersion`, and name the same object; a changed spec is a new generation.
    fn put_deployment(&mut self, name: &str, body: &[u8], dry_run: bool) -> (u16, Value) {
        if let Some((edited, replicas)) = self.edit_before_put.take() {
            self.edit_replicas(&edited, replicas);
        }
        let Some(stored) = self.deployments.get(name).cloned() else {
            return not_found("deployments", "apps", name);
        };
        let mut d: Deployment = match decode_body(body, "Deployment") {
            Ok(d) => d,
            Err(refused) => return refused,
        };
        if d.metadata.name.as_deref() != Some(name) {
            return status(
                400,
                "BadRequest",
                "the name of the object does not match the name on the URL",
                json!({}),
            );
        }
        if d.metadata.resource_version != stored.metadata.resource_version {
            return conflict("deployments", "apps", name);
        }
        let containers = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        if let Some(i) = containers
            .iter()
            .position(|c| c.image.as_deref().is_none_or(str::is_empty))
        {
            let field = format!("spec.template.spec.containers[{i}].image");
            return status(
                422,
                "Invalid",
                &format!("Deployment.apps \"{name}\" is invalid: {field}: Required value"),
                json!({"name": name, "group": "apps", "kind": "Deployment",
                       "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": field}]}),
            );
        }
        // What the server keeps: its own status, uid and creation; the generation moves with
        // the spec.
        d.status = stored.status.clone();
        d.metadata.uid = stored.metadata.uid.clone();
        d.metadata.creation_timestamp = stored.metadata.creation_timestamp.clone();
        let generation = stored.metadata.generation.unwrap_or(1);
        d.metadata.generation = Some(if d.spec != stored.spec {
            generation + 1
        } else {
            generation
        });
        if dry_run {
            return (200, serde_json::to_value(&d).unwrap_or_default());
        }
        d.metadata.resource_version = Some(self.next_rv());
        self.deployments.insert(name.to_string(), d);
        self.ledger.mutated();
        self.reconcile();
        match self.deployments.get(name) {
            Some(d) => (200, serde_json::to_value(d).unwrap_or_default()),
            None => not_found("deployments", "apps", name),
        }
    }

    /// `POST` (create) or `PUT` (replace, with the stored resourceVersion) of a Secret: its
    /// `data` must be base64.
    fn write_secret(&mut self, name: Option<&str>, body: &[u8], dry_run: bool) -> (u16, Value) {
        use base64::Engine;
        let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
            return status(400, "BadRequest", "the body is not JSON", json!({}));
        };
        let Some(obj_name) = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return status(
                422,
                "Invalid",
                "Secret \"\" is invalid: metadata.name: Required value",
                json!({"causes": [{"field": "metadata.name"}]}),
            );
        };
        let bad_data = v.get("data").and_then(Value::as_object).is_some_and(|d| {
            d.values().any(|x| {
                x.as_str()
                    .is_none_or(|t| base64::engine::general_purpose::STANDARD.decode(t).is_err())
            })
        });
        if bad_data {
            return status(
                400,
                "BadRequest",
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data",
                json!({}),
            );
        }
        match name {
            None if self.secrets.contains_key(&obj_name) => {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("secrets \"{obj_name}\" already exists"),
                    json!({"name": obj_name, "kind": "secrets"}),
                );
            }
            Some(n) => {
                if n != obj_name {
                    return status(
                        400,
                        "BadRequest",
                        "the name of the object does not match the name on the URL",
                        json!({}),
                    );
                }
                let Some(stored) = self.secrets.get(n) else {
                    return not_found("secrets", "", n);
                };
                if v.pointer("/metadata/resourceVersion")
                    != stored.pointer("/metadata/resourceVersion")
                {
                    return conflict("secrets", "", n);
                }
                v["metadata"]["creationTimestamp"] =
                    stored["metadata"]["creationTimestamp"].clone();
                v["metadata"]["uid"] = stored["metadata"]["uid"].clone();
            }
            None => {
                v["metadata"]["creationTimestamp"] = json!(
                    self.clock
                        .now()
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                v["metadata"]["uid"] = json!(format!("uid-secret-{obj_name}"));
            }
        }
        v["metadata"]["namespace"] = json!(SIM_NAMESPACE);
        if dry_run {
            return (if name.is_some() { 200 } else { 201 }, v);
        }
        v["metadata"]["resourceVersion"] = json!(self.next_rv());
        self.secrets.insert(obj_name, v.clone());
        self.ledger.mutated();
        (if name.is_some() { 200 } else { 201 }, v)
    }

    fn put_hpa(&mut self, name: &str, body: &[u8]) -> (u16, Value) {
        let Some(stored) = self.hpas.get(name).cloned() else {
            return not_found("horizontalpodautoscalers", "autoscaling", name);
        };
        let mut h: HorizontalPodAutoscaler = match decode_body(body, "HorizontalPodAutoscaler") {
            Ok(h) => h,
            Err(refused) => return refused,
        };
        if h.metadata.resource_version != stored.metadata.resource_version {
            return conflict("horizontalpodautoscalers", "autoscaling", name);
        }
        let spec = h.spec.clone().unwrap_or_default();
        if spec
            .min_replicas
            .is_some_and(|m| m > spec.max_replicas || m < 1)
        {
            return status(
                422,
                "Invalid",
                "spec.minReplicas: Invalid value: must be at least 1 and at most maxReplicas",
                json!({"causes": [{"field": "spec.minReplicas"}]}),
            );
        }
        h.metadata.resource_version = Some(self.next_rv());
        self.hpas.insert(name.to_string(), h.clone());
        self.ledger.mutated();
        (200, serde_json::to_value(&h).unwrap_or_default())
    }

    fn route(
        &mut self,
        method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
        body: &[u8],
    ) -> (u16, Value) {
        self.reconcile();
        let now = self.clock.now();
        let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let dry_run = query.get("dryRun").map(String::as_str) == Some("All");
        match (method, seg.as_slice()) {
            (_, ["apis", "apps", "v1", "namespaces", ns, ..])
            | (_, ["api", "v1", "namespaces", ns, ..])
            | (_, ["apis", "autoscaling", "v2", "namespaces", ns, ..])
            | (
                _,
                [
                    "apis",
                    "gateway.networking.k8s.io",
                    "v1",
                    "namespaces",
                    ns,
                    ..,
                ],
            ) if *ns != SIM_NAMESPACE => not_found("namespaces", "", ns),
            ("GET", ["apis", "apps", "v1", "namespaces", _, "deployments", name]) => {
                match self.deployments.get(*name) {
                    Some(d) => (200, serde_json::to_value(d).unwrap_or_default()),
                    None => not_found("deployments", "apps", name),
                }
            }
            ("PUT", ["apis", "apps", "v1", "namespaces", _, "deployments", name]) => {
                self.put_deployment(name, body, dry_run)
            }
            ("GET", ["apis", "apps", "v1", "namespaces", _, "replicasets"]) => {
                let items: Vec<Value> = self
                    .replica_sets
                    .iter()
                    .filter(|rs| {
                        selects(
                            query.get("labelSelector"),
                            rs.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                        )
                    })
                    // Items of a list carry no kind or apiVersion, as the API server sends them.
                    .map(|rs| {
                        let mut v = serde_json::to_value(rs).unwrap_or_default();
                        if let Some(m) = v.as_object_mut() {
                            m.remove("kind");
                            m.remove("apiVersion");
                        }
                        v
                    })
                    .collect();
                self.list("ReplicaSet", items, query)
            }
            ("GET", ["api", "v1", "namespaces", _, "pods"]) => {
                let items: Vec<Value> = self
                    .pods
                    .iter()
                    .filter(|p| selects(query.get("labelSelector"), &p.labels))
                    .map(|p| self.pod_json(p, now))
                    .collect();
                self.list("Pod", items, query)
            }
            (
                "GET",
                [
                    "apis",
                    "autoscaling",
                    "v2",
                    "namespaces",
                    _,
                    "horizontalpodautoscalers",
                    name,
                ],
            ) => match self.hpas.get(*name) {
                Some(h) => (200, serde_json::to_value(h).unwrap_or_default()),
                None => not_found("horizontalpodautoscalers", "autoscaling", name),
            },
            (
                "PUT",
                [
                    "apis",
                    "autoscaling",
                    "v2",
                    "namespaces",
                    _,
                    "horizontalpodautoscalers",
                    name,
                ],
            ) => self.put_hpa(name, body),
            (
                "GET",
                [
                    "apis",
                    "metrics.k8s.io",
                    "v1beta1",
                    "namespaces",
                    ns,
                    "pods",
                ],
            ) => {
                if !self.metrics_server || *ns != SIM_NAMESPACE {
                    return status(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                        json!({}),
                    );
                }
                let items: Vec<Value> = self
                    .pods
                    .iter()
                    .filter(|p| selects(query.get("labelSelector"), &p.labels))
                    .map(|p| {
                        let (cpu, memory) = self
                            .usage
                            .iter()
                            .find(|(d, _)| super::traffic::deployment_of(&p.set) == d.as_str())
                            .map(|(_, u)| u.clone())
                            .unwrap_or_else(|| ("100m".into(), "100Mi".into()));
                        json!({"metadata": {"name": p.name, "namespace": SIM_NAMESPACE, "labels": p.labels,
                                            "creationTimestamp": k8s_time(now)},
                               "timestamp": k8s_time(now), "window": "15s",
                               "containers": p.containers.iter().map(|(n, _)| json!({"name": n, "usage": {"cpu": cpu, "memory": memory}})).collect::<Vec<_>>()})
                    })
                    .collect();
                (
                    200,
                    json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}),
                )
            }
            ("GET", ["api", "v1", "namespaces", _, "services", name]) => {
                match self.services.get(*name) {
                    Some(v) => (200, v.clone()),
                    None => not_found("services", "", name),
                }
            }
            (
                "GET",
                [
                    "apis",
                    "gateway.networking.k8s.io",
                    "v1",
                    "namespaces",
                    _,
                    "httproutes",
                    name,
                ],
            ) => match self.routes.get(*name) {
                Some(v) => (200, v.clone()),
                None => not_found("httproutes", "gateway.networking.k8s.io", name),
            },
            (
                "PUT",
                [
                    "apis",
                    "gateway.networking.k8s.io",
                    "v1",
                    "namespaces",
                    _,
                    "httproutes",
                    name,
                ],
            ) => self.put_route(name, body, dry_run),
            ("GET", ["api", "v1", "namespaces", _, "secrets"]) => {
                let items: Vec<Value> = self.secrets.values().cloned().collect();
                self.list("Secret", items, query)
            }
            ("GET", ["api", "v1", "namespaces", _, "secrets", name]) => {
                match self.secrets.get(*name) {
                    Some(v) => (200, v.clone()),
                    None => not_found("secrets", "", name),
                }
            }
            ("POST", ["api", "v1", "namespaces", _, "secrets"]) => {
                self.write_secret(None, body, dry_run)
            }
            ("PUT", ["api", "v1", "namespaces", _, "secrets", name]) => {
                self.write_secret(Some(name), body, dry_run)
            }
            _ => status(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({method} {path})"),
                json!({}),
            ),
        }
    }
}

impl SimApi for State {
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    fn respond(&mut self, req: &Request) -> ResponseTemplate {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {SIM_TOKEN}") {
            let (code, body) = status(401, "Unauthorized", "Unauthorized", json!({}));
            return json_template(code, body);
        }
        let query: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        let seg: Vec<&str> = req.url.path().trim_start_matches('/').split('/').collect();
        if let ("GET", ["api", "v1", "namespaces", ns, "pods", pod, "log"]) =
            (req.method.as_str(), seg.as_slice())
            && *ns == SIM_NAMESPACE
        {
            self.reconcile();
            let (code, body) = self.pod_log(pod, &query);
            let kind = if code == 200 {
                "text/plain"
            } else {
                "application/json"
            };
            return ResponseTemplate::new(code)
                .insert_header("content-type", kind)
                .set_body_string(body);
        }
        let (code, body) = self.route(req.method.as_str(), req.url.path(), &query, &req.body);
        json_template(code, body)
    }

    fn fault(&mut self, fault: Fault, req: &Request) -> ResponseTemplate {
        match fault {
            Fault::Status { status: code, retry_after } => {
                let (reason, message) = match code {
                    403 => {
                        let resource = req.url.path().split('/').rev().nth(1).unwrap_or("deployments").to_string();
                        let verb = match req.method.as_str() {
                            "GET" => "get",
                            "PUT" => "update",
                            "POST" => "create",
                            "PATCH" => "patch",
                            "DELETE" => "delete",
                            _ => "access",
                        };
                        ("Forbidden", format!("{resource} is forbidden: User \"system:serviceaccount:ops:deployer\" cannot {verb} resource \"{resource}\" in API group \"apps\" in the namespace \"{SIM_NAMESPACE}\""))
                    }
                    409 => ("Conflict", "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again".to_string()),
                    410 => ("Expired", "too old resource version".to_string()),
                    429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later".to_string()),
                    401 => ("Unauthorized", "Unauthorized".to_string()),
                    404 => ("NotFound", "not found".to_string()),
                    503 => ("ServiceUnavailable", "the server is currently unable to handle the request".to_string()),
                    _ => ("InternalError", "Internal error occurred: etcdserver: request timed out".to_string()),
                };
                let (code, body) = status(code, reason, &message, json!({}));
                let mut t = json_template(code, body);
                if let Some(secs) = retry_after {
                    t = t.insert_header("retry-after", secs.to_string().as_str());
                }
                t
            }
            Fault::Delay(d) => ResponseTemplate::new(504).set_delay(d),
            Fault::TruncatedJson => ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_string("{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"name\":\"we"),
        }
    }
}

fn json_template(code: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .insert_header("content-type", "application/json")
        .set_body_string(body.to_string())
}
