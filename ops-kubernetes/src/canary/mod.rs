//! [`KubeCanary`]: canary and blue-green releases on Kubernetes, as a [`Deployer`] with
//! traffic splits. Each release runs in a slot: a Deployment of its own (`web-blue`,
//! `web-green`), which the cluster's manifests create with selectors that do not overlap
//! (`app: web, track: blue` and `app: web, track: green`). Traffic is split one of two ways:
//!
//! - **Replica ratio** ([`KubeCanary::replica_ratio`]): one Service selects every slot's pods
//!   (`app: web`) and spreads requests over the ready ones, so a share is a number of replicas
//!   out of a total. With 4 replicas the shares are 25 %, 50 %, 75 % and 100 %; 1 % needs 100.
//!   A split the total cannot represent is `InvalidInput` naming the steps it can take, and
//!   nothing changes. A release without traffic runs no pods; its pods start when it gets a
//!   share, and the traffic move waits for them.
//! - **Gateway API weights** ([`KubeCanary::http_route`]): each slot has a Service of its own,
//!   and the weights of an `HTTPRoute` rule's backend references split the traffic exactly.
//!   A deploy starts the release's pods with weight 0 and waits for its rollout; a traffic
//!   move writes the weights and waits until every parent Gateway's controller has accepted
//!   the new generation and resolved its backends (`Accepted` and `ResolvedRefs`), so a
//!   route that names a missing Service is an error, not a silent outage.
//!
//! Release ids are `<deployment>@<version>`: the slot and what it runs. A deploy goes into a
//! slot that takes no traffic (the one deployed longest ago); while every slot takes traffic
//! it is a `Conflict` that changes nothing. Every write carries the `resourceVersion` read,
//! as in [`KubeDeployment`], so another operator's concurrent change is a `Conflict`, never
//! overwritten. The canary judge's counts come from any [`MetricsSource`] keyed by
//! Deployment name, through [`KubeCanary::metrics`].
//!
//! [`MetricsSource`]: ops_core::contracts::MetricsSource

mod metrics;
pub mod route;
mod split;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use ops_core::contracts::{
    DeployAction, DeployRequest, Deployer, DeployerCapabilities, InitialTraffic, Release,
    ReleaseState, ServiceState, TrafficAllocation, TrafficSplit, Validation,
};
use ops_core::{Error, ErrorKind, Result};

pub use metrics::{CanaryMetrics, deployment_of};
pub use route::{HttpRoute, RouteReadiness};
pub use split::replicas_for;

use crate::client::{KubeClient, PROVIDER, check_name};
use crate::deployment::view::{self, DEPLOYED_AT};
use crate::deployment::{KubeDeployment, spec_mut};
use crate::rollout::{PodProblem, Rollout, rollout_of};

/// How a [`KubeCanary`] splits traffic between its slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanaryTraffic {
    /// One Service over every slot's pods; shares are replicas out of `replicas`.
    ReplicaRatio {
        /// The Service in front of every slot (checked to select each slot's pods).
        service: String,
        /// The replicas shared between the slots.
        replicas: u32,
    },
    /// The weights of rule `rule` of the HTTPRoute `route`; slot `i` is behind `services[i]`.
    HttpRoute {
        /// The route.
        route: String,
        /// The rule whose backend references are weighted.
        rule: usize,
        /// The Service in front of each slot, in the order of the slots.
        services: Vec<String>,
        /// Replicas of a deployed release (default: as many as the serving slot runs).
        replicas: Option<u32>,
    },
}

/// Releases of one app in slot Deployments, traffic split between them; see the module docs.
#[derive(Debug, Clone)]
pub struct KubeCanary {
    client: KubeClient,
    slots: Vec<KubeDeployment>,
    traffic: CanaryTraffic,
    target: String,
    poll: Duration,
    rollout_deadline: Duration,
    route_deadline: Duration,
    /// One change at a time from this process.
    lock: Arc<tokio::sync::Mutex<()>>,
}

/// One slot as read.
struct SlotView {
    deployment: Deployment,
    release: String,
    version: String,
    deployed_at: Option<DateTime<Utc>>,
}

fn bad(field: &str, why: impl Into<String>) -> Error {
    Error::invalid_input(PROVIDER, "canary", field, why)
}

