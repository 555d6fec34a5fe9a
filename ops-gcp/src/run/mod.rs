//! Cloud Run Admin API v2 behind [`Deployer`] and [`HealthProbe`](ops_core::contracts::HealthProbe).
//!
//! | runbook step (gcloud) | call |
//! |---|---|
//! | `gcloud run services describe` | [`CloudRun::service`], [`Deployer::current`] |
//! | `gcloud run revisions list` | [`Deployer::releases`] |
//! | `gcloud run deploy --image … [--no-traffic]` | [`Deployer::deploy`] |
//! | `gcloud run services update-traffic --to-revisions=A=90,B=10` | [`Deployer::set_traffic`] |
//! | `gcloud run services update-traffic --to-latest` | [`CloudRun::route_all_to_latest`] |
//! | `--min-instances / --max-instances / --cpu / --memory` | [`Deployer::scale`] |
//! | emergency stop | [`Deployer::stop_serving`] |
//! | review and prune old revisions (`gcloud run revisions delete`) | [`prune::PruneRevisions`] |
//! | `gcloud run services update --update-env-vars / --update-secrets` | [`CloudRun::with_env_change`] then [`Deployer::deploy`] |
//!
//! **Configuration changes.** [`CloudRun::with_env_change`] gives a deployer whose deploys also
//! set or remove environment variables ([`env::EnvChange`]; secrets only as Secret Manager
//! references). Deploying the serving image ([`CloudRun::current_image`]) through it is a
//! configuration change with the same verification and rollback as an image change: the old
//! settings live on in the previous revision, which a rollback sends the traffic back to.
//!
//! A deploy always makes a new revision (`forceNewRevision`), so redeploying the serving image
//! (to pick up a rotated secret) restarts it. Every write carries the service's `etag`: if someone else changed the service since it was
//! read, Cloud Run refuses and the call fails with [`ErrorKind::Conflict`]; nothing is
//! overwritten. Writes return a long-running operation, awaited to `done` within a deadline.
//! [`Deployer::validate`] sends the same write with `validateOnly=true`.
//!
//! **Stopping a service.** Cloud Run v2 does not accept `maxInstanceCount: 0`, and a closed
//! ingress alone leaves a daemon kept up by minimum instances running (and billed). So
//! `stop_serving` does both in one write: `ingress` becomes `INGRESS_TRAFFIC_NONE` (no request
//! reaches any revision) and service-level `scaling` becomes manual with zero instances (which
//! overrides every revision's own minimum). Revisions, traffic and URLs stay as they were, so
//! evidence is kept. The previous ingress and scaling are recorded in the annotations
//! [`model::INGRESS_BEFORE_STOP`] and [`model::SCALING_BEFORE_STOP`]; `set_traffic` restores
//! both. The instance-count metric (`run.googleapis.com/container/instance_count`) confirms the
//! stop ([`ops_core::runbooks::EmergencyShutdown::confirm_stopped`]).
//!
//! **Scaling.** Instance counts are set on the service (`scaling`), which makes no new revision.
//! CPU and memory live in the revision template: changing them makes a new revision, which then
//! takes all traffic, so it is refused while traffic is split (finish the rollout first).

pub mod env;
mod health;
pub mod model;
pub mod prune;

use std::time::Duration;

use async_trait::async_trait;
use ops_core::contracts::{
    DeployAction, DeployRequest, Deployer, DeployerCapabilities, InitialTraffic, Release,
    ReleaseState, ScaleSpec, ServiceState, TrafficAllocation, TrafficSplit, Validation,
    validate_locally,
};
use ops_core::http::SendOptions;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

pub use health::CloudRunHealth;
use model::{
    INGRESS_BEFORE_STOP, INGRESS_NONE, Revision, RevisionPage, SCALING_BEFORE_STOP, Service,
    ServiceScaling, TrafficTarget, short_name,
};

use crate::client::{GcpClient, Operation, OperationPolling, collect_pages};

