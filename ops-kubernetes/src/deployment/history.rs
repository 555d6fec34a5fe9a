//! `kubectl rollout undo` and `kubectl rollout restart`, and rolling back to another version.

use std::time::Duration;

use ops_core::contracts::{Release, ReleaseState};
use ops_core::{Error, ErrorKind, Result};

use super::*;

impl KubeDeployment {
    /// `kubectl rollout undo`: the pod template of `revision` (the previous one with `None`)
    /// written back, then its rollout followed.
    pub async fn undo(&self, revision: Option<i64>, deadline: Duration) -> Result<Release> {
        let d = self.get().await?;
        let sets = self.replica_sets(&d).await?;
        let current = view::revision_of(&d.metadata);
        let target = match revision {
            Some(r) => sets.iter().find(|rs| view::revision_of(&rs.metadata) == r),
            None => sets
                .iter()
                .filter(|rs| view::revision_of(&rs.metadata) < current)
                .max_by_key(|rs| view::revision_of(&rs.metadata)),
        }
        .ok_or_else(|| {
            Error::new(
                PROVIDER,
                "undo",
                ErrorKind::NotFound {
                    resource: match revision {
                        Some(r) => format!("revision {r} of {}", self.target),
                        None => format!("a revision of {} before {current}", self.target),
                    },
                },
            )
        })?;
        let name = target.metadata.name.clone().unwrap_or_default();
        self.run_release(&name, deadline).await
    }

    /// Back to the newest revision that runs another version than the current one and is not
    /// failing: what "roll back to the previous deployment" means when restarts have added
    /// revisions of the same version (where `undo` would bring back the one before the
    /// restart).
    pub async fn roll_back(&self, deadline: Duration) -> Result<Release> {
        let d = self.get().await?;
        let sets = self.replica_sets(&d).await?;
        let current = view::current(&d, &sets)
            .map(|rs| release_of(rs, self.container.as_deref(), ReleaseState::Ready));
        let releases = self.releases_now().await?;
        let target = releases
            .iter()
            .filter(|r| {
                current
                    .as_ref()
                    .is_none_or(|c| r.id != c.id && r.version != c.version)
            })
            .find(|r| r.state != ReleaseState::Failed)
            .ok_or_else(|| {
                Error::new(
                    PROVIDER,
                    "roll_back",
                    ErrorKind::NotFound {
                        resource: format!("an earlier version of {} to roll back to", self.target),
                    },
                )
            })?;
        self.run_release(&target.id, deadline).await
    }

    /// Makes the ReplicaSet `id` the Deployment's template again (and restores replicas after
    /// a stop), then follows the rollout.
    pub(super) async fn run_release(&self, id: &str, deadline: Duration) -> Result<Release> {
        let d = self.get().await?;
        let sets = self.replica_sets(&d).await?;
        let rs = sets
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(id))
            .ok_or_else(|| {
                Error::new(
                    PROVIDER,
                    "set_traffic",
                    ErrorKind::NotFound {
                        resource: format!("release {id} of {}", self.target),
                    },
                )
            })?;
        let template = view::template_for_undo(rs).ok_or_else(|| no_containers(&self.target))?;
        self.update("undo", false, |d| {
            let before = replicas_before_stop(d);
            let spec = spec_mut(d)?;
            spec.template = template.clone();
            if spec.replicas == Some(0) {
                spec.replicas = Some(before);
            }
            Ok(())
        })
        .await?;
        self.wait_for_rollout(deadline).await?;
        self.release(id).await
    }

    async fn release(&self, id: &str) -> Result<Release> {
        self.releases_now()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| {
                Error::new(
                    PROVIDER,
                    "releases",
                    ErrorKind::NotFound {
                        resource: format!("release {id} of {}", self.target),
                    },
                )
            })
    }

    /// `kubectl rollout restart`: every pod replaced, one revision later, the rollout followed.
    pub async fn restart(&self, deadline: Duration) -> Result<Release> {
        let stamp = self.stamp();
        self.update("restart", false, |d| {
            spec_mut(d)?
                .template
                .metadata
                .get_or_insert_with(Default::default)
                .annotations
                .get_or_insert_with(Default::default)
                .insert(RESTARTED_AT.into(), stamp.clone());
            Ok(())
        })
        .await?;
        self.rolled_out(deadline).await
    }
}
