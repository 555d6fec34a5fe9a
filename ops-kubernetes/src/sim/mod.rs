//! A stateful fake of the Kubernetes API on loopback, serving the real paths so the crate's own
//! client runs against it: Deployments whose template changes make ReplicaSets with revisions
//! (and bring old ones back on undo), pods that become ready after a while, or crash, get
//! OOM-killed or fail to pull their image when the image says so (`…crash-loop…`, `…oom…`,
//! `…image-pull…`), the deployment controller's status and conditions (with the progress
//! deadline), HorizontalPodAutoscalers, `resourceVersion` conflicts, `dryRun=All`, paged lists
//! whose `continue` token can expire (410), and injected faults (403 from RBAC, 429 with
//! `Retry-After`, 500, delays, cut bodies).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! use std::time::Duration;
//! use ops_core::contracts::{Deployer, DeployRequest, InitialTraffic};
//! use ops_kubernetes::sim::KubeSim;
//!
//! let sim = KubeSim::builder().pod_ready_after(Duration::from_millis(20)).start().await;
//! sim.add_deployment("event-stream", "registry.local/event-stream:1.0.0", 2);
//! let d = sim.deployment("event-stream")?.polling(Duration::from_millis(10));
//! let r = d.deploy(&DeployRequest { traffic: InitialTraffic::All, ..DeployRequest::new("registry.local/event-stream:1.1.0") }).await?;
//! assert_eq!(d.current().await?.primary_release(), Some(r.id.as_str()));
//! # Ok(()) }
//! ```

mod controller;
mod logs;
mod routes;
mod traffic;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use ops_core::Result;
use ops_core::clock::{SharedClock, system_clock};
use serde_json::json;

pub use ops_core::sim::{Fault, Simulator};
use ops_core::sim::{Ledger, SimServer};

use crate::client::{KubeClient, KubeConfig};
use crate::deployment::KubeDeployment;

/// The token the simulator accepts.
pub const SIM_TOKEN: &str = "kube-sim-token";
/// The namespace it serves.
pub const SIM_NAMESPACE: &str = "default";

/// What a pod's image makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Ready after the builder's `pod_ready_after`.
    Healthy,
    /// Exits at once, again and again: `CrashLoopBackOff`.
    CrashLoop,
    /// Killed for memory at start, again and again: `CrashLoopBackOff`, last state
    /// `OOMKilled`.
    OomKilled,
    /// Its image cannot be pulled: `ErrImagePull`, then `ImagePullBackOff`.
    ImagePull,
}

#[derive(Debug, Clone)]
struct SimPod {
    name: String,
    set: String,
    labels: BTreeMap<String, String>,
    containers: Vec<(String, String)>,
    /// The pod's spec, as its template had it (resources included).
    spec: serde_json::Value,
    created: DateTime<Utc>,
    fate: Fate,
}

impl SimPod {
    fn ready(&self, now: DateTime<Utc>, after: Duration) -> bool {
        self.fate == Fate::Healthy && self.age(now) >= after
    }

    fn age(&self, now: DateTime<Utc>) -> Duration {
        (now - self.created).to_std().unwrap_or_default()
    }
}

#[derive(Debug)]
struct State {
    clock: SharedClock,
    pod_ready_after: Duration,
    rv: u64,
    deployments: BTreeMap<String, Deployment>,
    replica_sets: Vec<k8s_openapi::api::apps::v1::ReplicaSet>,
    pods: Vec<SimPod>,
    hpas: BTreeMap<String, HorizontalPodAutoscaler>,
    progress_since: BTreeMap<String, DateTime<Utc>>,
    image_faults: Vec<(String, Fate)>,
    /// Continue tokens to refuse with 410 Gone.
    expire_continues: u32,
    /// Per Deployment, each pod's CPU and memory use as metrics-server reports them.
    usage: BTreeMap<String, (String, String)>,
    /// metrics-server is installed (default).
    metrics_server: bool,
    /// Secrets, as the API server stores them (`data` in base64).
    secrets: BTreeMap<String, serde_json::Value>,
    /// Lines tests added, per pod.
    extra_logs: BTreeMap<String, Vec<(DateTime<Utc>, String)>>,
    /// Another operator's replicas edit, applied just before the next Deployment `PUT`.
    edit_before_put: Option<(String, i32)>,
    /// Someone else's write to an HTTPRoute just before the next route `PUT`: its name, and
    /// whether it changes the spec (another operator) or only the status (the controller).
    route_edit_before_put: Option<(String, bool)>,
    /// Services by name, as stored.
    services: BTreeMap<String, serde_json::Value>,
    /// HTTPRoutes by name, as stored.
    routes: BTreeMap<String, serde_json::Value>,
    /// A gateway controller accepts routes (default).
    gateway_controller: bool,
    /// Requests per second sent to each front (a Service or an HTTPRoute).
    traffic: BTreeMap<String, f64>,
    /// Per Deployment, the requests it served over time.
    served: BTreeMap<String, Vec<traffic::Segment>>,
    load_faults: Vec<traffic::LoadFault>,
    ledger: Ledger,
}