/// The most revisions [`Deployer::releases`] reads (Cloud Run keeps at most 1000).
const MAX_REVISIONS: usize = 1000;

/// One Cloud Run service.
///
/// ```no_run
/// # async fn f() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::contracts::{Deployer, DeployRequest};
/// use ops_gcp::{CloudRun, GcpClient, GcpConfig, auth};
///
/// let auth = Arc::new(auth::application_default().await?);
/// let client = GcpClient::new(GcpConfig::new("my-project", "europe-west1"), auth)?;
/// let run = CloudRun::new(client, "api")?;
/// let release = run.deploy(&DeployRequest::new("europe-docker.pkg.dev/p/r/api:1.4.0")).await?;
/// println!("{} is {:?}", release.id, release.state);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CloudRun {
    client: GcpClient,
    service: String,
    name: String,
    polling: OperationPolling,
    operation_deadline: Duration,
    env_change: Option<std::sync::Arc<env::EnvChange>>,
}

/// A write: the field mask and the body (with the etag it was planned against).
#[derive(Debug, Clone, PartialEq)]
struct Patch {
    mask: &'static str,
    body: Value,
    /// A new revision even when the template is unchanged (a redeploy of the same image).
    force_new_revision: bool,
}

impl CloudRun {
    /// The service `service` in the client's project and region.
    pub fn new(client: GcpClient, service: impl Into<String>) -> Result<Self> {
        let service = service.into();
        ops_core::contracts::validate_name("gcp", "cloud_run", "service", &service)?;
        let cfg = client.config();
        let name = format!(
            "projects/{}/locations/{}/services/{}",
            cfg.project, cfg.region, service
        );
        Ok(Self {
            client,
            service,
            name,
            polling: OperationPolling::default(),
            operation_deadline: Duration::from_secs(300),
            env_change: None,
        })
    }

    /// The same service, whose deploys also apply `change` to the container's environment: a
    /// configuration change as a verified deploy (deploy [`CloudRun::current_image`] to change
    /// only the settings). `InvalidInput` for an unsafe or malformed change (a secret as plain
    /// text, a reserved name).
    pub fn with_env_change(mut self, change: env::EnvChange) -> Result<Self> {
        change.validate()?;
        self.env_change = Some(std::sync::Arc::new(change));
        Ok(self)
    }

