//! How a Deployment and its ReplicaSets read as releases and traffic: pure functions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use ops_core::contracts::{Release, ReleaseState, TrafficAllocation};

/// The annotation a Deployment and its ReplicaSets carry their revision in.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The pod-template annotation holding the version a deploy asked for.
pub const VERSION: &str = "ops.dev/version";
/// The pod-template annotation that makes every deploy a new revision (as `kubectl rollout
/// restart` does with `kubectl.kubernetes.io/restartedAt`).
pub const DEPLOYED_AT: &str = "ops.dev/deployed-at";
/// `kubectl rollout restart`'s pod-template annotation.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The Deployment annotation remembering the replicas before a stop.
pub const REPLICAS_BEFORE_STOP: &str = "ops.dev/replicas-before-stop";
/// The label the controller adds to a ReplicaSet's pods.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// A time of the API as chrono's.
pub fn time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().try_into().ok()?)
}

/// The revision a ReplicaSet or Deployment carries (0 without one).
pub fn revision_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The ReplicaSets `d` owns, newest first (by creation, then revision).
pub fn owned(d: &Deployment, mut sets: Vec<ReplicaSet>) -> Vec<ReplicaSet> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    sets.retain(|rs| {
        rs.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid && o.kind == "Deployment")
    });
    sets.sort_by(|a, b| {
        let key = |rs: &ReplicaSet| {
            (
                rs.metadata.creation_timestamp.as_ref().and_then(time),
                revision_of(&rs.metadata),
            )
        };
        key(b).cmp(&key(a))
    });
    sets
}

/// The ReplicaSet running `d`'s current revision, if the controller made it.
pub fn current<'a>(d: &Deployment, sets: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let rev = revision_of(&d.metadata);
    (rev > 0)
        .then(|| sets.iter().find(|rs| revision_of(&rs.metadata) == rev))
        .flatten()
}

/// The version a pod template runs: the version a deploy recorded, else the images.
pub fn version_of(template: Option<&PodTemplateSpec>, container: Option<&str>) -> String {
    let Some(t) = template else {
        return String::new();
    };
    if let Some(v) = t
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref()?.get(VERSION))
    {
        return v.clone();
    }
    let containers = t
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let images: Vec<String> = containers
        .iter()
        .filter(|c| container.is_none_or(|n| c.name == n))
        .filter_map(|c| c.image.clone())
        .collect();
    images.join(",")
}

/// A ReplicaSet as a release, in `state`.
pub fn release_of(rs: &ReplicaSet, container: Option<&str>, state: ReleaseState) -> Release {
    let mut labels = BTreeMap::new();
    labels.insert(
        "revision".to_string(),
        revision_of(&rs.metadata).to_string(),
    );
    Release {
        id: rs.metadata.name.clone().unwrap_or_default(),
        version: version_of(
            rs.spec.as_ref().and_then(|s| s.template.as_ref()),
            container,
        ),
        state,
        created_at: rs.metadata.creation_timestamp.as_ref().and_then(time),
        url: None,
        labels,
    }
}

/// Traffic in proportion to each ReplicaSet's ready pods (what a Service spreads over), in
/// whole percentages that sum to 100 (largest remainders); empty when no pod is ready.
pub fn traffic_of(sets: &[ReplicaSet]) -> Vec<TrafficAllocation> {
    let ready: Vec<(String, u64)> = sets
        .iter()
        .filter_map(|rs| {
            let n = rs.status.as_ref()?.ready_replicas.unwrap_or(0);
            (n > 0).then(|| (rs.metadata.name.clone().unwrap_or_default(), n as u64))
        })
        .collect();
    shares(&ready)
}

/// Whole percentages of `counts` summing to 100, by largest remainder (ties to the first).
pub fn shares(counts: &[(String, u64)]) -> Vec<TrafficAllocation> {
    // In u128: any counts (weights a server sends) fit without overflow.
    let total: u128 = counts.iter().map(|(_, n)| u128::from(*n)).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut parts: Vec<(usize, u128, u128)> = counts
        .iter()
        .enumerate()
        .map(|(i, (_, n))| {
            let n = u128::from(*n) * 100;
            (i, n / total, n % total)
        })
        .collect();
    let given: u128 = parts.iter().map(|p| p.1).sum();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| parts[*b].2.cmp(&parts[*a].2).then(a.cmp(b)));
    for i in order
        .into_iter()
        .take(100usize.saturating_sub(given as usize))
    {
        parts[i].1 += 1;
    }
    parts
        .into_iter()
        .filter(|p| p.1 > 0)
        .map(|(i, pct, _)| TrafficAllocation {
            release: counts[i].0.clone(),
            percent: pct as u8,
        })
        .collect()
}

/// `template` without the controller's `pod-template-hash` label: what a Deployment's template
/// looks like when it runs that ReplicaSet again (`kubectl rollout undo`).
pub fn template_for_undo(rs: &ReplicaSet) -> Option<PodTemplateSpec> {
    let mut t = rs.spec.as_ref()?.template.clone()?;
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Any ready counts give shares of 100 exactly, none for an empty set, and a set with
        // more ready pods never gets less.
        #[test]
        fn shares_sum_to_100_and_follow_the_counts(counts in proptest::collection::vec(0u64..10_000, 0..8)) {
            let named: Vec<(String, u64)> = counts.iter().enumerate().map(|(i, n)| (format!("rs{i}"), *n)).collect();
            let s = shares(&named);
            let total: u64 = counts.iter().sum();
            if total == 0 {
                prop_assert!(s.is_empty());
            } else {
                prop_assert_eq!(s.iter().map(|a| u32::from(a.percent)).sum::<u32>(), 100);
                let pct = |i: usize| s.iter().find(|a| a.release == format!("rs{i}")).map_or(0, |a| a.percent);
                for i in 0..counts.len() {
                    for j in 0..counts.len() {
                        if counts[i] > counts[j] {
                            prop_assert!(pct(i) >= pct(j));
                        }
                    }
                }
            }
        }
    }
}