impl KubeCanary {
    fn new(client: KubeClient, slots: &[&str], traffic: CanaryTraffic) -> Result<Self> {
        if slots.len() < 2 {
            return Err(bad("slots", "at least two Deployments: stable and canary"));
        }
        let mut seen = std::collections::HashSet::new();
        if !slots.iter().all(|s| seen.insert(*s)) {
            return Err(bad("slots", "each Deployment once"));
        }
        let slots = slots
            .iter()
            .map(|s| KubeDeployment::new(client.clone(), s))
            .collect::<Result<Vec<_>>>()?;
        match &traffic {
            CanaryTraffic::ReplicaRatio { service, replicas } => {
                check_name("canary", "service", service)?;
                if *replicas == 0 || i32::try_from(*replicas).is_err() {
                    return Err(bad("replicas", "from 1 to 2^31 - 1"));
                }
            }
            CanaryTraffic::HttpRoute {
                route,
                services,
                replicas,
                ..
            } => {
                check_name("canary", "route", route)?;
                if services.len() != slots.len() {
                    return Err(bad("services", "one Service per slot, in the slots' order"));
                }
                for s in services {
                    check_name("canary", "service", s)?;
                }
                if replicas.is_some_and(|n| n == 0 || i32::try_from(n).is_err()) {
                    return Err(bad("replicas", "from 1 to 2^31 - 1"));
                }
            }
        }
        let names: Vec<&str> = slots.iter().map(KubeDeployment::name).collect();
        Ok(Self {
            target: format!("{}/{}", client.namespace(), names.join("+")),
            client,
            slots,
            traffic,
            poll: Duration::from_secs(2),
            rollout_deadline: Duration::from_secs(600),
            route_deadline: Duration::from_secs(120),
            lock: Default::default(),
        })
    }

    /// Slots `slots` (Deployments) behind one Service `service`, sharing `replicas` replicas.
    pub fn replica_ratio(
        client: KubeClient,
        service: &str,
        slots: &[&str],
        replicas: u32,
    ) -> Result<Self> {
        let traffic = CanaryTraffic::ReplicaRatio {
            service: service.to_string(),
            replicas,
        };
        Self::new(client, slots, traffic)
    }

    /// Slots given as (Deployment, its Service), weighted by the first rule of HTTPRoute
    /// `route` (see [`KubeCanary::rule`]).
    pub fn http_route(client: KubeClient, route: &str, slots: &[(&str, &str)]) -> Result<Self> {
        let traffic = CanaryTraffic::HttpRoute {
            route: route.to_string(),
            rule: 0,
            services: slots.iter().map(|(_, s)| s.to_string()).collect(),
            replicas: None,
        };
        let names: Vec<&str> = slots.iter().map(|(d, _)| *d).collect();
        Self::new(client, &names, traffic)
    }

    /// With an HTTPRoute: weight rule `rule` (from 0) instead of the first; with a replica
    /// ratio: no change.
    pub fn rule(mut self, rule: usize) -> Self {
        if let CanaryTraffic::HttpRoute { rule: r, .. } = &mut self.traffic {
            *r = rule;
        }
        self
    }

    /// With an HTTPRoute: a deployed release runs `replicas` pods (default: as many as the
    /// serving slot runs).
    pub fn release_replicas(mut self, replicas: u32) -> Result<Self> {
        if replicas == 0 || i32::try_from(replicas).is_err() {
            return Err(bad("replicas", "from 1 to 2^31 - 1"));
        }
        if let CanaryTraffic::HttpRoute { replicas: r, .. } = &mut self.traffic {
            *r = Some(replicas);
        }
        Ok(self)
    }

    /// Deploys set the image of `container` in every slot (default: the first container).
    pub fn container(mut self, container: &str) -> Result<Self> {
        self.slots = self
            .slots
            .into_iter()
            .map(|s| s.container(container))
            .collect::<Result<_>>()?;
        Ok(self)
    }

    /// A bare version (`2.4.1`) deploys `{repository}:{version}`.
    pub fn repository(mut self, repository: &str) -> Self {
        self.slots = self
            .slots
            .into_iter()
            .map(|s| s.repository(repository))
            .collect();
        self
    }