    /// The image the service's template runs now.
    pub async fn current_image(&self) -> Result<String> {
        let svc = self.service().await?;
        svc.template
            .pointer("/containers/0/image")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Error::invalid_input(
                    "gcp",
                    "current_image",
                    "template.containers",
                    "the service has no container",
                )
            })
    }

    /// How operations other than deploys (which carry their own deadline) are awaited.
    pub fn with_operations(mut self, polling: OperationPolling, deadline: Duration) -> Self {
        self.polling = polling;
        self.operation_deadline = deadline;
        self
    }

    /// The service's full resource name.
    pub fn resource_name(&self) -> &str {
        &self.name
    }

    /// A health probe reading this service's conditions.
    pub fn health_probe(&self) -> CloudRunHealth {
        CloudRunHealth::new(self.clone())
    }

    fn api_root(&self) -> Result<Url> {
        self.client.url(&self.client.config().endpoints.run, "v2/")
    }

    fn service_url(&self) -> Result<Url> {
        self.client.url(&self.api_root()?, &self.name)
    }

    /// The service as the API returns it.
    pub async fn service(&self) -> Result<Service> {
        self.client
            .get("get_service", self.service_url()?, &self.name)
            .await
    }

    /// One revision, by short name.
    pub async fn revision(&self, id: &str) -> Result<Revision> {
        let name = format!("{}/revisions/{}", self.name, id);
        let url = self.client.url(&self.api_root()?, &name)?;
        self.client.get("get_revision", url, &name).await
    }

    /// One page of revisions.
    pub async fn revisions_page(&self, page_token: Option<&str>) -> Result<RevisionPage> {
        let mut url = self
            .client
            .url(&self.api_root()?, &format!("{}/revisions", self.name))?;
        url.query_pairs_mut().append_pair("pageSize", "100");
        if let Some(t) = page_token {
            url.query_pairs_mut().append_pair("pageToken", t);
        }
        self.client.get("list_revisions", url, &self.name).await
    }

    async fn all_revisions(&self) -> Result<Vec<Revision>> {
        collect_pages(MAX_REVISIONS, |token| async move {
            let page = self.revisions_page(token.as_deref()).await?;
            Ok((page.revisions, page.next_page_token))
        })
        .await
    }

    /// Sends `patch` and, unless validating, awaits the operation and returns the service.
    async fn apply(
        &self,
        patch: Patch,
        validate_only: bool,
        deadline: Duration,
        operation: &'static str,
    ) -> Result<Option<Service>> {
        let mut url = self.service_url()?;
        url.query_pairs_mut().append_pair("updateMask", patch.mask);
        if patch.force_new_revision {
            url.query_pairs_mut()
                .append_pair("forceNewRevision", "true");
        }
        if validate_only {
            url.query_pairs_mut().append_pair("validateOnly", "true");
        }
        let options = SendOptions {
            resource: Some(self.name.clone()),
            ..SendOptions::default()
        };
        let op: Operation = self
            .client
            .call(operation, Method::PATCH, url, Some(&patch.body), &options)
            .await?;
        if validate_only {
            return Ok(None);
        }
        let response = self
            .client
            .await_operation(&self.api_root()?, op, deadline, self.polling, operation)
            .await?;
        let service = serde_json::from_value(response).map_err(|e| {
            Error::new(
                "gcp",
                operation,
                ErrorKind::Decode {
                    detail: format!("operation response is not a service: {e}"),
                },
            )
        })?;
        Ok(Some(service))
    }

    fn plan_deploy(&self, svc: &Service, request: &DeployRequest) -> Result<Patch> {
        let mut template = svc.template.clone();
        let container = template
            .get_mut("containers")
            .and_then(|c| c.get_mut(0))
            .ok_or_else(|| {
                Error::invalid_input(
                    "gcp",
                    "deploy",
                    "template.containers",
                    "the service has no container to update",
                )
            })?;
        container["image"] = json!(request.version);
        if let Some(change) = &self.env_change {
            container["env"] = change.apply(&container["env"]);
        }
        if let Some(obj) = template.as_object_mut() {
            // A fixed revision name would collide with the existing revision.
            obj.remove("revision");
            if !request.labels.is_empty() {
                let labels = obj.entry("labels").or_insert_with(|| json!({}));
                for (k, v) in &request.labels {
                    labels[k] = json!(v);
                }
            }
        }
        let traffic = match request.traffic {
            InitialTraffic::All => vec![TrafficTarget::to_latest(100)],
            InitialTraffic::None => pinned_traffic(svc),
        };
        Ok(Patch {
            mask: "template,traffic",
            body: json!({ "template": template, "traffic": traffic, "etag": svc.etag }),
            force_new_revision: true,
        })
    }

    fn plan_traffic(&self, svc: &Service, split: &TrafficSplit) -> Patch {
        let mut traffic: Vec<TrafficTarget> = split
            .allocations()
            .iter()
            .filter(|a| a.percent > 0)
            .map(|a| TrafficTarget::to_revision(&a.release, a.percent))
            .collect();
        // Tag-only targets (0 %, own URL) stay.
        traffic.extend(
            svc.traffic
                .iter()
                .filter(|t| t.tag.is_some() && t.percent == 0)
                .cloned(),
        );
        let stopped = svc.ingress.as_deref() == Some(INGRESS_NONE)
            || svc.scaling.as_ref().is_some_and(ServiceScaling::is_stopped);
        if stopped {
            let mut annotations = svc.annotations.clone();
            let ingress =
                model::ingress_to_restore(annotations.remove(INGRESS_BEFORE_STOP).as_deref())
                    .to_string();
            let scaling = ServiceScaling::to_restore(
                annotations.remove(SCALING_BEFORE_STOP).as_deref(),
                svc.scaling.as_ref(),
            );
            return Patch {
                mask: "traffic,ingress,annotations,scaling",
                body: json!({ "traffic": traffic, "ingress": ingress, "scaling": scaling,
                              "annotations": annotations, "etag": svc.etag }),
                force_new_revision: false,
            };
        }
        Patch {
            mask: "traffic",
            body: json!({ "traffic": traffic, "etag": svc.etag }),
            force_new_revision: false,
        }
    }

    fn plan_scale(&self, svc: &Service, spec: &ScaleSpec) -> Result<Patch> {
        spec.validate()?;
        let mut body = json!({ "etag": svc.etag });
        let mut mask = Vec::new();
        if spec.min_instances.is_some() || spec.max_instances.is_some() {
            let mut scaling = svc.scaling.clone().unwrap_or_default();
            if let Some(min) = spec.min_instances {
                scaling.min_instance_count = Some(min);
            }
            if let Some(max) = spec.max_instances {
                scaling.max_instance_count = Some(max);
            }
            body["scaling"] = json!(scaling);
            mask.push("scaling");
        }
        if spec.cpu.is_some() || spec.memory.is_some() {
            let single = matches!(traffic_in_force(svc).as_slice(), [one] if one.percent == 100);
            if !single {
                return Err(Error::invalid_input(
                    "gcp",
                    "scale",
                    "cpu",
                    "changing CPU or memory makes a new revision; traffic is split, so finish \
                     the rollout first",
                ));
            }
            let mut template = svc.template.clone();
            if let Some(obj) = template.as_object_mut() {
                obj.remove("revision");
            }
            let limits = template
                .get_mut("containers")
                .and_then(|c| c.get_mut(0))
                .map(|c| &mut c["resources"]["limits"])
                .ok_or_else(|| {
                    Error::invalid_input(
                        "gcp",
                        "scale",
                        "template.containers",
                        "the service has no container",
                    )
                })?;
            if let Some(cpu) = &spec.cpu {
                limits["cpu"] = json!(cpu);
            }
            if let Some(memory) = &spec.memory {
                limits["memory"] = json!(memory);
            }
            body["template"] = template;
            body["traffic"] = json!([TrafficTarget::to_latest(100)]);
            mask.extend(["template", "traffic"]);
        }
        let mask = match mask.as_slice() {
            ["scaling"] => "scaling",
            ["template", "traffic"] => "template,traffic",
            _ => "scaling,template,traffic",
        };
        Ok(Patch {
            mask,
            body,
            force_new_revision: false,
        })
    }

    /// Closes ingress and pins the instances to zero, recording what each was, unless it is
    /// already so (a repeated stop must not record "stopped" as the state to go back to).
    fn plan_stop(&self, svc: &Service) -> Option<Patch> {
        let scaling = svc.scaling.clone().unwrap_or_default();
        let closed = svc.ingress.as_deref() == Some(INGRESS_NONE);
        if closed && scaling.is_stopped() {
            return None;
        }
        let mut annotations = svc.annotations.clone();
        if !closed {
            let before = model::ingress_to_restore(svc.ingress.as_deref()).to_string();
            annotations.insert(INGRESS_BEFORE_STOP.into(), before);
        }
        if !scaling.is_stopped() {
            let before = serde_json::to_string(&scaling).unwrap_or_default();
            annotations.insert(SCALING_BEFORE_STOP.into(), before);
        }
        Some(Patch {
            mask: "ingress,annotations,scaling",
            body: json!({ "ingress": INGRESS_NONE, "scaling": scaling.stopped(),
                          "annotations": annotations, "etag": svc.etag }),
            force_new_revision: false,
        })
    }

    /// Sends all traffic to whatever revision is newest and ready, now and after later
    /// deploys (`gcloud run services update-traffic --to-latest`). Reopens a stopped service.
    pub async fn route_all_to_latest(&self) -> Result<ServiceState> {
        let svc = self.service().await?;
        // Planned as 100 % to a placeholder, then that target follows LATEST; tags stay.
        let mut patch = self.plan_traffic(&svc, &TrafficSplit::all_to("latest")?);
        patch.body["traffic"][0] = json!(TrafficTarget::to_latest(100));
        let svc = self
            .apply(patch, false, self.operation_deadline, "route_all_to_latest")
            .await?
            .unwrap_or_default();
        Ok(state_of(&self.service, &svc))
    }

    async fn checked_traffic_plan(&self, split: &TrafficSplit) -> Result<(Service, Patch)> {
        let releases = self.releases().await?;
        split.check_known(&releases)?;
        let svc = self.service().await?;
        let patch = self.plan_traffic(&svc, split);
        Ok((svc, patch))
    }
}

