//! What a step sees of its run: earlier outputs, mode, clock, cancellation, evidence.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::engine::{Mode, Output, StepOutput};
use crate::{Error, ErrorKind, Result};

/// The state a run shares with its steps.
#[derive(Debug)]
pub(crate) struct RunState {
    pub run_id: String,
    pub runbook: String,
    pub target: String,
    pub mode: Mode,
    pub clock: SharedClock,
    pub cancel: CancellationToken,
    pub outputs: Mutex<HashMap<String, StepOutput>>,
    pub evidence: Mutex<Vec<(String, String, serde_json::Value)>>,
}

/// Handed to a step each time it builds an attempt.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub(crate) run: Arc<RunState>,
    pub(crate) step: Arc<str>,
    pub(crate) attempt: u32,
}

impl StepContext {
    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run.run_id
    }

    /// The runbook's name.
    pub fn runbook(&self) -> &str {
        &self.run.runbook
    }

    /// The target.
    pub fn target(&self) -> &str {
        &self.run.target
    }

    /// Execute or dry run.
    pub fn mode(&self) -> Mode {
        self.run.mode
    }

    /// Whether this is a dry run.
    pub fn is_dry_run(&self) -> bool {
        self.run.mode == Mode::DryRun
    }

    /// The run's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.run.clock
    }

    /// This step's name.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// The attempt being built (1-based).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The run's cancellation: long waits inside a step should end when it fires.
    pub fn cancellation(&self) -> CancellationToken {
        self.run.cancel.clone()
    }

    /// The output of an earlier step, through its typed handle: the value itself when the step
    /// ran in this process, decoded from the journal after a resume.
    /// [`ErrorKind::OutputPending`] when that step has not produced one (not run yet, or a
    /// mutation only planned in a dry run); `InvalidInput` when it produced another type (a bug
    /// in the runbook, which a dry run reports as such).
    pub fn get<T>(&self, output: &Output<T>) -> Result<T>
    where
        T: DeserializeOwned + Clone + 'static,
    {
        let stored = self.stored(output.step())?;
        if let Some(value) = stored.typed.as_ref().and_then(|t| t.downcast_ref::<T>()) {
            return Ok(value.clone());
        }
        decode(output.step(), stored.json)
    }

    /// The output of the earlier step named `step`, decoded from JSON. Prefer [`Self::get`]
    /// with the handle [`Runbook::add_step`](crate::engine::Runbook::add_step) returns; errors
    /// as there.
    pub fn output<T: DeserializeOwned>(&self, step: &str) -> Result<T> {
        decode(step, self.stored(step)?.json)
    }

    fn stored(&self, step: &str) -> Result<StepOutput> {
        self.lookup(step).ok_or_else(|| {
            let why = if self.is_dry_run() {
                "it is not run in a dry run, or has not run yet"
            } else {
                "it has not run yet"
            };
            Error::new(
                "engine",
                "step_output",
                ErrorKind::OutputPending {
                    step: step.to_string(),
                    why: why.into(),
                },
            )
        })
    }

    fn lookup(&self, step: &str) -> Option<StepOutput> {
        self.run
            .outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(step)
            .cloned()
    }

    /// The raw output of an earlier step, if it produced one.
    pub fn output_value(&self, step: &str) -> Option<serde_json::Value> {
        self.lookup(step).map(|o| o.json)
    }

    /// Attaches evidence (captured logs, a state snapshot) to the run's report and journal.
    /// Secret-named fields are masked.
    pub fn evidence(&self, key: impl Into<String>, value: impl Serialize) {
        let mut v = serde_json::to_value(value)
            .unwrap_or_else(|e| serde_json::Value::String(format!("unserializable: {e}")));
        crate::redact::redact_json(&mut v);
        self.run
            .evidence
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.step.to_string(), key.into(), v));
    }
}

fn decode<T: DeserializeOwned>(step: &str, json: serde_json::Value) -> Result<T> {
    serde_json::from_value(json).map_err(|e| {
        Error::invalid_input(
            "engine",
            "step_output",
            step,
            format!("output has another shape: {e}"),
        )
    })
}
