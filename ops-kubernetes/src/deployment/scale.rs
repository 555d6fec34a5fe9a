//! `kubectl scale` and `kubectl autoscale`'s bounds, and container resources: what
//! [`Deployer::scale`](ops_core::contracts::Deployer::scale) does on a Deployment.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use ops_core::contracts::{Deployer, ScaleSpec, ServiceState};
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;

use super::{KubeDeployment, no_containers, spec_mut};
use crate::client::PROVIDER;

impl KubeDeployment {
    /// Replicas, the autoscaler's range, CPU and memory; then the rollout followed.
    pub(super) async fn scale_to(&self, spec: &ScaleSpec) -> Result<ServiceState> {
        spec.validate()?;
        let fixed = match (spec.min_instances, spec.max_instances) {
            (Some(a), Some(b)) if a == b => Some(a),
            (Some(a), None) | (None, Some(a)) => Some(a),
            (None, None) => None,
            (Some(_), Some(_)) => None,
        };
        let range =
            matches!((spec.min_instances, spec.max_instances), (Some(a), Some(b)) if a != b);
        if range || (fixed.is_some() && self.hpa().await?.is_some()) {
            let Some(mut hpa) = self.hpa().await? else {
                return Err(Error::invalid_input(
                    PROVIDER,
                    "scale",
                    "min_instances",
                    format!(
                        "{} has no HorizontalPodAutoscaler: a range needs one; give min_instances = max_instances for a fixed count",
                        self.target
                    ),
                ));
            };
            let s = hpa.spec.get_or_insert_with(Default::default);
            let to_i32 = |n: u32| {
                i32::try_from(n).map_err(|_| {
                    Error::invalid_input(PROVIDER, "scale", "max_instances", "too large")
                })
            };
            if let Some(min) = spec.min_instances {
                s.min_replicas = Some(to_i32(min.max(1))?);
            }
            if let Some(max) = spec.max_instances {
                s.max_replicas = to_i32(max)?;
            }
            self.put_hpa(&hpa).await?;
        } else if let Some(n) = fixed {
            self.write_replicas("max_instances", n).await?;
        }
        if spec.cpu.is_some() || spec.memory.is_some() {
            let (cpu, memory) = (spec.cpu.clone(), spec.memory.clone());
            let container = self.container.clone();
            self.update("scale", false, |d| {
                let pod = spec_mut(d)?
                    .template
                    .spec
                    .as_mut()
                    .ok_or_else(|| no_containers(&self.target))?;
                let c = match &container {
                    Some(n) => pod.containers.iter_mut().find(|c| &c.name == n),
                    None => pod.containers.first_mut(),
                }
                .ok_or_else(|| no_containers(&self.target))?;
                let r = c
                    .resources
                    .get_or_insert_with(ResourceRequirements::default);
                let requests = r.requests.get_or_insert_with(Default::default);
                if let Some(cpu) = &cpu {
                    requests.insert("cpu".into(), Quantity(cpu.clone()));
                }
                if let Some(m) = &memory {
                    requests.insert("memory".into(), Quantity(m.clone()));
                    // Memory is not compressible: the limit follows the request.
                    r.limits
                        .get_or_insert_with(Default::default)
                        .insert("memory".into(), Quantity(m.clone()));
                }
                Ok(())
            })
            .await?;
        }
        self.wait_for_rollout(self.rollout_deadline).await?;
        self.current().await
    }

    pub(super) async fn hpa(&self) -> Result<Option<HorizontalPodAutoscaler>> {
        let path = format!(
            "apis/autoscaling/v2/namespaces/{}/horizontalpodautoscalers/{}",
            self.client.namespace(),
            self.name
        );
        let url = self.client.url(&path, &[])?;
        match self.client.get("get_hpa", url, &self.target).await {
            Ok(h) => Ok(Some(h)),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_hpa(&self, hpa: &HorizontalPodAutoscaler) -> Result<()> {
        let path = format!(
            "apis/autoscaling/v2/namespaces/{}/horizontalpodautoscalers/{}",
            self.client.namespace(),
            self.name
        );
        let url = self.client.url(&path, &[])?;
        self.client
            .write::<_, HorizontalPodAutoscaler>("update_hpa", Method::PUT, url, hpa, None)
            .await
            .map(|_| ())
    }
}
