//! The simulated Cloud Run Admin API v2: services, revisions, traffic and operations.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::http::{Reply, google_error};
use super::{Behaviour, SimState};
use crate::run::model::{BY_REVISION, INGRESS_NONE, LATEST};

/// A simulated service.
#[derive(Debug, Clone)]
pub(super) struct SimService {
    pub name: String,
    pub short: String,
    pub generation: u64,
    pub ingress: String,
    pub annotations: BTreeMap<String, String>,
    pub template: Value,
    pub traffic: Vec<Value>,
    pub scaling: Value,
    pub latest_created: String,
    pub latest_ready: String,
    pub next_revision: u32,
    pub created: DateTime<Utc>,
    pub failed_condition: Option<String>,
}

/// A simulated revision.
#[derive(Debug, Clone)]
pub(super) struct SimRevision {
    pub name: String,
    pub service: String,
    pub image: String,
    pub labels: Value,
    /// The container's environment (`[{name, value}|{name, valueSource}]`).
    pub env: Value,
    pub created: DateTime<Utc>,
    /// When it becomes ready (or fails).
    pub settles_at: DateTime<Utc>,
    pub fails: bool,
    /// Why it fails, as Cloud Run says it, when it does for a reason of its own (a secret it
    /// cannot read).
    pub failure: Option<String>,
}

/// A change waiting for its operation to finish.
#[derive(Debug, Clone)]
pub(super) struct SimOperation {
    pub name: String,
    pub service: String,
    pub done_at: DateTime<Utc>,
    pub new_revision: Option<String>,
    pub settled: bool,
    pub error: Option<Value>,
}

impl SimService {
    pub fn etag(&self) -> String {
        format!("\"sim-{}\"", self.generation)
    }
}

/// Instances a service runs: a manual count as set (it overrides every revision's minimum);
/// otherwise the larger of the service's and the template's minimum, and at least one while it
/// admits the simulator's steady traffic.
fn running_instances(svc: &SimService) -> u32 {
    let count = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    };
    if svc.scaling.get("scalingMode").and_then(Value::as_str) == Some("MANUAL") {
        return count(&svc.scaling, "manualInstanceCount");
    }
    let template_min = svc
        .template
        .get("scaling")
        .map_or(0, |s| count(s, "minInstanceCount"));
    let min = count(&svc.scaling, "minInstanceCount").max(template_min);
    if svc.ingress == INGRESS_NONE {
        min
    } else {
        min.max(1)
    }
}

