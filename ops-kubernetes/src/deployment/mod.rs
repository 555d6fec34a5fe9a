//! A [`Deployer`] over one Deployment, as `kubectl rollout` drives it.
//!
//! | runbook step (kubectl) | call |
//! |---|---|
//! | `kubectl set image deployment/D app=IMAGE` + `rollout status` | [`Deployer::deploy`] |
//! | `kubectl rollout status deployment/D` | [`KubeDeployment::rollout_status`] |
//! | `kubectl rollout undo deployment/D [--to-revision=N]` | [`KubeDeployment::undo`], [`Deployer::set_traffic`] |
//! | `kubectl rollout restart deployment/D` | [`KubeDeployment::restart`] |
//! | `kubectl scale deployment/D --replicas=N` | [`KubeDeployment::set_replicas`], [`Deployer::scale`] |
//! | `kubectl rollout pause` / `resume` | [`KubeDeployment::pause`], [`KubeDeployment::resume`] |
//! | `kubectl rollout history deployment/D` | [`Deployer::releases`] |
//!
//! Releases are the Deployment's ReplicaSets (named by their pod-template hash, which stays
//! the same when `undo` brings one back; the revision number does not). Traffic is in
//! proportion to each ReplicaSet's ready pods, which is what the Service spreads over. Every
//! release a Deployment rolls out takes the traffic, so a deploy without traffic and traffic
//! splits are `Unsupported` here: a canary needs a second Deployment or an `HTTPRoute`.
//!
//! Every write is a `PUT` of the object as read, with its `resourceVersion`: a concurrent
//! change is a typed `Conflict`, never overwritten. A rollout is followed the way
//! `kubectl rollout status` follows it; one that stalls is a `VerificationFailed` error naming
//! the new pods' reasons (`ImagePullBackOff`, `CrashLoopBackOff`, `OOMKilled`). Pods in a
//! back-off that cannot heal by waiting end the wait at once unless
//! [`KubeDeployment::wait_out_back_off`] says otherwise.

mod history;
mod scale;
pub(crate) mod view;
mod wait;

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use ops_core::contracts::{
    DeployAction, DeployRequest, Deployer, DeployerCapabilities, InitialTraffic, Release,
    ReleaseState, ScaleSpec, ServiceState, TrafficSplit, Validation,
};
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;

pub use view::{
    DEPLOYED_AT, POD_TEMPLATE_HASH, REPLICAS_BEFORE_STOP, RESTARTED_AT, REVISION, VERSION,
    release_of, shares, traffic_of,
};

use crate::client::{KubeClient, PROVIDER, check_name};
use crate::rollout::{PodProblem, Rollout, problems_of, rollout_of};

/// One Deployment of a namespace.
#[derive(Debug, Clone)]
pub struct KubeDeployment {
    client: KubeClient,
    name: String,
    target: String,
    container: Option<String>,
    repository: Option<String>,
    poll: Duration,
    wait_out_back_off: bool,
    rollout_deadline: Duration,
}

/// Where a rollout stands, and what its new pods say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutStatus {
    /// kubectl's reading.
    pub rollout: Rollout,
    /// Problems of the current revision's pods.
    pub problems: Vec<PodProblem>,
}

impl KubeDeployment {
    /// The Deployment `name` in the client's namespace. Deploys set the image of its first
    /// container (see [`KubeDeployment::container`]); a version without `:`, `@` or `/` is a
    /// tag of [`KubeDeployment::repository`].
    pub fn new(client: KubeClient, name: &str) -> Result<Self> {
        check_name("deployment", "name", name)?;
        Ok(Self {
            target: format!("{}/{name}", client.namespace()),
            client,
            name: name.to_string(),
            container: None,
            repository: None,
            poll: Duration::from_secs(2),
            wait_out_back_off: false,
            rollout_deadline: Duration::from_secs(600),
        })
    }

    /// Deploys set the image of `container` (by name) instead of the first.
    pub fn container(mut self, container: &str) -> Result<Self> {
        check_name("deployment", "container", container)?;
        self.container = Some(container.to_string());
        Ok(self)
    }

    /// A bare version (`2.4.1`) deploys `{repository}:{version}`.
    pub fn repository(mut self, repository: impl Into<String>) -> Self {
        self.repository = Some(repository.into());
        self
    }