#[async_trait]
impl Deployer for CloudRun {
    fn target(&self) -> &str {
        &self.service
    }

    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities {
            traffic_split: true,
            scale: true,
            stop_serving: true,
            deploy_without_traffic: true,
        }
    }

    async fn current(&self) -> Result<ServiceState> {
        Ok(state_of(&self.service, &self.service().await?))
    }

    async fn releases(&self) -> Result<Vec<Release>> {
        let mut releases: Vec<Release> =
            self.all_revisions().await?.iter().map(release_of).collect();
        releases.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(releases)
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<Release> {
        request.validate()?;
        let svc = self.service().await?;
        let patch = self.plan_deploy(&svc, request)?;
        let updated = self
            .apply(patch, false, request.deadline, "deploy")
            .await?
            .unwrap_or_default();
        let created = updated.latest_created_revision.as_deref().ok_or_else(|| {
            Error::new(
                "gcp",
                "deploy",
                ErrorKind::Decode {
                    detail: "the finished operation names no new revision".into(),
                },
            )
        })?;
        let release = release_of(&self.revision(short_name(created)).await?);
        tracing::info!(service = %self.service, revision = %release.id, version = %release.version, "deployed");
        Ok(release)
    }

    async fn set_traffic(&self, split: &TrafficSplit) -> Result<ServiceState> {
        let (_, patch) = self.checked_traffic_plan(split).await?;
        let svc = self
            .apply(patch, false, self.operation_deadline, "set_traffic")
            .await?
            .unwrap_or_default();
        Ok(state_of(&self.service, &svc))
    }

    async fn scale(&self, spec: &ScaleSpec) -> Result<ServiceState> {
        spec.validate()?;
        let svc = self.service().await?;
        let patch = self.plan_scale(&svc, spec)?;
        let svc = self
            .apply(patch, false, self.operation_deadline, "scale")
            .await?
            .unwrap_or_default();
        Ok(state_of(&self.service, &svc))
    }

    async fn stop_serving(&self) -> Result<ServiceState> {
        let svc = self.service().await?;
        let Some(patch) = self.plan_stop(&svc) else {
            return Ok(state_of(&self.service, &svc));
        };
        let svc = self
            .apply(patch, false, self.operation_deadline, "stop_serving")
            .await?
            .unwrap_or_default();
        tracing::warn!(service = %self.service, "stopped: ingress INGRESS_TRAFFIC_NONE, manual scaling at 0 instances");
        Ok(state_of(&self.service, &svc))
    }

    async fn validate(&self, action: &DeployAction) -> Result<Validation> {
        validate_locally(action)?;
        let patch = match action {
            DeployAction::Deploy(request) => self.plan_deploy(&self.service().await?, request)?,
            DeployAction::SetTraffic(split) => self.checked_traffic_plan(split).await?.1,
            DeployAction::Scale(spec) => self.plan_scale(&self.service().await?, spec)?,
            DeployAction::StopServing => match self.plan_stop(&self.service().await?) {
                Some(patch) => patch,
                None => return Ok(Validation::ValidatedByProvider),
            },
        };
        self.apply(patch, true, self.operation_deadline, "validate")
            .await?;
        Ok(Validation::ValidatedByProvider)
    }
}