pub(super) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl SimState {
    pub(super) fn service_name(&self, short: &str) -> String {
        format!(
            "projects/{}/locations/{}/services/{short}",
            self.project, self.region
        )
    }

    /// Creates a service whose first revision serves all traffic.
    pub(super) fn create_service(&mut self, short: &str, image: &str) -> String {
        let name = self.service_name(short);
        let now = self.now();
        let template = json!({
            "containers": [{"image": image, "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}}],
            "scaling": {"maxInstanceCount": 100},
            "maxInstanceRequestConcurrency": 80,
            "timeout": "300s",
        });
        let svc = SimService {
            name: name.clone(),
            short: short.to_string(),
            generation: 1,
            ingress: "INGRESS_TRAFFIC_ALL".into(),
            annotations: BTreeMap::new(),
            template,
            traffic: vec![json!({"type": LATEST, "percent": 100})],
            scaling: json!({"minInstanceCount": 0, "scalingMode": "AUTOMATIC"}),
            latest_created: String::new(),
            latest_ready: String::new(),
            next_revision: 1,
            created: now,
            failed_condition: None,
        };
        self.services.insert(name.clone(), svc);
        let rev = self.new_revision(&name, image, json!({}), json!([]), now);
        let svc = self.services.get_mut(&name).expect("just inserted");
        svc.latest_created = rev.clone();
        svc.latest_ready = rev;
        self.record_traffic(now);
        name
    }

    fn new_revision(
        &mut self,
        service: &str,
        image: &str,
        labels: Value,
        env: Value,
        settles_at: DateTime<Utc>,
    ) -> String {
        let behaviour = self.behaviour(image);
        let crashes = self.env_crashes(&env);
        let missing_secret = self.unreadable_secret(&env);
        let svc = self.services.get_mut(service).expect("service exists");
        let suffix: String = (0..3).map(|_| fastrand::lowercase()).collect();
        let short = format!("{}-{:05}-{suffix}", svc.short, svc.next_revision);
        svc.next_revision += 1;
        let name = format!("{service}/revisions/{short}");
        let created = self.now();
        self.revisions.insert(
            name.clone(),
            SimRevision {
                name: name.clone(),
                service: service.to_string(),
                image: image.to_string(),
                labels,
                env,
                created,
                settles_at,
                fails: behaviour.fails_to_start || crashes || missing_secret.is_some(),
                failure: missing_secret,
            },
        );
        short
    }

    /// Whether the environment holds a setting the service cannot start with.
    fn env_crashes(&self, env: &Value) -> bool {
        env.as_array().into_iter().flatten().any(|e| {
            self.crash_env
                .iter()
                .any(|(name, value)| e["name"] == name.as_str() && e["value"] == value.as_str())
        })
    }

    /// The first secret reference the revision cannot read (a secret or version that does not
    /// exist, or a disabled version), as Cloud Run reports it.
    fn unreadable_secret(&self, env: &Value) -> Option<String> {
        for (i, e) in env.as_array().into_iter().flatten().enumerate() {
            let Some(r) = e.pointer("/valueSource/secretKeyRef") else {
                continue;
            };
            let secret = r["secret"].as_str().unwrap_or("");
            let short = secret.rsplit('/').next().unwrap_or(secret);
            let version = r["version"].as_str().unwrap_or("latest");
            let readable = self.secrets.get(short).is_some_and(|s| {
                s.versions.iter().any(|v| {
                    v.state == "ENABLED" && (version == "latest" || v.id.to_string() == version)
                })
            });
            if !readable {
                return Some(format!(
                    "spec.template.spec.containers[0].env[{i}].value_from.secret_key_ref.name: \
                     Secret projects/{}/secrets/{short}/versions/{version} was not found",
                    self.project
                ));
            }
        }
        None
    }

    pub(super) fn behaviour(&self, image: &str) -> Behaviour {
        self.behaviours.get(image).cloned().unwrap_or_default()
    }

    /// Finishes operations whose time has come, in order.
    pub(super) fn settle(&mut self) {
        let now = self.now();
        let mut due: Vec<usize> = (0..self.operations.len())
            .filter(|&i| !self.operations[i].settled && self.operations[i].done_at <= now)
            .collect();
        due.sort_by_key(|&i| self.operations[i].done_at);
        for i in due {
            let op = self.operations[i].clone();
            self.operations[i].settled = true;
            let Some(rev_short) = op.new_revision else {
                self.record_traffic(op.done_at);
                continue;
            };
            let rev_name = format!("{}/revisions/{rev_short}", op.service);
            let fails = self.revisions.get(&rev_name).is_some_and(|r| r.fails);
            let failure = self
                .revisions
                .get(&rev_name)
                .and_then(|r| r.failure.clone());
            let svc = self.services.get_mut(&op.service).expect("service exists");
            if let Some(reason) = failure {
                let msg = format!(
                    "Revision '{rev_short}' is not ready and cannot serve traffic. {reason}"
                );
                svc.failed_condition = Some(msg.clone());
                self.operations[i].error = Some(json!({"code": 9, "message": msg}));
            } else if fails {
                let msg = format!(
                    "Revision '{rev_short}' is not ready and cannot serve traffic. The user-provided \
                     container failed to start and listen on the port defined provided by the \
                     PORT=8080 environment variable."
                );
                svc.failed_condition = Some(msg.clone());
                // Traffic that named the failed revision through LATEST stays on the old one.
                self.operations[i].error = Some(json!({"code": 9, "message": msg}));
            } else {
                svc.latest_ready = rev_short;
                svc.failed_condition = None;
            }
            self.record_traffic(op.done_at);
        }
    }

    /// Appends the effective traffic at `at` to the history the telemetry reads.
    pub(super) fn record_traffic(&mut self, at: DateTime<Utc>) {
        let mut split: BTreeMap<String, u8> = BTreeMap::new();
        for svc in self.services.values() {
            if svc.ingress == INGRESS_NONE {
                continue;
            }
            for (rev, pct) in effective_traffic(svc) {
                *split
                    .entry(format!("{}/revisions/{rev}", svc.name))
                    .or_default() += pct;
            }
        }
        self.traffic_history.push((at, split));
        let instances = self
            .services
            .values()
            .map(|svc| (svc.short.clone(), running_instances(svc)))
            .collect();
        self.instance_history.push((at, instances));
    }

    pub(super) fn render_service(&self, svc: &SimService) -> Value {
        let pending = self
            .operations
            .iter()
            .any(|o| o.service == svc.name && !o.settled);
        let statuses: Vec<Value> = svc
            .traffic
            .iter()
            .map(|t| {
                let mut s = t.clone();
                if t["type"] == LATEST {
                    s["revision"] = json!(svc.latest_ready);
                }
                if let Some(tag) = t.get("tag").and_then(Value::as_str) {
                    s["uri"] = json!(format!("https://{tag}---{}-sim.a.run.app", svc.short));
                }
                s
            })
            .collect();
        let state = if pending {
            "CONDITION_RECONCILING"
        } else if svc.failed_condition.is_some() {
            "CONDITION_FAILED"
        } else {
            "CONDITION_SUCCEEDED"
        };
        let mut condition = json!({"type": "Ready", "state": state,
                                   "lastTransitionTime": time(self.now())});
        if let Some(m) = &svc.failed_condition {
            condition["message"] = json!(m);
            condition["reason"] = json!("REVISION_FAILED");
        }
        json!({
            "name": svc.name,
            "uid": format!("sim-{}", svc.short),
            "generation": svc.generation.to_string(),
            "observedGeneration": svc.generation.to_string(),
            "createTime": time(svc.created),
            "etag": svc.etag(),
            "uri": format!("https://{}-sim.a.run.app", svc.short),
            "ingress": svc.ingress,
            "annotations": svc.annotations,
            "launchStage": "GA",
            "template": svc.template,
            "traffic": svc.traffic,
            "trafficStatuses": statuses,
            "scaling": svc.scaling,
            "latestReadyRevision": format!("{}/revisions/{}", svc.name, svc.latest_ready),
            "latestCreatedRevision": format!("{}/revisions/{}", svc.name, svc.latest_created),
            "terminalCondition": condition,
            "conditions": [{"type": "RoutesReady", "state": "CONDITION_SUCCEEDED"},
                           {"type": "ConfigurationsReady", "state": state}],
            "reconciling": pending,
        })
    }

    pub(super) fn render_revision(&self, rev: &SimRevision) -> Value {
        let now = self.now();
        let state = match (now >= rev.settles_at, rev.fails) {
            (false, _) => "CONDITION_RECONCILING",
            (true, true) => "CONDITION_FAILED",
            (true, false) => "CONDITION_SUCCEEDED",
        };
        json!({
            "name": rev.name,
            "etag": self.revision_etag(&rev.name),
            "uid": format!("sim-{}", rev.name.rsplit('/').next().unwrap_or("")),
            "service": rev.service,
            "createTime": time(rev.created),
            "labels": rev.labels,
            "containers": [{"image": rev.image, "env": rev.env}],
            "conditions": [{"type": "Ready", "state": state, "lastTransitionTime": time(rev.settles_at)}],
            "reconciling": state == "CONDITION_RECONCILING",
            "logUri": format!("https://console.cloud.google.com/logs/viewer?revision={}", rev.name),
        })
    }

    pub(super) fn get_service(&mut self, name: &str) -> Reply {
        self.settle();
        match self.services.get(name) {
            Some(svc) => Reply::json(200, self.render_service(svc)),
            None => google_error(
                404,
                "NOT_FOUND",
                &format!("Resource '{name}' was not found"),
            ),
        }
    }

    pub(super) fn get_revision(&mut self, name: &str) -> Reply {
        self.settle();
        match self.revisions.get(name) {
            Some(rev) => Reply::json(200, self.render_revision(rev)),
            None => google_error(
                404,
                "NOT_FOUND",
                &format!("Resource '{name}' was not found"),
            ),
        }
    }

    pub(super) fn list_revisions(
        &mut self,
        service: &str,
        query: &BTreeMap<String, String>,
    ) -> Reply {
        self.settle();
        if !self.services.contains_key(service) {
            return google_error(
                404,
                "NOT_FOUND",
                &format!("Resource '{service}' was not found"),
            );
        }
        let mut revs: Vec<&SimRevision> = self
            .revisions
            .values()
            .filter(|r| r.service == service)
            .collect();
        revs.sort_by(|a, b| b.created.cmp(&a.created).then(b.name.cmp(&a.name)));
        let size = query
            .get("pageSize")
            .and_then(|s| s.parse().ok())
            .unwrap_or(100usize)
            .clamp(1, 1000);
        let offset: usize = match query.get("pageToken") {
            Some(t) => match t.strip_prefix("rev-page-").and_then(|n| n.parse().ok()) {
                Some(n) => n,
                None => return google_error(400, "INVALID_ARGUMENT", "Invalid page token."),
            },
            None => 0,
        };
        let page: Vec<Value> = revs
            .iter()
            .skip(offset)
            .take(size)
            .map(|r| self.render_revision(r))
            .collect();
        let mut body = json!({ "revisions": page });
        if offset + size < revs.len() {
            body["nextPageToken"] = json!(format!("rev-page-{}", offset + size));
        }
        Reply::json(200, body)
    }

    pub(super) fn get_operation(&mut self, name: &str) -> Reply {
        self.settle();
        let Some(op) = self.operations.iter().find(|o| o.name == name).cloned() else {
            return google_error(
                404,
                "NOT_FOUND",
                &format!("Operation '{name}' was not found"),
            );
        };
        let svc = self.services.get(&op.service).expect("service exists");
        Reply::json(200, self.render_operation(&op, svc))
    }

    fn render_operation(&self, op: &SimOperation, svc: &SimService) -> Value {
        let mut body = json!({
            "name": op.name,
            "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Service", "name": svc.name},
            "done": op.settled,
        });
        if op.settled {
            match &op.error {
                Some(e) => body["error"] = e.clone(),
                None => {
                    let mut response = self.render_service(svc);
                    response["@type"] = json!("type.googleapis.com/google.cloud.run.v2.Service");
                    body["response"] = response;
                }
            }
        }
        body
    }

    /// `services.patch`: etag check, validation, then the change with an operation.
    pub(super) fn patch_service(
        &mut self,
        name: &str,
        query: &BTreeMap<String, String>,
        body: &Value,
    ) -> Reply {
        self.settle();
        let Some(svc) = self.services.get(name).cloned() else {
            return google_error(
                404,
                "NOT_FOUND",
                &format!("Resource '{name}' was not found"),
            );
        };
        if let Some(etag) = body.get("etag").and_then(Value::as_str)
            && etag != svc.etag()
        {
            return google_error(
                409,
                "ABORTED",
                "Conflict for resource: the etag does not match; read the service again",
            );
        }
        let mask: Vec<&str> = match query.get("updateMask") {
            Some(m) => m.split(',').collect(),
            None => ["template", "traffic", "ingress", "annotations", "scaling"]
                .into_iter()
                .filter(|k| body.get(*k).is_some())
                .collect(),
        };
        let mut next = svc.clone();
        let mut new_image: Option<(String, Value, Value)> = None;
        for field in &mask {
            let value = body.get(*field).cloned().unwrap_or(Value::Null);
            match *field {
                "template" => {
                    let image = value
                        .pointer("/containers/0/image")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if image.is_empty() {
                        return bad_request(
                            "template.containers[0].image",
                            "Image must be specified.",
                        );
                    }
                    if let Err(reply) = check_env(value.pointer("/containers/0/env")) {
                        return reply;
                    }
                    let forced = query.get("forceNewRevision").map(String::as_str) == Some("true");
                    if forced || value != svc.template {
                        new_image = Some((
                            image.to_string(),
                            value.get("labels").cloned().unwrap_or(json!({})),
                            value
                                .pointer("/containers/0/env")
                                .cloned()
                                .unwrap_or(json!([])),
                        ));
                    }
                    next.template = value;
                }
                "traffic" => {
                    if let Err(reply) = self.check_traffic(
                        &svc,
                        &value,
                        new_image.is_some() || mask.contains(&"template"),
                    ) {
                        return reply;
                    }
                    next.traffic = value.as_array().cloned().unwrap_or_default();
                }
                "ingress" => match value.as_str() {
                    Some(i) if i.starts_with("INGRESS_TRAFFIC_") => next.ingress = i.to_string(),
                    _ => return bad_request("ingress", "Invalid ingress setting."),
                },
                "annotations" => {
                    next.annotations = serde_json::from_value(value).unwrap_or_default();
                }
                "scaling" => {
                    let max = value.get("maxInstanceCount").and_then(Value::as_u64);
                    let min = value
                        .get("minInstanceCount")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    if max == Some(0) {
                        return bad_request(
                            "scaling.maxInstanceCount",
                            "max instance count must be greater than 0",
                        );
                    }
                    if max.is_some_and(|m| m < min) {
                        return bad_request(
                            "scaling.minInstanceCount",
                            "min instance count must not exceed max instance count",
                        );
                    }
                    next.scaling = value;
                }
                other => {
                    return bad_request(
                        "update_mask",
                        &format!("Unknown field in update mask: {other}"),
                    );
                }
            }
        }
        if query.get("validateOnly").map(String::as_str) == Some("true") {
            return Reply::json(
                200,
                json!({
                    "name": format!("projects/{}/locations/{}/operations/validate-{}", self.project, self.region, fastrand::u32(..)),
                    "done": true,
                    "response": {"@type": "type.googleapis.com/google.cloud.run.v2.Service", "name": name},
                }),
            );
        }
        next.generation += 1;
        let done_at =
            self.now() + chrono::Duration::from_std(self.operation_delay).unwrap_or_default();
        self.services.insert(name.to_string(), next);
        let new_revision = new_image.map(|(image, labels, env)| {
            let short = self.new_revision(name, &image, labels, env, done_at);
            self.services.get_mut(name).expect("exists").latest_created = short.clone();
            short
        });
        let op_name = format!(
            "projects/{}/locations/{}/operations/{:016x}",
            self.project,
            self.region,
            fastrand::u64(..)
        );
        let op = SimOperation {
            name: op_name,
            service: name.to_string(),
            done_at,
            new_revision,
            settled: false,
            error: None,
        };
        self.operations.push(op.clone());
        self.ledger.mutated();
        if self.operation_delay.is_zero() {
            self.settle();
        }
        let op = self
            .operations
            .iter()
            .find(|o| o.name == op.name)
            .cloned()
            .expect("pushed");
        let svc = self.services.get(name).expect("exists");
        Reply::json(200, self.render_operation(&op, svc))
    }

    fn check_traffic(
        &self,
        svc: &SimService,
        traffic: &Value,
        new_template: bool,
    ) -> Result<(), Reply> {
        let Some(targets) = traffic.as_array() else {
            return Err(bad_request("traffic", "Traffic must be a list."));
        };
        let mut sum = 0u64;
        for t in targets {
            let pct = t.get("percent").and_then(Value::as_u64).unwrap_or(0);
            sum += pct;
            if t["type"] == BY_REVISION {
                let rev = t.get("revision").and_then(Value::as_str).unwrap_or("");
                let full = format!("{}/revisions/{rev}", svc.name);
                match self.revisions.get(&full) {
                    None => {
                        return Err(bad_request(
                            "traffic",
                            &format!("Revision named '{rev}' does not exist."),
                        ));
                    }
                    Some(r) if pct > 0 && r.fails => {
                        return Err(google_error(
                            400,
                            "FAILED_PRECONDITION",
                            &format!("Revision '{rev}' is not ready and cannot serve traffic."),
                        ));
                    }
                    _ => {}
                }
            } else if t["type"] != LATEST {
                return Err(bad_request(
                    "traffic.type",
                    "Traffic target type must be set.",
                ));
            }
        }
        if sum != 100 && !(targets.is_empty() && new_template) {
            return Err(bad_request(
                "traffic",
                &format!("Traffic percents must sum to 100, got {sum}."),
            ));
        }
        Ok(())
    }
}

/// The effective split of a service: LATEST resolved to the latest ready revision.
pub(super) fn effective_traffic(svc: &SimService) -> Vec<(String, u8)> {
    let mut out: Vec<(String, u8)> = Vec::new();
    for t in &svc.traffic {
        let pct = t.get("percent").and_then(Value::as_u64).unwrap_or(0) as u8;
        if pct == 0 {
            continue;
        }
        let rev = if t["type"] == LATEST {
            svc.latest_ready.clone()
        } else {
            t.get("revision")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        match out.iter_mut().find(|(r, _)| *r == rev) {
            Some((_, p)) => *p += pct,
            None => out.push((rev, pct)),
        }
    }
    out
}

/// Cloud Run's checks of a container's environment: names, reserved names, one value each.
fn check_env(env: Option<&Value>) -> Result<(), Reply> {
    const RESERVED: [&str; 4] = ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"];
    let Some(env) = env else {
        return Ok(());
    };
    let Some(list) = env.as_array() else {
        return Err(bad_request(
            "template.containers[0].env",
            "env must be a list",
        ));
    };
    for (i, e) in list.iter().enumerate() {
        let field = format!("template.containers[0].env[{i}]");
        let name = e["name"].as_str().unwrap_or("");
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(bad_request(
                &format!("{field}.name"),
                "Invalid environment variable name.",
            ));
        }
        if RESERVED.contains(&name) {
            return Err(bad_request(
                &format!("{field}.name"),
                &format!(
                    "The following reserved env names were provided: {name}. These values are automatically set by the system."
                ),
            ));
        }
        if e.get("value").is_some() && e.get("valueSource").is_some() {
            return Err(bad_request(
                &field,
                "Only one of value and valueSource may be set.",
            ));
        }
    }
    Ok(())
}

fn bad_request(field: &str, message: &str) -> Reply {
    let mut reply = google_error(400, "INVALID_ARGUMENT", message);
    reply.body["error"]["details"] = json!([{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": field, "description": message}]
    }]);
    reply
}
