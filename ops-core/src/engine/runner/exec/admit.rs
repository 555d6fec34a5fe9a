//! Change control at the start of a run: the stopped line, freezes and windows decide whether
//! a mutating run may go on, wait for its window, or is refused. Each decision is journaled.

use std::time::Duration;

use super::Exec;
use crate::engine::change::Verdict;
use crate::engine::{EventKind, RunOutcome};
use crate::{Error, ErrorKind, Result};

/// How often a run waiting for a window decides again when the window's opening is unknown.
const RECHECK: Duration = Duration::from_secs(60);

impl Exec<'_> {
    /// `None`: go on. `Some`: the run ends here with this outcome and error. An `Err` is a
    /// journal that cannot be written.
    pub(super) async fn admit(&self) -> Result<Option<(RunOutcome, Error)>> {
        let Some(control) = &self.runner.change else {
            return Ok(None);
        };
        if !self.runbook.is_mutating() {
            return Ok(None); // checks and reviews are never held
        }
        loop {
            let decision = match control
                .decide(&self.runbook.change, self.runbook.category)
                .await
            {
                Ok(d) => d,
                Err(e) => return Ok(Some((RunOutcome::Failed, e))),
            };
            tracing::info!(decision = %decision.describe(), "change control");
            self.record(EventKind::ChangeDecided {
                decision: decision.clone(),
            })
            .await?;
            if self.dry() {
                return Ok(None); // the plan shows the decision; nothing waits or is refused
            }
            match decision.verdict {
                Verdict::Allowed | Verdict::Exempt => return Ok(None),
                Verdict::Refused => {
                    let detail = format!("refused by change control: {}", decision.describe());
                    return Ok(Some((
                        RunOutcome::Failed,
                        Error::new("engine", "change-control", ErrorKind::Conflict { detail }),
                    )));
                }
                Verdict::Wait => {
                    let now = self.runner.clock.now();
                    let wait = decision
                        .until
                        .and_then(|u| (u - now).to_std().ok())
                        .unwrap_or(RECHECK)
                        .max(Duration::from_secs(1));
                    tokio::select! {
                        biased;
                        _ = self.state.cancel.cancelled() => {
                            return Ok(Some((
                                RunOutcome::Cancelled,
                                Error::new("engine", "run", ErrorKind::Cancelled),
                            )));
                        }
                        _ = self.runner.clock.sleep(wait) => {}
                    }
                }
            }
        }
    }
}