/// The traffic in force: statuses when the API reports them, else the desired traffic.
fn traffic_in_force(svc: &Service) -> Vec<TrafficAllocation> {
    let source = if svc.traffic_statuses.is_empty() {
        &svc.traffic
    } else {
        &svc.traffic_statuses
    };
    let latest = svc.latest_ready_revision.as_deref().map(short_name);
    let mut out: Vec<TrafficAllocation> = Vec::new();
    for t in source.iter().filter(|t| t.percent > 0) {
        let release = match (t.revision.as_deref(), t.is_latest()) {
            (Some(r), _) if !r.is_empty() => short_name(r),
            (_, true) => match latest {
                Some(l) => l,
                None => continue,
            },
            _ => continue,
        };
        match out.iter_mut().find(|a| a.release == release) {
            Some(a) => a.percent = a.percent.saturating_add(t.percent),
            None => out.push(TrafficAllocation {
                release: release.to_string(),
                percent: t.percent,
            }),
        }
    }
    out
}

/// The current split pinned to named revisions, so a new revision starts with no traffic.
fn pinned_traffic(svc: &Service) -> Vec<TrafficTarget> {
    let mut pinned: Vec<TrafficTarget> = traffic_in_force(svc)
        .iter()
        .map(|a| TrafficTarget::to_revision(&a.release, a.percent))
        .collect();
    if pinned.is_empty() {
        // Nothing serves yet: there is no traffic to protect.
        return vec![TrafficTarget::to_latest(100)];
    }
    pinned.extend(
        svc.traffic
            .iter()
            .filter(|t| t.tag.is_some() && t.percent == 0)
            .cloned(),
    );
    pinned
}