    /// How often rollouts and the route are looked at (default 2 s).
    pub fn polling(mut self, every: Duration) -> Self {
        self.poll = every;
        self.slots = self.slots.into_iter().map(|s| s.polling(every)).collect();
        self
    }

    /// How long the rollout of a traffic move may take (default 10 minutes; a deploy takes
    /// its request's deadline).
    pub fn rollout_deadline(mut self, deadline: Duration) -> Self {
        self.rollout_deadline = deadline;
        self
    }

    /// How long the gateway may take to accept new weights (default 2 minutes).
    pub fn route_deadline(mut self, deadline: Duration) -> Self {
        self.route_deadline = deadline;
        self
    }

    /// How traffic is split.
    pub fn traffic(&self) -> &CanaryTraffic {
        &self.traffic
    }

    /// The slots' Deployment names.
    pub fn slot_names(&self) -> Vec<&str> {
        self.slots.iter().map(KubeDeployment::name).collect()
    }

    /// Whether a share of `percent` can be given: always with an HTTPRoute; with a replica
    /// ratio, when it is a whole number of the replicas.
    pub fn can_give(&self, percent: u8) -> bool {
        match &self.traffic {
            CanaryTraffic::ReplicaRatio { replicas, .. } => {
                replicas_for(&[percent, 100u8.saturating_sub(percent)], *replicas).is_ok()
            }
            CanaryTraffic::HttpRoute { .. } => true,
        }
    }

