//! Following a rollout the way `kubectl rollout status` does.

use std::time::Duration;

use ops_core::contracts::{Release, ReleaseState};
use ops_core::poll::{Every, poll_until};
use ops_core::{Error, ErrorKind, Result};

use super::*;

impl KubeDeployment {
    /// `kubectl rollout status`, with the current revision's pod problems.
    pub async fn rollout_status(&self) -> Result<RolloutStatus> {
        let d = self.get().await?;
        self.status_of(&d).await
    }

    async fn status_of(&self, d: &Deployment) -> Result<RolloutStatus> {
        let rollout = rollout_of(d);
        let mut problems = Vec::new();
        if rollout != Rollout::Complete {
            let sets = self.replica_sets(d).await?;
            if let Some(rs) = view::current(d, &sets) {
                for pod in self.pods_of(rs).await? {
                    problems.extend(problems_of(&pod));
                }
            }
        }
        Ok(RolloutStatus { rollout, problems })
    }

    /// Waits until the rollout completes; a stalled one (progress deadline exceeded, new pods
    /// in a back-off, or `deadline` passed) is `VerificationFailed` naming why.
    pub async fn wait_for_rollout(&self, deadline: Duration) -> Result<Deployment> {
        let clock = self.client.clock().clone();
        let fail = |detail: String| {
            Error::new(
                PROVIDER,
                "rollout_status",
                ErrorKind::VerificationFailed {
                    check: format!("rollout of {}", self.target),
                    detail,
                },
            )
        };
        let first = self.get().await?;
        let polled = poll_until(
            clock.as_ref(),
            deadline,
            Every::fixed(self.poll),
            (first, None::<RolloutStatus>),
            |(d, status)| {
                let Some(status) = status else {
                    return Ok(None);
                };
                match &status.rollout {
                    Rollout::Complete => Ok(Some(d.clone())),
                    Rollout::DeadlineExceeded(why) => {
                        Err(fail(with_problems(why.clone(), &status.problems)))
                    }
                    _ if !self.wait_out_back_off
                        && status.problems.iter().any(PodProblem::is_fatal) =>
                    {
                        Err(fail(with_problems(
                            "new pods cannot start".into(),
                            &status.problems,
                        )))
                    }
                    _ => Ok(None),
                }
            },
            |(d, status)| async move {
                // The first look reads the pods of the state just fetched; later looks read anew.
                let d = if status.is_none() {
                    d
                } else {
                    self.get().await?
                };
                let status = self.status_of(&d).await?;
                Ok((d, Some(status)))
            },
        )
        .await?;
        match polled {
            ops_core::poll::Polled::Done(d) => Ok(d),
            ops_core::poll::Polled::TimedOut((_, status)) => {
                let status = status.unwrap_or(RolloutStatus {
                    rollout: Rollout::NotObserved,
                    problems: Vec::new(),
                });
                let why = match status.rollout {
                    Rollout::Progressing(m) => m,
                    other => format!("{other:?}"),
                };
                Err(fail(with_problems(
                    format!("not complete after {deadline:?}: {why}"),
                    &status.problems,
                )))
            }
        }
    }

    /// Follows the rollout to its end: the release now running.
    pub(super) async fn rolled_out(&self, deadline: Duration) -> Result<Release> {
        let d = self.wait_for_rollout(deadline).await?;
        let sets = self.replica_sets(&d).await?;
        let rs = view::current(&d, &sets).ok_or_else(|| no_containers(&self.target))?;
        Ok(release_of(
            rs,
            self.container.as_deref(),
            ReleaseState::Ready,
        ))
    }
}