fn state_of(target: &str, svc: &Service) -> ServiceState {
    let stopped = svc.ingress.as_deref() == Some(INGRESS_NONE)
        || svc.scaling.as_ref().is_some_and(ServiceScaling::is_stopped);
    let traffic = if stopped {
        Vec::new()
    } else {
        traffic_in_force(svc)
    };
    let container = svc.template.get("containers").and_then(|c| c.get(0));
    let limit = |key: &str| {
        container
            .and_then(|c| c.pointer(&format!("/resources/limits/{key}")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let template_scaling = |key: &str| {
        svc.template
            .pointer(&format!("/scaling/{key}"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let scaling = svc.scaling.clone().unwrap_or_default();
    ServiceState {
        target: target.to_string(),
        serving: !stopped && !traffic.is_empty(),
        traffic,
        latest_ready: svc
            .latest_ready_revision
            .as_deref()
            .map(|r| short_name(r).to_string()),
        url: svc.uri.clone(),
        scale: Some(ScaleSpec {
            min_instances: scaling
                .min_instance_count
                .or_else(|| template_scaling("minInstanceCount")),
            max_instances: scaling
                .max_instance_count
                .or_else(|| template_scaling("maxInstanceCount")),
            cpu: limit("cpu"),
            memory: limit("memory"),
        }),
        etag: svc.etag.clone(),
    }
}

fn release_of(rev: &Revision) -> Release {
    let ready = rev.conditions.iter().find(|c| c.kind == "Ready");
    let state = match ready {
        Some(c) if c.succeeded() => ReleaseState::Ready,
        Some(c) if c.failed() => ReleaseState::Failed,
        _ => ReleaseState::Pending,
    };
    Release {
        id: short_name(&rev.name).to_string(),
        version: rev
            .containers
            .first()
            .map(|c| c.image.clone())
            .unwrap_or_default(),
        state,
        created_at: rev.create_time,
        url: None,
        labels: rev.labels.clone(),
    }
}