    /// How often a rollout is looked at (default 2 s).
    pub fn polling(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// How long a rollout started by a traffic move, a scale or a stop may take (default 10
    /// minutes; a deploy takes its request's deadline).
    pub fn rollout_deadline(mut self, deadline: Duration) -> Self {
        self.rollout_deadline = deadline;
        self
    }

    /// Keep waiting while new pods are in a back-off (default: such a rollout fails at once,
    /// since only a change heals it).
    pub fn wait_out_back_off(mut self, wait: bool) -> Self {
        self.wait_out_back_off = wait;
        self
    }

    /// The client.
    pub fn client(&self) -> &KubeClient {
        &self.client
    }

    /// The Deployment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn path(&self) -> String {
        format!(
            "apis/apps/v1/namespaces/{}/deployments/{}",
            self.client.namespace(),
            self.name
        )
    }

    /// The Deployment as the server has it.
    pub async fn get(&self) -> Result<Deployment> {
        let url = self.client.url(&self.path(), &[])?;
        self.client.get("get_deployment", url, &self.target).await
    }

    /// Its ReplicaSets, newest first.
    pub async fn replica_sets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>> {
        let path = format!(
            "apis/apps/v1/namespaces/{}/replicasets",
            self.client.namespace()
        );
        let sets = self
            .client
            .list("list_replica_sets", &path, selector_of(d).as_deref())
            .await?;
        Ok(view::owned(d, sets))
    }

    /// The pods of one ReplicaSet.
    pub async fn pods_of(&self, rs: &ReplicaSet) -> Result<Vec<Pod>> {
        let mut selector: Vec<String> = rs
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        selector.sort();
        let path = format!("api/v1/namespaces/{}/pods", self.client.namespace());
        self.client
            .list("list_pods", &path, Some(&selector.join(",")))
            .await
    }

    /// Reads the Deployment, applies `change`, and writes it back with its resourceVersion
    /// (server-side `dryRun=All` when `dry_run`, written once). A conflict is handled as
    /// [`crate::client::replace`] says: a status-only change is written over, someone else's
    /// edit of the spec or annotations is a `Conflict` that overwrites nothing.
    pub(crate) async fn update(
        &self,
        operation: &'static str,
        dry_run: bool,
        change: impl Fn(&mut Deployment) -> Result<()>,
    ) -> Result<Deployment> {
        let query: &[(&str, &str)] = if dry_run { &[("dryRun", "All")] } else { &[] };
        let url = self.client.url(&self.path(), query)?;
        let write = |d: Deployment| {
            let url = url.clone();
            async move {
                self.client
                    .write(operation, Method::PUT, url, &d, None)
                    .await
            }
        };
        if dry_run {
            let mut d = self.get().await?;
            change(&mut d)?;
            return write(d).await;
        }
        crate::client::replace(
            operation,
            &self.target,
            || self.get(),
            write,
            change,
            |a: &Deployment, b: &Deployment| {
                a.spec == b.spec && a.metadata.annotations == b.metadata.annotations
            },
        )
        .await
    }

    pub(crate) fn image_for(&self, version: &str) -> Result<String> {
        if version.contains([':', '@', '/']) {
            return Ok(version.to_string());
        }
        match &self.repository {
            Some(repo) => Ok(format!("{repo}:{version}")),
            None => Err(Error::invalid_input(
                PROVIDER,
                "deploy",
                "version",
                "a bare tag needs KubeDeployment::repository; give a full image reference otherwise",
            )),
        }
    }

    pub(crate) fn set_image(
        &self,
        d: &mut Deployment,
        image: &str,
        version: &str,
        stamp: &str,
    ) -> Result<()> {
        let template = &mut spec_mut(d)?.template;
        let containers = &mut template
            .spec
            .as_mut()
            .ok_or_else(|| no_containers(&self.target))?
            .containers;
        let c = match &self.container {
            Some(name) => containers.iter_mut().find(|c| &c.name == name),
            None => containers.first_mut(),
        }
        .ok_or_else(|| no_containers(&self.target))?;
        c.image = Some(image.to_string());
        let notes = template
            .metadata
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(Default::default);
        notes.insert(VERSION.into(), version.to_string());
        notes.insert(DEPLOYED_AT.into(), stamp.to_string());
        Ok(())
    }

    pub(crate) fn stamp(&self) -> String {
        self.client
            .clock()
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    }

    /// `kubectl scale --replicas=N`, the rollout followed (0 is a stop: see
    /// [`Deployer::stop_serving`]).
    pub async fn set_replicas(&self, replicas: u32, deadline: Duration) -> Result<ServiceState> {
        self.write_replicas("replicas", replicas).await?;
        self.wait_for_rollout(deadline).await?;
        self.current().await
    }