impl State {
    fn next_rv(&mut self) -> String {
        self.rv = self.rv.saturating_add(1);
        self.rv.to_string()
    }

    fn edit_replicas(&mut self, name: &str, replicas: i32) {
        let rv = self.next_rv();
        if let Some(d) = self.deployments.get_mut(name) {
            if let Some(spec) = d.spec.as_mut() {
                spec.replicas = Some(replicas);
            }
            d.metadata.generation = Some(d.metadata.generation.unwrap_or(1) + 1);
            d.metadata.resource_version = Some(rv);
        }
    }
}

/// Builds a [`KubeSim`].
#[derive(Debug)]
pub struct KubeSimBuilder {
    clock: SharedClock,
    pod_ready_after: Duration,
}

impl KubeSimBuilder {
    /// The clock pods age on (share it with the client).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How long a healthy pod takes to become ready (default 5 s).
    pub fn pod_ready_after(mut self, d: Duration) -> Self {
        self.pod_ready_after = d;
        self
    }

    /// Starts the server with an empty namespace.
    pub async fn start(self) -> KubeSim {
        KubeSim {
            sim: SimServer::start(State {
                clock: self.clock,
                pod_ready_after: self.pod_ready_after,
                rv: 1000,
                deployments: BTreeMap::new(),
                replica_sets: Vec::new(),
                pods: Vec::new(),
                hpas: BTreeMap::new(),
                progress_since: BTreeMap::new(),
                image_faults: Vec::new(),
                expire_continues: 0,
                edit_before_put: None,
                extra_logs: BTreeMap::new(),
                secrets: BTreeMap::new(),
                usage: BTreeMap::new(),
                metrics_server: true,
                route_edit_before_put: None,
                services: BTreeMap::new(),
                routes: BTreeMap::new(),
                gateway_controller: true,
                traffic: BTreeMap::new(),
                served: BTreeMap::new(),
                load_faults: Vec::new(),
                ledger: Ledger::default(),
            })
            .await,
        }
    }
}

/// A running simulator.
#[derive(Debug)]
pub struct KubeSim {
    sim: SimServer<State>,
}

