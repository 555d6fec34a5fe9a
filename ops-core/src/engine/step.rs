//! Steps: named units of work that read or mutate, with retry, deadline and compensation.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::engine::{StepContext, StepKind};
use crate::retry::{Idempotency, RetryPolicy};
use crate::{Error, ErrorKind, Result};

/// The future an [`Action`] runs.
pub type ActionFuture = Pin<Box<dyn Future<Output = Result<StepOutput>> + Send + 'static>>;

/// A step's output: the JSON the journal keeps, and the typed value later steps of the same
/// run read through an [`Output`](crate::engine::Output) handle without decoding it again.
#[derive(Clone)]
pub struct StepOutput {
    pub(crate) json: serde_json::Value,
    pub(crate) typed: Option<Arc<dyn Any + Send + Sync>>,
}

impl StepOutput {
    /// An output known only as JSON (read back from a journal on resume).
    pub(crate) fn from_json(json: serde_json::Value) -> Self {
        Self { json, typed: None }
    }

    /// The output as the journal keeps it.
    pub fn json(&self) -> &serde_json::Value {
        &self.json
    }
}

impl fmt::Debug for StepOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The JSON only: it is what the journal shows, with secrets masked there.
        f.debug_struct("StepOutput").finish_non_exhaustive()
    }
}

/// One call a step makes: what it is (for plans and journals) and the future that makes it.
/// The future is lazy: a dry run records `call` and `args` and drops it unpolled, so a planned
/// mutation cannot run.
pub struct Action {
    pub(crate) call: String,
    pub(crate) args: serde_json::Value,
    pub(crate) run: ActionFuture,
}

impl Action {
    /// A call named `call` (e.g. `Deployer::set_traffic`) with `args` (secret-named fields are
    /// masked before they are journaled; keep secret values out of them regardless), made by
    /// `fut`, whose output is kept as the step's output.
    pub fn new<T, F>(call: impl Into<String>, args: serde_json::Value, fut: F) -> Self
    where
        T: Serialize + Send + Sync + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let call = call.into();
        let run = Box::pin(async move {
            let out = fut.await?;
            let json = serde_json::to_value(&out).map_err(|e| {
                Error::new(
                    "engine",
                    "step_output",
                    ErrorKind::Decode {
                        detail: e.to_string(),
                    },
                )
            })?;
            Ok(StepOutput {
                json,
                typed: Some(Arc::new(out)),
            })
        });
        Self { call, args, run }
    }

    /// The call's name.
    pub fn call(&self) -> &str {
        &self.call
    }

    /// The call's arguments.
    pub fn args(&self) -> &serde_json::Value {
        &self.args
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Action")
            .field("call", &self.call)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// Builds an attempt's [`Action`] from the run's context (earlier steps' outputs). Called once
/// per attempt.
pub type BuildAction = Arc<dyn Fn(&StepContext) -> Result<Action> + Send + Sync>;

/// A named unit of work.
///
/// ```
/// use ops_core::engine::{Action, Step};
/// use std::time::Duration;
/// let step = Step::mutate("shift-traffic", |ctx| {
///     let to = ctx.output::<String>("pick-release")?;
///     Ok(Action::new("Deployer::set_traffic", serde_json::json!({ "to": to }), async move {
///         Ok(format!("traffic on {to}"))
///     }))
/// })
/// .idempotent()
/// .deadline(Duration::from_secs(300));
/// assert_eq!(step.name(), "shift-traffic");
/// ```
#[derive(Clone)]
pub struct Step {
    pub(crate) name: String,
    pub(crate) kind: StepKind,
    pub(crate) retry: RetryPolicy,
    pub(crate) deadline: Option<Duration>,
    pub(crate) build: BuildAction,
    pub(crate) compensation: Option<BuildAction>,
    /// Checks what the run's changes did: see [`Step::verifies_changes`].
    pub(crate) verifies_changes: bool,
}

impl Step {
    /// A step that only reads. It runs in dry runs and re-runs freely on resume.
    pub fn read<F>(name: impl Into<String>, build: F) -> Self
    where
        F: Fn(&StepContext) -> Result<Action> + Send + Sync + 'static,
    {
        Self::with_kind(name, StepKind::Read, build)
    }

    /// A step that changes something. In a dry run it is recorded, not run. Not idempotent
    /// unless marked with [`Step::idempotent`].
    pub fn mutate<F>(name: impl Into<String>, build: F) -> Self
    where
        F: Fn(&StepContext) -> Result<Action> + Send + Sync + 'static,
    {
        Self::with_kind(name, StepKind::Mutate { idempotent: false }, build)
    }

    fn with_kind<F>(name: impl Into<String>, kind: StepKind, build: F) -> Self
    where
        F: Fn(&StepContext) -> Result<Action> + Send + Sync + 'static,
    {
        Self {
            name: name.into(),
            kind,
            retry: RetryPolicy::never(),
            deadline: None,
            build: Arc::new(build),
            compensation: None,
            verifies_changes: false,
        }
    }

    /// Marks a read as checking what the run's changes did (a health check after a deploy or
    /// a rollback). In a dry run where an earlier change was only planned, it is planned too:
    /// what it would check has not happened, and the state it would find instead (the
    /// unhealthy service a rollback is about to fix) says nothing about the plan.
    pub fn verifies_changes(mut self) -> Self {
        self.verifies_changes = true;
        self
    }

    /// Marks a mutation as safe to run twice (retried after ambiguous failures, re-run on
    /// resume after a crash).
    pub fn idempotent(mut self) -> Self {
        if let StepKind::Mutate { .. } = self.kind {
            self.kind = StepKind::Mutate { idempotent: true };
        }
        self
    }

    /// Retries failed attempts by `policy` (default: no retry).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A deadline for each attempt.
    pub fn attempt_timeout(mut self, limit: Duration) -> Self {
        self.retry.attempt_timeout = Some(limit);
        self
    }

    /// A deadline for the whole step, retries included; retries never outlive it.
    pub fn deadline(mut self, limit: Duration) -> Self {
        self.deadline = Some(limit);
        self
    }

    /// What undoes this step when a later step fails or the run is cancelled (saga).
    pub fn compensate<F>(mut self, build: F) -> Self
    where
        F: Fn(&StepContext) -> Result<Action> + Send + Sync + 'static,
    {
        self.compensation = Some(Arc::new(build));
        self
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read or mutate.
    pub fn kind(&self) -> StepKind {
        self.kind
    }

    pub(crate) fn idempotency(&self) -> Idempotency {
        match self.kind {
            StepKind::Read | StepKind::Mutate { idempotent: true } => Idempotency::Idempotent,
            StepKind::Mutate { idempotent: false } => Idempotency::NotIdempotent,
        }
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("retry", &self.retry)
            .field("deadline", &self.deadline)
            .field("compensated", &self.compensation.is_some())
            .finish()
    }
}