    /// Writes `spec.replicas` (the rollout is not followed); `field` names the input in the
    /// error when `n` is above what the API takes (2^31 - 1).
    pub(crate) async fn write_replicas(&self, field: &str, n: u32) -> Result<Deployment> {
        let n = i32::try_from(n)
            .map_err(|_| Error::invalid_input(PROVIDER, "scale", field, "more than 2^31 - 1"))?;
        self.update("scale", false, |d| {
            spec_mut(d)?.replicas = Some(n);
            Ok(())
        })
        .await
    }

    /// `kubectl rollout pause` (`true`) or `resume` (`false`).
    pub async fn pause(&self, paused: bool) -> Result<()> {
        self.update(if paused { "pause" } else { "resume" }, false, |d| {
            spec_mut(d)?.paused = paused.then_some(true);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// [`KubeDeployment::pause`] with `false`.
    pub async fn resume(&self) -> Result<()> {
        self.pause(false).await
    }

    async fn releases_now(&self) -> Result<Vec<Release>> {
        let d = self.get().await?;
        let sets = self.replica_sets(&d).await?;
        let rollout = rollout_of(&d);
        let current = view::current(&d, &sets).and_then(|rs| rs.metadata.name.clone());
        let mut out = Vec::with_capacity(sets.len());
        for rs in &sets {
            let is_current = rs.metadata.name == current;
            let problems: Vec<PodProblem> = if is_current && rollout == Rollout::Complete {
                Vec::new()
            } else if rs.status.as_ref().is_some_and(|s| s.replicas > 0) {
                self.pods_of(rs)
                    .await?
                    .iter()
                    .flat_map(problems_of)
                    .collect()
            } else {
                Vec::new()
            };
            let state = if problems.iter().any(PodProblem::is_fatal)
                || (is_current && matches!(rollout, Rollout::DeadlineExceeded(_)))
            {
                ReleaseState::Failed
            } else if !is_current || rollout == Rollout::Complete {
                // Kubernetes keeps no record of whether an old revision ever became
                // available; one that cannot start fails again when traffic moves to it.
                ReleaseState::Ready
            } else {
                ReleaseState::Pending
            };
            out.push(release_of(rs, self.container.as_deref(), state));
        }
        Ok(out)
    }
}

pub(crate) fn spec_mut(
    d: &mut Deployment,
) -> Result<&mut k8s_openapi::api::apps::v1::DeploymentSpec> {
    d.spec.as_mut().ok_or_else(|| {
        Error::new(
            PROVIDER,
            "deployment",
            ErrorKind::Decode {
                detail: "the Deployment has no spec".into(),
            },
        )
    })
}

fn no_containers(target: &str) -> Error {
    Error::invalid_input(
        PROVIDER,
        "deploy",
        "container",
        format!("{target} has no such container"),
    )
}

fn replicas_before_stop(d: &Deployment) -> i32 {
    d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REPLICAS_BEFORE_STOP))
        .and_then(|n| n.parse::<i32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

fn with_problems(why: String, problems: &[PodProblem]) -> String {
    if problems.is_empty() {
        return why;
    }
    let list: Vec<String> = problems.iter().take(5).map(ToString::to_string).collect();
    format!("{why}; new pods: {}", list.join("; "))
}

/// The Deployment's `matchLabels` as a label selector (`app=web,tier=api`).
pub(crate) fn selector_of(d: &Deployment) -> Option<String> {
    let labels = d.spec.as_ref()?.selector.match_labels.as_ref()?;
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.sort();
    (!parts.is_empty()).then(|| parts.join(","))
}

#[async_trait]
impl Deployer for KubeDeployment {
    fn target(&self) -> &str {
        &self.target
    }

    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities {
            traffic_split: false,
            scale: true,
            stop_serving: true,
            deploy_without_traffic: false,
        }
    }

    async fn current(&self) -> Result<ServiceState> {
        let d = self.get().await?;
        let sets = self.replica_sets(&d).await?;
        let releases = self.releases_now().await?;
        let spec = d.spec.clone().unwrap_or_default();
        let status = d.status.clone().unwrap_or_default();
        let hpa = self.hpa().await?;
        let replicas = spec.replicas.unwrap_or(1).max(0) as u32;
        let (min, max) = match &hpa {
            Some(h) => (
                h.spec
                    .as_ref()
                    .and_then(|s| s.min_replicas)
                    .unwrap_or(1)
                    .max(0) as u32,
                h.spec
                    .as_ref()
                    .map_or(replicas, |s| s.max_replicas.max(0) as u32),
            ),
            None => (replicas, replicas),
        };
        let resources = spec
            .template
            .spec
            .as_ref()
            .and_then(|s| match &self.container {
                Some(n) => s.containers.iter().find(|c| &c.name == n),
                None => s.containers.first(),
            })
            .and_then(|c| c.resources.clone())
            .unwrap_or_default();
        let request = |k: &str| {
            resources
                .requests
                .as_ref()
                .and_then(|r| r.get(k))
                .map(|q| q.0.clone())
        };
        Ok(ServiceState {
            target: self.target.clone(),
            serving: replicas > 0 && status.available_replicas.unwrap_or(0) > 0,
            traffic: traffic_of(&sets),
            latest_ready: releases
                .iter()
                .find(|r| r.state == ReleaseState::Ready)
                .map(|r| r.id.clone()),
            url: None,
            scale: Some(ScaleSpec {
                min_instances: Some(min),
                max_instances: Some(max),
                cpu: request("cpu"),
                memory: request("memory"),
            }),
            etag: d.metadata.resource_version.clone(),
        })
    }

    async fn releases(&self) -> Result<Vec<Release>> {
        self.releases_now().await
    }

    /// Sets the image and follows the rollout. A deploy without traffic is `Unsupported`:
    /// a Deployment serves what it rolls out.
    async fn deploy(&self, request: &DeployRequest) -> Result<Release> {
        request.validate()?;
        if request.traffic == InitialTraffic::None {
            return Err(Error::unsupported(
                self.target.clone(),
                "deploy",
                "a release without traffic: a Deployment serves every revision it rolls out (use a canary Deployment)",
            ));
        }
        let image = self.image_for(request.version.trim())?;
        let stamp = self.stamp();
        self.update("deploy", false, |d| {
            self.set_image(d, &image, request.version.trim(), &stamp)
        })
        .await?;
        tracing::info!(target = %self.target, %image, "rolling out");
        self.rolled_out(request.deadline).await
    }

    /// All traffic to one release: its template written back (`kubectl rollout undo
    /// --to-revision`), replicas restored after a stop. Splits are `Unsupported`.
    async fn set_traffic(&self, split: &TrafficSplit) -> Result<ServiceState> {
        let [only] = split.allocations() else {
            return Err(Error::unsupported(
                self.target.clone(),
                "set_traffic",
                "traffic splits on one Deployment (use a canary Deployment or an HTTPRoute)",
            ));
        };
        self.run_release(&only.release, self.rollout_deadline)
            .await?;
        self.current().await
    }

    /// Replicas (`min_instances` = `max_instances`, or one of them), the bounds of the
    /// Deployment's HorizontalPodAutoscaler (a range), CPU and memory requests of the
    /// container (a new revision). A range without an autoscaler is `InvalidInput`.
    async fn scale(&self, spec: &ScaleSpec) -> Result<ServiceState> {
        self.scale_to(spec).await
    }

    /// Scales to zero, remembering the replicas for [`Deployer::set_traffic`] to restore.
    async fn stop_serving(&self) -> Result<ServiceState> {
        self.update("stop_serving", false, |d| {
            let before = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            if before > 0 {
                d.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(REPLICAS_BEFORE_STOP.into(), before.to_string());
            }
            spec_mut(d)?.replicas = Some(0);
            Ok(())
        })
        .await?;
        self.wait_for_rollout(self.rollout_deadline).await?;
        self.current().await
    }

    /// A deploy is checked by the API server with `dryRun=All` (admission, validation), so a
    /// bad image reference or a missing container is found before anything changes.
    async fn validate(&self, action: &DeployAction) -> Result<Validation> {
        ops_core::contracts::validate_locally(action)?;
        match action {
            DeployAction::Deploy(r) if r.traffic == InitialTraffic::All => {
                let image = self.image_for(r.version.trim())?;
                let stamp = self.stamp();
                self.update("deploy", true, |d| {
                    self.set_image(d, &image, r.version.trim(), &stamp)
                })
                .await?;
                Ok(Validation::ValidatedByProvider)
            }
            _ => Ok(Validation::CheckedLocally),
        }
    }
}
