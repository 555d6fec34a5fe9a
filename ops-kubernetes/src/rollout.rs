//! Reading a rollout the way `kubectl rollout status` reads it, and the reasons new pods give
//! when it stalls. Pure functions over the API's objects, so every case is testable without a
//! cluster.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// The controller has not yet seen the latest spec (`observedGeneration` behind).
    NotObserved,
    /// Still rolling; the text is kubectl's.
    Progressing(String),
    /// Every replica updated and available, no old ones left.
    Complete,
    /// The `Progressing` condition says `ProgressDeadlineExceeded`.
    DeadlineExceeded(String),
}

/// `kubectl rollout status` for `d` (its `DeploymentStatusViewer`).
pub fn rollout_of(d: &Deployment) -> Rollout {
    let name = d.metadata.name.as_deref().unwrap_or("");
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    if generation > status.observed_generation.unwrap_or(0) {
        return Rollout::NotObserved;
    }
    let progressing = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing");
    if let Some(c) = progressing
        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return Rollout::DeadlineExceeded(format!(
            "deployment {name:?} exceeded its progress deadline{}",
            c.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(want) = d.spec.as_ref().and_then(|s| s.replicas)
        && updated < want
    {
        return Rollout::Progressing(format!(
            "{updated} out of {want} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return Rollout::Progressing(format!(
            "{} old replicas are pending termination",
            replicas.saturating_sub(updated)
        ));
    }
    if available < updated {
        return Rollout::Progressing(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Rollout::Complete
}

/// Why a pod is not serving, from its container statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// `CrashLoopBackOff`, `ImagePullBackOff`, `ErrImagePull`, `OOMKilled`, …
    pub reason: String,
    /// The kubelet's message, if any.
    pub message: Option<String>,
    /// Restarts so far.
    pub restarts: i32,
    /// The last termination was an OOM kill.
    pub oom_killed: bool,
}

impl PodProblem {
    /// Whether the pod cannot recover without a change (a new image, more memory, a fixed
    /// config): waiting longer only spends the deadline.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.reason.as_str(),
            "CrashLoopBackOff"
                | "ImagePullBackOff"
                | "ErrImagePull"
                | "InvalidImageName"
                | "CreateContainerConfigError"
                | "CreateContainerError"
                | "RunContainerError"
        )
    }
}

impl std::fmt::Display for PodProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}: {}", self.pod, self.container, self.reason)?;
        if self.oom_killed && self.reason != "OOMKilled" {
            f.write_str(" (last exit: OOMKilled)")?;
        }
        if self.restarts > 0 {
            write!(f, ", {} restarts", self.restarts)?;
        }
        if let Some(m) = &self.message {
            write!(f, ": {}", ops_core::redact::redact_text(m))?;
        }
        Ok(())
    }
}

/// The problems of `pod`'s containers (init containers included): waiting with a reason other
/// than `ContainerCreating`/`PodInitializing`, or restarted after an OOM kill.
pub fn problems_of(pod: &Pod) -> Vec<PodProblem> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for c in all {
        let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
        let oom_killed = c
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
            || c.state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"));
        let reason = match waiting.and_then(|w| w.reason.clone()) {
            Some(r) if r != "ContainerCreating" && r != "PodInitializing" => Some(r),
            _ if oom_killed => Some("OOMKilled".to_string()),
            _ => None,
        };
        if let Some(reason) = reason {
            out.push(PodProblem {
                pod: name.clone(),
                container: c.name.clone(),
                reason,
                message: waiting.and_then(|w| w.message.clone()),
                restarts: c.restart_count,
                oom_killed,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rollout_status_reads_as_kubectl_reads_it() {
        let d = |generation: i64,
                 observed: i64,
                 want: i32,
                 replicas: i32,
                 updated: i32,
                 available: i32| {
            deployment(json!({
                "metadata": {"name": "web", "generation": generation},
                "spec": {"replicas": want, "selector": {}, "template": {}},
                "status": {"observedGeneration": observed, "replicas": replicas,
                           "updatedReplicas": updated, "availableReplicas": available}
            }))
        };
        assert_eq!(rollout_of(&d(3, 2, 3, 3, 3, 3)), Rollout::NotObserved);
        assert!(
            matches!(rollout_of(&d(3, 3, 3, 4, 2, 2)), Rollout::Progressing(m) if m.contains("2 out of 3 new"))
        );
        assert!(
            matches!(rollout_of(&d(3, 3, 3, 4, 3, 3)), Rollout::Progressing(m) if m.contains("1 old replicas"))
        );
        assert!(
            matches!(rollout_of(&d(3, 3, 3, 3, 3, 2)), Rollout::Progressing(m) if m.contains("2 of 3 updated"))
        );
        assert_eq!(rollout_of(&d(3, 3, 3, 3, 3, 3)), Rollout::Complete);
        let stalled = deployment(json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2,
                       "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                       "message": "ReplicaSet \"web-7d4b9c\" has timed out progressing."}]}
        }));
        assert!(
            matches!(rollout_of(&stalled), Rollout::DeadlineExceeded(m) if m.contains("web-7d4b9c"))
        );
        // A Deployment with no status at all (just created) is not observed yet.
        assert_eq!(
            rollout_of(&deployment(
                json!({"metadata": {"name": "w", "generation": 1}})
            )),
            Rollout::NotObserved
        );
    }

    #[test]
    fn pods_name_their_back_off_and_oom_kills() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-7d4b9c-x2k"},
            "status": {"containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 4, "image": "web:2", "imageID": "",
                 "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
                 "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}},
                {"name": "sidecar", "ready": true, "restartCount": 0, "image": "envoy", "imageID": "",
                 "state": {"running": {}}}
            ]}
        }))
        .unwrap();
        let p = problems_of(&pod);
        assert_eq!(p.len(), 1);
        assert!(p[0].is_fatal() && p[0].oom_killed);
        let text = p[0].to_string();
        assert!(
            text.contains("CrashLoopBackOff")
                && text.contains("OOMKilled")
                && text.contains("4 restarts"),
            "{text}"
        );
        let creating: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        }))
        .unwrap();
        assert!(problems_of(&creating).is_empty());
    }
}
