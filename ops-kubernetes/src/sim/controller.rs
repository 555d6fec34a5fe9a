//! The simulated controllers: a Deployment's template change makes (or brings back) a
//! ReplicaSet with the next revision, ReplicaSets get pods, pods become ready after a while or
//! fail the way their image says (`crash-loop`, `oom`, `image-pull`), and the Deployment's
//! status and conditions follow, as the deployment controller writes them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use super::{Fate, SimPod, State};
use crate::deployment::{POD_TEMPLATE_HASH, REVISION};

/// The memory limit an image named `…oom…` needs to stop being OOM-killed.
pub(super) const OOM_NEEDS: u64 = 512 << 20;

/// chrono's time as the API's.
pub(super) fn k8s_time(t: DateTime<Utc>) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    let ts = k8s_openapi::jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts)
}

/// A pod-template hash in the controller's alphabet (no vowels, no look-alikes).
pub(super) fn template_hash(template: &serde_json::Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in template.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn revision(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION)?.parse().ok())
        .unwrap_or(0)
}

impl State {
    /// Brings every Deployment, ReplicaSet and pod up to date with the clock.
    pub(super) fn reconcile(&mut self) {
        let now = self.clock.now();
        let names: Vec<String> = self.deployments.keys().cloned().collect();
        for name in names {
            self.observe_template(&name, now);
            self.scale_sets(&name);
        }
        self.sync_pods(now);
        for name in self.deployments.keys().cloned().collect::<Vec<_>>() {
            self.write_status(&name, now);
        }
        self.account_requests();
    }