    async fn views(&self) -> Result<Vec<SlotView>> {
        let mut out = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let d = slot.get().await.map_err(|e| match e.kind() {
                ErrorKind::NotFound { .. } => Error::new(
                    PROVIDER,
                    "canary",
                    ErrorKind::NotFound {
                        resource: format!(
                            "Deployment {} (each slot is a Deployment the cluster's manifests create, with a selector of its own)",
                            slot.name()
                        ),
                    },
                ),
                _ => e,
            })?;
            let template = d.spec.as_ref().map(|s| &s.template);
            let version = view::version_of(template, None);
            let deployed_at = template
                .and_then(|t| t.metadata.as_ref()?.annotations.as_ref()?.get(DEPLOYED_AT))
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            out.push(SlotView {
                release: format!("{}@{version}", slot.name()),
                version,
                deployed_at,
                deployment: d,
            });
        }
        self.check_selectors(&out)?;
        Ok(out)
    }

    /// Slots whose selectors pick each other's pods would be counted, scaled and rolled
    /// together: refused before anything is written.
    fn check_selectors(&self, views: &[SlotView]) -> Result<()> {
        let selector = |d: &Deployment| {
            d.spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.clone())
                .unwrap_or_default()
        };
        let labels = |d: &Deployment| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref()?.labels.clone())
                .unwrap_or_default()
        };
        for (i, a) in views.iter().enumerate() {
            for (j, b) in views.iter().enumerate() {
                let sel = selector(&a.deployment);
                let theirs = labels(&b.deployment);
                if i != j && !sel.is_empty() && sel.iter().all(|(k, v)| theirs.get(k) == Some(v)) {
                    return Err(bad(
                        "slots",
                        format!(
                            "the selector of {} picks the pods of {}: give each slot a label of its own (track: blue / track: green)",
                            self.slots[i].name(),
                            self.slots[j].name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The traffic weight of each slot as it is now.
    async fn weights(&self, views: &[SlotView]) -> Result<Vec<u64>> {
        match &self.traffic {
            CanaryTraffic::ReplicaRatio { .. } => Ok(views
                .iter()
                .map(|v| {
                    let ready = v.deployment.status.as_ref().and_then(|s| s.ready_replicas);
                    u64::try_from(ready.unwrap_or(0)).unwrap_or(0)
                })
                .collect()),
            CanaryTraffic::HttpRoute { rule, services, .. } => {
                let route = self.route().await?;
                let by_service = route.weights(*rule, self.client.namespace());
                Ok(services
                    .iter()
                    .map(|s| by_service.get(s).copied().unwrap_or(0))
                    .collect())
            }
        }
    }

    fn shares(views: &[SlotView], weights: &[u64]) -> Vec<TrafficAllocation> {
        let counts: Vec<(String, u64)> = views
            .iter()
            .zip(weights)
            .map(|(v, w)| (v.release.clone(), *w))
            .collect();
        view::shares(&counts)
    }

    /// With a replica ratio: the Service must select every slot's pods.
    async fn check_service(&self, views: &[SlotView]) -> Result<()> {
        let CanaryTraffic::ReplicaRatio { service, .. } = &self.traffic else {
            return Ok(());
        };
        let path = format!(
            "api/v1/namespaces/{}/services/{service}",
            self.client.namespace()
        );
        let url = self.client.url(&path, &[])?;
        let svc: Service = self
            .client
            .get("get_service", url, &format!("service {service}"))
            .await?;
        let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
        for (slot, v) in self.slots.iter().zip(views) {
            let labels = v
                .deployment
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref()?.labels.clone())
                .unwrap_or_default();
            if selector.is_empty() || !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                return Err(bad(
                    "service",
                    format!(
                        "Service {service} does not select the pods of {}: its traffic would not reach them",
                        slot.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The slot a deploy goes to: one taking no traffic, deployed longest ago.
    fn idle_slot(views: &[SlotView], weights: &[u64]) -> Result<usize> {
        (0..views.len())
            .filter(|i| weights[*i] == 0)
            .min_by_key(|i| views[*i].deployed_at)
            .ok_or_else(|| {
                Error::new(
                    PROVIDER,
                    "deploy",
                    ErrorKind::Conflict {
                        detail: "every slot takes traffic: move it off one release first".into(),
                    },
                )
            })
    }

    /// Replicas a release runs in `slot` when it takes traffic.
    fn serving_replicas(&self, views: &[SlotView], weights: &[u64]) -> u32 {
        match &self.traffic {
            CanaryTraffic::ReplicaRatio { replicas, .. } => *replicas,
            CanaryTraffic::HttpRoute {
                replicas: Some(n), ..
            } => *n,
            CanaryTraffic::HttpRoute { replicas: None, .. } => views
                .iter()
                .zip(weights)
                .filter(|(_, w)| **w > 0)
                .filter_map(|(v, _)| v.deployment.spec.as_ref()?.replicas)
                .max()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1)
                .max(1),
        }
    }

    /// The slot running `release`, or `NotFound` naming what the slots run.
    fn slot_of(views: &[SlotView], release: &str) -> Result<usize> {
        views
            .iter()
            .position(|v| v.release == release)
            .ok_or_else(|| {
                let running: Vec<&str> = views.iter().map(|v| v.release.as_str()).collect();
                Error::new(
                    PROVIDER,
                    "set_traffic",
                    ErrorKind::NotFound {
                        resource: format!(
                            "release {release} (the slots run {})",
                            running.join(", ")
                        ),
                    },
                )
            })
    }

    /// Percent per slot for `split`.
    fn split_by_slot(views: &[SlotView], split: &TrafficSplit) -> Result<Vec<u8>> {
        let mut percent = vec![0u8; views.len()];
        for a in split.allocations() {
            percent[Self::slot_of(views, &a.release)?] = a.percent;
        }
        Ok(percent)
    }

    fn release_of(&self, slot: usize, v: &SlotView, state: ReleaseState) -> Release {
        let created = v.deployed_at.or_else(|| {
            v.deployment
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(view::time)
        });
        Release {
            id: v.release.clone(),
            version: v.version.clone(),
            state,
            created_at: created,
            url: None,
            labels: BTreeMap::from([("slot".to_string(), self.slots[slot].name().to_string())]),
        }
    }
}

#[async_trait]
impl Deployer for KubeCanary {
    fn target(&self) -> &str {
        &self.target
    }

    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities {
            traffic_split: true,
            scale: false,
            stop_serving: false,
            deploy_without_traffic: true,
        }
    }

    async fn current(&self) -> Result<ServiceState> {
        let views = self.views().await?;
        let weights = self.weights(&views).await?;
        let traffic = Self::shares(&views, &weights);
        let latest = views
            .iter()
            .filter(|v| rollout_of(&v.deployment) == Rollout::Complete)
            .max_by_key(|v| v.deployed_at)
            .map(|v| v.release.clone());
        Ok(ServiceState {
            target: self.target.clone(),
            serving: !traffic.is_empty(),
            traffic,
            latest_ready: latest,
            url: None,
            scale: None,
            etag: None,
        })
    }

    /// What each slot runs, newest deployed first.
    async fn releases(&self) -> Result<Vec<Release>> {
        let views = self.views().await?;
        let mut out = Vec::with_capacity(views.len());
        for (i, v) in views.iter().enumerate() {
            let status = self.slots[i].rollout_status().await?;
            let state = match status.rollout {
                _ if status.problems.iter().any(PodProblem::is_fatal) => ReleaseState::Failed,
                Rollout::Complete => ReleaseState::Ready,
                Rollout::DeadlineExceeded(_) => ReleaseState::Failed,
                _ => ReleaseState::Pending,
            };
            out.push(self.release_of(i, v, state));
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Ok(out)
    }

    /// Starts the release in an idle slot and follows its rollout; with all traffic, then
    /// moves the traffic to it.
    async fn deploy(&self, request: &DeployRequest) -> Result<Release> {
        request.validate()?;
        let _one = self.lock.lock().await;
        let views = self.views().await?;
        self.check_service(&views).await?;
        let weights = self.weights(&views).await?;
        let slot = Self::idle_slot(&views, &weights)?;
        let d = &self.slots[slot];
        let replicas = match (&self.traffic, request.traffic) {
            (CanaryTraffic::ReplicaRatio { .. }, InitialTraffic::None) => 0,
            _ => self.serving_replicas(&views, &weights),
        };
        let n = i32::try_from(replicas).map_err(|_| bad("replicas", "too many"))?;
        let version = request.version.trim();
        let image = d.image_for(version)?;
        let stamp = d.stamp();
        d.update("deploy", false, |dep| {
            d.set_image(dep, &image, version, &stamp)?;
            spec_mut(dep)?.replicas = Some(n);
            Ok(())
        })
        .await?;
        tracing::info!(target = %self.target, slot = d.name(), %image, "rolling out in a slot");
        d.wait_for_rollout(request.deadline).await?;
        if request.traffic == InitialTraffic::All {
            let mut percent = vec![0u8; self.slots.len()];
            percent[slot] = 100;
            self.move_traffic(&self.views().await?, &percent).await?;
        }
        let views = self.views().await?;
        Ok(self.release_of(slot, &views[slot], ReleaseState::Ready))
    }

    async fn set_traffic(&self, split: &TrafficSplit) -> Result<ServiceState> {
        {
            let _one = self.lock.lock().await;
            let views = self.views().await?;
            let percent = Self::split_by_slot(&views, split)?;
            self.move_traffic(&views, &percent).await?;
        }
        self.current().await
    }

    async fn stop_serving(&self) -> Result<ServiceState> {
        Err(Error::unsupported(
            self.target.clone(),
            "stop_serving",
            "stopping a canary's slots (scale each slot's Deployment with KubeDeployment)",
        ))
    }

    /// A deploy is checked by the API server (`dryRun=All`) on the slot it would go to; a
    /// traffic move against the slots, then by the API server with the route's new weights
    /// (`dryRun=All`), or with a replica ratio against the replicas.
    async fn validate(&self, action: &DeployAction) -> Result<Validation> {
        ops_core::contracts::validate_locally(action)?;
        match action {
            DeployAction::Deploy(r) => {
                let views = self.views().await?;
                self.check_service(&views).await?;
                let weights = self.weights(&views).await?;
                let d = &self.slots[Self::idle_slot(&views, &weights)?];
                let image = d.image_for(r.version.trim())?;
                let stamp = d.stamp();
                d.update("deploy", true, |dep| {
                    d.set_image(dep, &image, r.version.trim(), &stamp)
                })
                .await?;
                Ok(Validation::ValidatedByProvider)
            }
            DeployAction::SetTraffic(split) => {
                let views = self.views().await?;
                let percent = Self::split_by_slot(&views, split)?;
                match &self.traffic {
                    CanaryTraffic::ReplicaRatio { replicas, .. } => {
                        replicas_for(&percent, *replicas)?;
                        Ok(Validation::CheckedLocally)
                    }
                    CanaryTraffic::HttpRoute { .. } => {
                        self.write_weights(&percent, true).await?;
                        Ok(Validation::ValidatedByProvider)
                    }
                }
            }
            _ => Ok(Validation::CheckedLocally),
        }
    }
}