impl KubeSim {
    /// A builder.
    pub fn builder() -> KubeSimBuilder {
        KubeSimBuilder {
            clock: system_clock(),
            pod_ready_after: Duration::from_secs(5),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.sim.state()
    }

    /// The API server's URL.
    pub fn uri(&self) -> String {
        self.sim.uri()
    }

    /// A config for the simulator: its token, the `default` namespace.
    pub fn config(&self) -> Result<KubeConfig> {
        Ok(KubeConfig::new(&self.sim.uri(), SIM_NAMESPACE)?.token(SIM_TOKEN))
    }

    /// A client on the simulator's clock.
    pub fn client(&self) -> Result<KubeClient> {
        let clock = self.state().clock.clone();
        Ok(KubeClient::new(self.config()?)?.with_clock(clock))
    }

    /// A [`KubeDeployment`] for `name`.
    pub fn deployment(&self, name: &str) -> Result<KubeDeployment> {
        KubeDeployment::new(self.client()?, name)
    }

    /// Creates a Deployment `name` (selector `app: name`, one container `app` running
    /// `image`), rolled out at once: its pods are ready.
    pub fn add_deployment(&self, name: &str, image: &str, replicas: i32) {
        self.add_deployment_labelled(name, image, replicas, &[("app", name)]);
    }

    /// [`KubeSim::add_deployment`] with `labels` as its selector and its pods' labels (a
    /// canary's slot: `app: web, track: canary`).
    pub fn add_deployment_labelled(
        &self,
        name: &str,
        image: &str,
        replicas: i32,
        labels: &[(&str, &str)],
    ) {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let mut s = self.state();
        let now = s.clock.now();
        let rv = s.next_rv();
        let d: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": SIM_NAMESPACE, "uid": format!("uid-{name}"),
                         "generation": 1, "resourceVersion": rv,
                         "creationTimestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                         "labels": labels},
            "spec": {"replicas": replicas, "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
                     "selector": {"matchLabels": labels},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": image,
                                                           "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                                           "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                                                         "limits": {"memory": "256Mi"}}}]}}},
            "status": {}
        }))
        .unwrap_or_default();
        s.deployments.insert(name.to_string(), d);
        s.reconcile();
        // Already rolled out: its first pods were started long ago.
        let after = s.pod_ready_after;
        for p in &mut s.pods {
            p.created -= chrono::Duration::from_std(after).unwrap_or_default();
        }
        s.reconcile();
    }

    /// Creates the Service `name` over the pods `selector` picks (port 80 to 8080).
    pub fn add_service(&self, name: &str, selector: &[(&str, &str)]) {
        let selector: BTreeMap<&str, &str> = selector.iter().copied().collect();
        let mut s = self.state();
        let rv = s.next_rv();
        let now = s.clock.now();
        s.services.insert(
            name.to_string(),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": SIM_NAMESPACE, "resourceVersion": rv,
                                "uid": format!("uid-service-{name}"),
                                "creationTimestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)},
                   "spec": {"selector": selector, "type": "ClusterIP",
                            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}),
        );
        s.account_requests();
    }

    /// Creates the HTTPRoute `name` of Gateway `gateway`, one rule sending to `backends`
    /// (Service name and weight).
    pub fn add_http_route(&self, name: &str, backends: &[(&str, i64)]) {
        let mut s = self.state();
        let now = s.clock.now();
        let refs: Vec<serde_json::Value> = backends
            .iter()
            .map(|(service, weight)| json!({"kind": "Service", "name": service, "port": 80, "weight": weight}))
            .collect();
        let route = json!({"apiVersion": traffic::GATEWAY_API, "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": SIM_NAMESPACE, "generation": 1,
                         "uid": format!("uid-route-{name}"),
                         "creationTimestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)},
            "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gateway"}],
                     "hostnames": [format!("{name}.example.test")],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": refs}]}});
        s.store_route(name, route);
        s.account_requests();
    }

    /// HTTPRoute `name` as the server has it now.
    pub fn get_http_route(&self, name: &str) -> Option<serde_json::Value> {
        self.state().routes.get(name).cloned()
    }

    /// Someone writes HTTPRoute `name` between the client's next read and its write: another
    /// operator adding a hostname (`spec`), or the gateway controller rewriting its status.
    pub fn edit_route_before_next_write(&self, name: &str, spec: bool) {
        self.state().route_edit_before_put = Some((name.to_string(), spec));
    }

    /// No gateway controller runs: routes get no status, so none is ever accepted.
    pub fn without_gateway_controller(&self) {
        self.state().gateway_controller = false;
    }

    /// `per_second` requests arrive at `front` (a Service or an HTTPRoute) from now on, spread
    /// over the ready pods behind it as the Service or the route's weights spread them.
    pub fn send_traffic(&self, front: &str, per_second: f64) {
        let mut s = self.state();
        s.reconcile();
        s.traffic.insert(front.to_string(), per_second.max(0.0));
        s.account_requests();
    }

    /// Pods of an image containing `image_part` fail `ratio` (0 to 1) of their requests while
    /// they take at least `from_share` % of a front's traffic: a bug that hides under light
    /// load.
    pub fn failing_from_share(&self, image_part: &str, from_share: u8, ratio: f64) {
        let mut s = self.state();
        s.load_faults.push(traffic::LoadFault {
            image_part: image_part.to_string(),
            from_share: f64::from(from_share),
            ratio: ratio.clamp(0.0, 1.0),
        });
        s.account_requests();
    }

    /// Requests and failed requests Deployment `name`'s pods served between `from` and `to`
    /// (rounded down).
    pub fn requests_served(
        &self,
        name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> (u64, u64) {
        let mut s = self.state();
        s.reconcile();
        let (requests, errors) = s.served_between(name, from, to);
        (requests.max(0.0) as u64, errors.max(0.0) as u64)
    }

    /// Gives Deployment `name` a HorizontalPodAutoscaler from `min` to `max` replicas.
    pub fn add_hpa(&self, name: &str, min: i32, max: i32) {
        let mut s = self.state();
        let rv = s.next_rv();
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": SIM_NAMESPACE, "resourceVersion": rv},
            "spec": {"minReplicas": min, "maxReplicas": max,
                     "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}}
        }))
        .unwrap_or_default();
        s.hpas.insert(name.to_string(), hpa);
    }

    /// Pods whose image contains `image_part` meet `fate` from now on.
    pub fn image_fault(&self, image_part: &str, fate: Fate) {
        self.state()
            .image_faults
            .push((image_part.to_string(), fate));
    }

    /// The next `n` list requests with a `continue` token get 410 Gone (the token expired).
    pub fn expire_continue_tokens(&self, n: u32) {
        self.state().expire_continues = n;
    }

    /// Deployment `name` as the server has it now.
    pub fn get_deployment(&self, name: &str) -> Option<Deployment> {
        let mut s = self.state();
        s.reconcile();
        s.deployments.get(name).cloned()
    }

    /// Changes Deployment `name`'s replicas behind the client's back (another operator's
    /// edit): a new generation and resourceVersion.
    pub fn edit_replicas(&self, name: &str, replicas: i32) {
        self.state().edit_replicas(name, replicas);
    }

    /// Another operator's replicas edit lands between the client's next read and its write.
    pub fn edit_replicas_before_next_write(&self, name: &str, replicas: i32) {
        self.state().edit_before_put = Some((name.to_string(), replicas));
    }

    /// Creates (or replaces) the Opaque Secret `name` with `data`.
    pub fn put_secret(&self, name: &str, data: &[(&str, &str)]) {
        use base64::Engine;
        let mut s = self.state();
        let rv = s.next_rv();
        let now = s.clock.now();
        let data: serde_json::Map<String, serde_json::Value> = data
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        s.secrets.insert(
            name.to_string(),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
                   "metadata": {"name": name, "namespace": SIM_NAMESPACE, "resourceVersion": rv,
                                "uid": format!("uid-secret-{name}"),
                                "creationTimestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}}),
        );
    }

    /// The decoded value of key `key` of Secret `name`.
    pub fn secret_value(&self, name: &str, key: &str) -> Option<Vec<u8>> {
        use base64::Engine;
        let s = self.state();
        let text = s
            .secrets
            .get(name)?
            .get("data")?
            .get(key)?
            .as_str()?
            .to_string();
        base64::engine::general_purpose::STANDARD.decode(text).ok()
    }

    /// Each pod of Deployment `name` uses `cpu` (`800m`) and `memory` (`230Mi`) from now on, as
    /// metrics-server reports it (default `100m` and `100Mi`).
    pub fn set_usage(&self, name: &str, cpu: &str, memory: &str) {
        self.state()
            .usage
            .insert(name.to_string(), (cpu.to_string(), memory.to_string()));
    }

    /// The cluster has no metrics-server: `metrics.k8s.io` answers 404.
    pub fn without_metrics_server(&self) {
        self.state().metrics_server = false;
    }

    /// Every pod of Deployment `name` writes `line` now.
    pub fn log_line(&self, name: &str, line: &str) {
        let mut s = self.state();
        s.reconcile();
        let now = s.clock.now();
        let pods: Vec<String> = s
            .pods
            .iter()
            .filter(|p| traffic::deployment_of(&p.set) == name)
            .map(|p| p.name.clone())
            .collect();
        for p in pods {
            s.extra_logs
                .entry(p)
                .or_default()
                .push((now, line.to_string()));
        }
    }

    /// Names of the pods of Deployment `name`'s ReplicaSets.
    pub fn pod_names(&self, name: &str) -> Vec<String> {
        let mut s = self.state();
        s.reconcile();
        s.pods
            .iter()
            .filter(|p| traffic::deployment_of(&p.set) == name)
            .map(|p| p.name.clone())
            .collect()
    }
}

impl Simulator for KubeSim {
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        self.sim.with_ledger(f)
    }
}
