//! A Deployment's CPU and memory utilisation from metrics-server (`metrics.k8s.io/v1beta1`
//! PodMetrics, what `kubectl top pods` shows), as a [`MetricsSource`], so the right-size runbook
//! scales Kubernetes up on CPU pressure or memory near its limit.
//!
//! CPU utilisation is the pods' usage over their containers' CPU requests; memory utilisation
//! is usage over the memory limits (the requests where there is no limit). metrics-server
//! keeps no history: a reading is the current usage (averaged over metrics-server's own short
//! window), whatever the query's window, and its samples are the pods measured. A cluster
//! without metrics-server answers 404, which reads as `Unsupported`; other metrics are
//! `Unsupported` too.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use ops_core::contracts::{Metric, MetricQuery, MetricReading, MetricsSource};
use ops_core::quantity::{bytes_of, cores_of};
use ops_core::{Error, ErrorKind, Result};
use serde::Deserialize;

use crate::deployment::KubeDeployment;

/// Utilisation of one Deployment's pods.
#[derive(Debug, Clone)]
pub struct KubeMetrics {
    deployment: KubeDeployment,
    name: String,
}

#[derive(Deserialize)]
struct PodMetrics {
    #[serde(default)]
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    #[serde(default)]
    containers: Vec<ContainerMetrics>,
}

#[derive(Deserialize)]
struct ContainerMetrics {
    #[serde(default)]
    name: String,
    #[serde(default)]
    usage: BTreeMap<String, String>,
}

/// Usage and capacity summed over the pods measured.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Totals {
    cpu_used: f64,
    cpu_requested: f64,
    memory_used: f64,
    memory_limit: f64,
    pods: u64,
}

impl KubeMetrics {
    /// Utilisation of `deployment`'s pods.
    pub fn new(deployment: KubeDeployment) -> Self {
        Self {
            name: format!("kubernetes-metrics:{}", deployment.name()),
            deployment,
        }
    }

    async fn totals(&self, release: Option<&str>) -> Result<Totals> {
        let d = self.deployment.get().await?;
        let mut pods: Vec<Pod> = Vec::new();
        for rs in self.deployment.replica_sets(&d).await? {
            if release.is_some() && rs.metadata.name.as_deref() != release {
                continue;
            }
            pods.extend(self.deployment.pods_of(&rs).await?);
        }
        let client = self.deployment.client();
        let path = format!(
            "apis/metrics.k8s.io/v1beta1/namespaces/{}/pods",
            client.namespace()
        );
        let metrics: Vec<PodMetrics> = match client.list("list_pod_metrics", &path, None).await {
            Ok(m) => m,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => {
                return Err(Error::unsupported(
                    self.name.clone(),
                    "read",
                    "CPU and memory use: metrics-server is not installed (metrics.k8s.io answers 404)",
                ));
            }
            Err(e) => return Err(e),
        };
        let by_pod: BTreeMap<String, &PodMetrics> = metrics
            .iter()
            .filter_map(|m| Some((m.metadata.name.clone()?, m)))
            .collect();
        let mut t = Totals::default();
        for pod in &pods {
            let Some(name) = &pod.metadata.name else {
                continue;
            };
            let Some(m) = by_pod.get(name) else { continue };
            t.pods = t.pods.saturating_add(1);
            for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
                let usage = m.containers.iter().find(|u| u.name == c.name);
                let used = |k: &str| usage.and_then(|u| u.usage.get(k)).map(String::as_str);
                let r = c.resources.clone().unwrap_or_default();
                let of = |map: &Option<
                    BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
                >,
                          k: &str| {
                    map.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone())
                };
                t.cpu_used += used("cpu").and_then(cores_of).unwrap_or(0.0);
                t.cpu_requested += of(&r.requests, "cpu")
                    .as_deref()
                    .and_then(cores_of)
                    .unwrap_or(0.0);
                t.memory_used += used("memory").and_then(bytes_of).unwrap_or(0) as f64;
                t.memory_limit += of(&r.limits, "memory")
                    .or_else(|| of(&r.requests, "memory"))
                    .as_deref()
                    .and_then(bytes_of)
                    .unwrap_or(0) as f64;
            }
        }
        Ok(t)
    }
}

#[async_trait]
impl MetricsSource for KubeMetrics {
    fn name(&self) -> &str {
        &self.name
    }

    async fn read(&self, query: &MetricQuery) -> Result<MetricReading> {
        query.validate()?;
        let pick: fn(&Totals) -> (f64, f64) = match query.metric {
            Metric::CpuUtilisation => |t| (t.cpu_used, t.cpu_requested),
            Metric::MemoryUtilisation => |t| (t.memory_used, t.memory_limit),
            ref other => {
                return Err(Error::unsupported(
                    self.name.clone(),
                    "read",
                    format!("{other:?} from metrics-server"),
                ));
            }
        };
        let t = self.totals(query.release.as_deref()).await?;
        let (used, capacity) = pick(&t);
        let wanted = query.min_samples.max(1);
        if t.pods < wanted || capacity <= 0.0 {
            return Ok(MetricReading::InsufficientData {
                samples: t.pods,
                detail: if capacity <= 0.0 && t.pods > 0 {
                    "the containers set no request or limit to measure against".into()
                } else {
                    format!(
                        "{} pods measured, fewer than the {wanted} asked for",
                        t.pods
                    )
                },
            });
        }
        Ok(MetricReading::Value {
            value: used / capacity,
            samples: t.pods,
        })
    }
}
