//! Compensation: undoing completed steps, last first, when a run fails or is cancelled.

use std::sync::Mutex;

use super::{Exec, build_caught, lock, run_caught};
use crate::Result;
use crate::engine::{EventKind, ProgressEvent, Step};

impl Exec<'_> {
    /// Undoes completed steps, last first. A failed compensation is recorded and the rest still
    /// run. Not cancellable: a cancelled run is exactly when they must finish.
    pub(super) async fn compensate(&self, completed: &[&Step]) -> Result<()> {
        if self.dry() {
            return Ok(());
        }
        for step in completed.iter().rev() {
            let Some(build) = &step.compensation else {
                continue;
            };
            self.emit(|| ProgressEvent::Compensating {
                step: step.name.clone(),
            });
            let call = Mutex::new(String::from("(not built)"));
            let result = step
                .retry
                .run(self.runner.clock.as_ref(), step.idempotency(), |attempt| {
                    let built = build_caught(build, &self.ctx(&step.name, attempt), &step.name);
                    if let Ok(a) = &built {
                        *lock(&call) = a.call.clone();
                    }
                    run_caught(built, &step.name)
                })
                .await;
            let call = lock(&call).clone();
            let event = match result {
                Ok(_) => EventKind::CompensationSucceeded {
                    step: step.name.clone(),
                    call,
                },
                Err(e) => {
                    tracing::error!(step = %step.name, error = %e, "compensation failed: the step's effect remains");
                    EventKind::CompensationFailed {
                        step: step.name.clone(),
                        call,
                        error: (&e).into(),
                    }
                }
            };
            self.record(event).await?;
        }
        Ok(())
    }
}