    fn owned_sets(&self, d: &Deployment) -> Vec<usize> {
        let uid = d.metadata.uid.clone().unwrap_or_default();
        (0..self.replica_sets.len())
            .filter(|i| {
                self.replica_sets[*i]
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid)
            })
            .collect()
    }

    /// A new template makes a new ReplicaSet, or brings back the one that ran it, with the next
    /// revision; the Deployment's revision annotation follows.
    fn observe_template(&mut self, name: &str, now: DateTime<Utc>) {
        let Some(d) = self.deployments.get(name).cloned() else {
            return;
        };
        let spec = d.spec.clone().unwrap_or_default();
        let generation = d.metadata.generation.unwrap_or(1);
        let observed = d
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or(0);
        if observed >= generation || spec.paused == Some(true) {
            return;
        }
        let template = serde_json::to_value(&spec.template).unwrap_or_default();
        let hash = template_hash(&template);
        let owned = self.owned_sets(&d);
        let max_rev = owned
            .iter()
            .map(|i| revision(&self.replica_sets[*i].metadata))
            .max()
            .unwrap_or(0);
        let existing = owned.iter().copied().find(|i| {
            self.replica_sets[*i]
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POD_TEMPLATE_HASH))
                == Some(&hash)
        });
        let current_rev = revision(&d.metadata);
        let rev = match existing {
            Some(i)
                if revision(&self.replica_sets[i].metadata) == current_rev && current_rev > 0 =>
            {
                current_rev
            }
            Some(i) => {
                let next = max_rev + 1;
                self.replica_sets[i]
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(REVISION.into(), next.to_string());
                next
            }
            None => {
                let next = max_rev + 1;
                let rs = self.new_set(&d, &hash, next, now);
                self.replica_sets.push(rs);
                next
            }
        };
        let rv = self.next_rv();
        if let Some(d) = self.deployments.get_mut(name) {
            d.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(REVISION.into(), rev.to_string());
            d.metadata.resource_version = Some(rv);
            let status = d.status.get_or_insert_with(DeploymentStatus::default);
            status.observed_generation = Some(generation);
        }
        self.progress_since.insert(name.to_string(), now);
    }

    fn new_set(&self, d: &Deployment, hash: &str, rev: i64, now: DateTime<Utc>) -> ReplicaSet {
        let name = d.metadata.name.clone().unwrap_or_default();
        let spec = d.spec.clone().unwrap_or_default();
        let mut template = spec.template.clone();
        let labels = template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new);
        labels.insert(POD_TEMPLATE_HASH.into(), hash.to_string());
        let labels = labels.clone();
        let mut selector = spec.selector.match_labels.clone().unwrap_or_default();
        selector.insert(POD_TEMPLATE_HASH.into(), hash.to_string());
        let mut annotations = BTreeMap::new();
        annotations.insert(REVISION.to_string(), rev.to_string());
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{name}-{hash}")),
                namespace: d.metadata.namespace.clone(),
                uid: Some(format!("rs-{:016x}", fastrand::u64(..))),
                labels: Some(labels),
                annotations: Some(annotations),
                creation_timestamp: Some(k8s_time(now)),
                resource_version: Some(self.rv.to_string()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    name,
                    uid: d.metadata.uid.clone().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                selector: LabelSelector {
                    match_labels: Some(selector),
                    match_expressions: None,
                },
                template: Some(template),
                min_ready_seconds: None,
            }),
            status: Some(ReplicaSetStatus::default()),
        }
    }

    /// The current ReplicaSet gets the desired replicas; old ones keep theirs until it is all
    /// ready, then go to zero (a rolling update with the surge of a whole set).
    fn scale_sets(&mut self, name: &str) {
        let Some(d) = self.deployments.get(name).cloned() else {
            return;
        };
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0);
        let rev = revision(&d.metadata);
        let owned = self.owned_sets(&d);
        let current = owned
            .iter()
            .copied()
            .find(|i| revision(&self.replica_sets[*i].metadata) == rev);
        let Some(current) = current else {
            return;
        };
        let current_ready = self.ready_pods(current);
        for i in owned {
            let replicas = if i == current {
                want
            } else if current_ready >= want as usize {
                0
            } else {
                self.replica_sets[i]
                    .spec
                    .as_ref()
                    .and_then(|s| s.replicas)
                    .unwrap_or(0)
            };
            if let Some(spec) = self.replica_sets[i].spec.as_mut() {
                spec.replicas = Some(replicas);
            }
        }
    }

    fn ready_pods(&self, set: usize) -> usize {
        let name = self.replica_sets[set]
            .metadata
            .name
            .clone()
            .unwrap_or_default();
        self.pods
            .iter()
            .filter(|p| p.set == name && p.ready(self.clock.now(), self.pod_ready_after))
            .count()
    }

    /// Pods to match each ReplicaSet's replicas: new ones take their image's fate, surplus ones
    /// (the newest first) go.
    fn sync_pods(&mut self, now: DateTime<Utc>) {
        for i in 0..self.replica_sets.len() {
            let rs = &self.replica_sets[i];
            let set = rs.metadata.name.clone().unwrap_or_default();
            let want = rs
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(0)
                .max(0) as usize;
            let template = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.clone())
                .unwrap_or_default();
            let have = self.pods.iter().filter(|p| p.set == set).count();
            if have < want {
                let image = template
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default();
                let memory = template
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .and_then(|c| {
                        c.resources
                            .as_ref()?
                            .limits
                            .as_ref()?
                            .get("memory")
                            .cloned()
                    })
                    .and_then(|q| ops_core::quantity::bytes_of(&q.0));
                let fate = match self.fate_of(&image) {
                    // A leak that a bigger limit holds: `…oom…` images need 512Mi.
                    Fate::OomKilled if memory.is_some_and(|m| m >= OOM_NEEDS) => Fate::Healthy,
                    fate => fate,
                };
                for _ in have..want {
                    let suffix: String = (0..5).map(|_| fastrand::lowercase()).collect();
                    self.pods.push(SimPod {
                        name: format!("{set}-{suffix}"),
                        set: set.clone(),
                        labels: template
                            .metadata
                            .as_ref()
                            .and_then(|m| m.labels.clone())
                            .unwrap_or_default(),
                        containers: template
                            .spec
                            .as_ref()
                            .map(|s| {
                                s.containers
                                    .iter()
                                    .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        spec: serde_json::to_value(&template.spec).unwrap_or_default(),
                        created: now,
                        fate,
                    });
                }
            } else if have > want {
                let mut surplus = have - want;
                let mut order: Vec<usize> = (0..self.pods.len())
                    .filter(|j| self.pods[*j].set == set)
                    .collect();
                order.sort_by_key(|j| std::cmp::Reverse(self.pods[*j].created));
                let drop: Vec<String> = order
                    .into_iter()
                    .take_while(|_| {
                        let go = surplus > 0;
                        surplus = surplus.saturating_sub(1);
                        go
                    })
                    .map(|j| self.pods[j].name.clone())
                    .collect();
                self.pods.retain(|p| !drop.contains(&p.name));
            }
        }
    }

    pub(super) fn fate_of(&self, image: &str) -> Fate {
        if let Some((_, fate)) = self
            .image_faults
            .iter()
            .find(|(s, _)| image.contains(s.as_str()))
        {
            return *fate;
        }
        if image.contains("crash-loop") {
            Fate::CrashLoop
        } else if image.contains("oom") {
            Fate::OomKilled
        } else if image.contains("image-pull") {
            Fate::ImagePull
        } else {
            Fate::Healthy
        }
    }

    /// The deployment controller's status: counts, `Available` and `Progressing`.
    fn write_status(&mut self, name: &str, now: DateTime<Utc>) {
        let Some(d) = self.deployments.get(name).cloned() else {
            return;
        };
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0);
        let deadline = d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(600)
            .max(1);
        let rev = revision(&d.metadata);
        let owned = self.owned_sets(&d);
        let (mut replicas, mut updated, mut ready) = (0i32, 0i32, 0i32);
        let mut current_name = String::new();
        for i in &owned {
            let set = self.replica_sets[*i]
                .metadata
                .name
                .clone()
                .unwrap_or_default();
            let pods: Vec<&SimPod> = self.pods.iter().filter(|p| p.set == set).collect();
            let n = pods.len() as i32;
            let r = pods
                .iter()
                .filter(|p| p.ready(now, self.pod_ready_after))
                .count() as i32;
            replicas += n;
            ready += r;
            if revision(&self.replica_sets[*i].metadata) == rev {
                updated = n;
                current_name = set.clone();
            }
            if let Some(status) = self.replica_sets[*i].status.as_mut() {
                status.replicas = n;
                status.ready_replicas = Some(r);
                status.available_replicas = Some(r);
                status.fully_labeled_replicas = Some(n);
                status.observed_generation = Some(1);
            }
        }
        let complete = updated == want && replicas == updated && ready >= updated;
        let since = self.progress_since.get(name).copied().unwrap_or(now);
        let stalled = !complete && (now - since).num_seconds() > i64::from(deadline);
        let condition =
            |type_: &str, status: &str, reason: &str, message: String| DeploymentCondition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message),
                last_update_time: Some(k8s_time(now)),
                last_transition_time: Some(k8s_time(since)),
            };
        let progressing = if complete {
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{current_name}\" has successfully progressed."),
            )
        } else if stalled {
            condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{current_name}\" has timed out progressing."),
            )
        } else {
            condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{current_name}\" is progressing."),
            )
        };
        let available = if ready >= want {
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            )
        } else {
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            )
        };
        let rv = self.next_rv();
        if let Some(d) = self.deployments.get_mut(name) {
            let before = d.status.clone();
            let status = d.status.get_or_insert_with(DeploymentStatus::default);
            status.replicas = Some(replicas);
            status.updated_replicas = Some(updated);
            status.ready_replicas = Some(ready);
            status.available_replicas = Some(ready);
            status.unavailable_replicas = Some((replicas - ready).max(0));
            let mut conditions = vec![available, progressing];
            // A condition's times change only with its status or reason, as the controller
            // writes them: an unchanged status is no write (and no new resourceVersion).
            if let Some(old) = before.as_ref().and_then(|b| b.conditions.as_ref()) {
                for c in &mut conditions {
                    if let Some(o) = old.iter().find(|o| {
                        o.type_ == c.type_ && o.status == c.status && o.reason == c.reason
                    }) {
                        *c = o.clone();
                    }
                }
            }
            status.conditions = Some(conditions);
            if d.status != before {
                d.metadata.resource_version = Some(rv);
            }
        }
    }
}
