//! One run's execution: steps, gates, compensations, pause and cancellation, all journaled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::join_all;
use tracing::Instrument;

mod admit;
mod approval;
mod compensate;

use super::Runner;
use super::resume::Resumption;
use crate::engine::context::RunState;
use crate::engine::step::BuildAction;
use crate::engine::{
    Action, ErrorRecord, EventKind, Item, JournalEvent, Mode, PlannedAction, ProgressEvent,
    RunControl, RunOutcome, RunReport, Runbook, Step, StepContext, StepOutput, StepStatus,
};
use crate::{Error, ErrorKind, Result};

/// Why the run stops early.
enum Stop {
    /// A step or gate failed: compensate, outcome failed.
    Failed(Error),
    /// The caller cancelled: compensate, outcome cancelled.
    Cancelled,
    /// The journal could not be written: stop without claiming anything more.
    Fatal(Error),
}

/// What a step did.
enum Done {
    /// It ran (or had run before a resume): part of the saga.
    Ran,
    /// Recorded only (dry run).
    Planned,
}

/// Builds a step's (or compensation's) action; a panic in the builder is a failure of the
/// step, never an unwinding run that leaves its saga half done.
fn build_caught(build: &BuildAction, ctx: &StepContext, step: &str) -> Result<Action> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(ctx))).unwrap_or_else(|p| {
        Err(Error::from_panic(
            "engine",
            format!("step {step}"),
            p.as_ref(),
        ))
    })
}

/// Runs a built action; a panic inside its future is a failure of the step.
async fn run_caught(built: Result<Action>, step: &str) -> Result<StepOutput> {
    let run = built?.run;
    std::panic::AssertUnwindSafe(run)
        .catch_unwind()
        .await
        .unwrap_or_else(|p| {
            Err(Error::from_panic(
                "engine",
                format!("step {step}"),
                p.as_ref(),
            ))
        })
}

pub(super) struct Exec<'a> {
    runner: &'a Runner,
    runbook: &'a Runbook,
    control: RunControl,
    state: Arc<RunState>,
    seq: AtomicU64,
    events: Mutex<Vec<JournalEvent>>,
    index: HashMap<String, usize>,
    journal_failure: Mutex<Option<Error>>,
    /// The run lock's fencing token, recorded with every mutation.
    fence: Mutex<Option<u64>>,
    /// Set when the run lock was lost: (key, fencing token, why).
    lock_lost: Mutex<Option<(String, Option<u64>, String)>>,
    /// A dry run has planned a change: later verifications of changes are planned too.
    planned_change: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn redacted(mut v: serde_json::Value) -> serde_json::Value {
    crate::redact::redact_json(&mut v);
    v
}

impl<'a> Exec<'a> {
    pub fn new(
        runner: &'a Runner,
        runbook: &'a Runbook,
        mode: Mode,
        control: &RunControl,
        run_id: String,
        history: Vec<JournalEvent>,
        outputs: HashMap<String, serde_json::Value>,
    ) -> Self {
        let seq = history.iter().map(|e| e.seq + 1).max().unwrap_or(0);
        let state = Arc::new(RunState {
            run_id,
            runbook: runbook.name.clone(),
            target: runbook.target.clone(),
            mode,
            clock: runner.clock.clone(),
            cancel: control.cancel.clone(),
            outputs: Mutex::new(
                outputs
                    .into_iter()
                    .map(|(k, v)| (k, StepOutput::from_json(v)))
                    .collect(),
            ),
            evidence: Mutex::new(Vec::new()),
        });
        let index = runbook
            .names()
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, i))
            .collect();
        Self {
            runner,
            runbook,
            control: control.clone(),
            state,
            seq: AtomicU64::new(seq),
            events: Mutex::new(history),
            index,
            journal_failure: Mutex::new(None),
            fence: Mutex::new(None),
            lock_lost: Mutex::new(None),
            planned_change: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The run holds `lease`: its fencing token goes with every mutation from now on.
    pub fn hold(&self, lease: &crate::engine::LockLease) {
        *lock(&self.fence) = lease.fence;
    }

    /// The run lock was lost: cancel before the next mutation; completed steps are not undone
    /// (another run may hold the target now).
    pub fn lose_lock(&self, key: &str, fence: Option<u64>, reason: String) {
        tracing::error!(
            key,
            ?fence,
            reason,
            "the run lock was lost: cancelling the run"
        );
        *lock(&self.lock_lost) = Some((key.to_string(), fence, reason));
        self.control.cancel();
    }

    pub fn run_id(&self) -> &str {
        &self.state.run_id
    }

    pub fn mode(&self) -> Mode {
        self.state.mode
    }

    fn dry(&self) -> bool {
        self.state.mode == Mode::DryRun
    }

    fn ctx(&self, step: &str, attempt: u32) -> StepContext {
        StepContext {
            run: self.state.clone(),
            step: Arc::from(step),
            attempt,
        }
    }

    /// Sends a progress event, built only when someone listens.
    fn emit(&self, event: impl FnOnce() -> ProgressEvent) {
        if let Some(sink) = &self.runner.progress {
            sink.emit(event());
        }
    }

    fn finished(&self, step: &str, status: StepStatus) {
        self.emit(|| ProgressEvent::StepFinished {
            index: self.index[step],
            step: step.to_string(),
            status,
        });
    }

    async fn record(&self, kind: EventKind) -> Result<()> {
        let event = JournalEvent {
            seq: self.seq.fetch_add(1, Ordering::SeqCst),
            run_id: self.state.run_id.clone(),
            runbook: self.state.runbook.clone(),
            target: self.state.target.clone(),
            at: self.runner.clock.now(),
            kind,
        };
        self.runner.journal.append(&event).await?;
        lock(&self.events).push(event);
        Ok(())
    }

    /// Records from inside a retried attempt: a journal failure is kept aside and the attempt
    /// fails with an error that is never retried.
    async fn record_in_attempt(&self, kind: EventKind) -> Result<()> {
        match self.record(kind).await {
            Ok(()) => Ok(()),
            Err(e) => {
                lock(&self.journal_failure).get_or_insert(e);
                Err(Error::new("engine", "journal", ErrorKind::Cancelled))
            }
        }
    }

    async fn flush_evidence(&self) -> Result<()> {
        let pending: Vec<_> = lock(&self.state.evidence).drain(..).collect();
        for (step, key, value) in pending {
            self.record(EventKind::Evidence { step, key, value })
                .await?;
        }
        Ok(())
    }

    pub async fn run(&self, resumption: Resumption) -> Result<RunReport> {
        self.record(EventKind::RunStarted {
            mode: self.mode(),
            steps: self.runbook.names(),
            resumed: resumption.resumed,
            category: Some(self.runbook.category),
        })
        .await?;
        self.emit(|| ProgressEvent::RunStarted {
            run_id: self.state.run_id.clone(),
            runbook: self.state.runbook.clone(),
            total: self.index.len(),
        });
        let (outcome, error) = match self.admit().await? {
            Some((outcome, error)) => (outcome, Some(error)),
            None => self.body(&resumption).await?,
        };
        self.record(EventKind::RunFinished {
            outcome,
            error: error.as_ref().map(ErrorRecord::from),
        })
        .await?;
        self.emit(|| ProgressEvent::RunFinished { outcome });
        RunReport::from_events(&lock(&self.events))
    }

    async fn body(&self, r: &Resumption) -> Result<(RunOutcome, Option<Error>)> {
        if let Some(declined) = self.confirm_in_flight(r).await? {
            return Ok((RunOutcome::Failed, Some(declined)));
        }
        let mut completed: Vec<&Step> = Vec::new();
        let mut stop = None;
        for item in &self.runbook.items {
            if let Err(s) = self.boundary().await {
                stop = Some(s);
                break;
            }
            let result = match item {
                Item::Step(step) => self.step_or_skip(step, r).await.map(|done| {
                    if let Done::Ran = done {
                        completed.push(step);
                    }
                }),
                Item::Parallel(steps) => {
                    let results = join_all(steps.iter().map(|s| self.step_or_skip(s, r))).await;
                    let mut first: Option<Stop> = None;
                    for (step, res) in steps.iter().zip(results) {
                        match res {
                            Ok(Done::Ran) => completed.push(step),
                            Ok(Done::Planned) => {}
                            // A journal failure outranks the others: nothing more may be claimed.
                            Err(s) if first.is_none() || matches!(s, Stop::Fatal(_)) => {
                                first = Some(s)
                            }
                            Err(_) => {}
                        }
                    }
                    first.map_or(Ok(()), Err)
                }
                Item::Gate(gate) if r.done.contains(&gate.name) => self.skip(&gate.name).await,
                Item::Gate(gate) => self.gate(gate).await,
            };
            if let Err(s) = result {
                stop = Some(s);
                break;
            }
        }
        let done = if self.dry() {
            RunOutcome::Planned
        } else {
            RunOutcome::Succeeded
        };
        match stop {
            None => Ok((done, None)),
            Some(Stop::Fatal(e)) => Err(e),
            Some(Stop::Failed(e)) => {
                self.compensate(&completed).await?;
                Ok((RunOutcome::Failed, Some(e)))
            }
            Some(Stop::Cancelled) => {
                let lost = lock(&self.lock_lost).clone();
                if let Some((key, fence, reason)) = lost {
                    self.record(EventKind::LockLost {
                        key: key.clone(),
                        fence,
                        reason: reason.clone(),
                    })
                    .await?;
                    return Ok((
                        RunOutcome::Cancelled,
                        Some(Error::new(
                            "engine",
                            "run",
                            ErrorKind::Conflict {
                                detail: format!(
                                    "the run lock on {key} was lost ({reason}): stopped before the next \
                                     mutation; completed steps were not undone, since another run may \
                                     hold {key} now"
                                ),
                            },
                        )),
                    ));
                }
                self.compensate(&completed).await?;
                Ok((
                    RunOutcome::Cancelled,
                    Some(Error::new("engine", "run", ErrorKind::Cancelled)),
                ))
            }
        }
    }

    /// At a step boundary: stop if cancelled, wait while paused.
    async fn boundary(&self) -> std::result::Result<(), Stop> {
        let cancel = &self.state.cancel;
        if cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        if !self.control.is_paused() {
            return Ok(());
        }
        self.record(EventKind::RunPaused)
            .await
            .map_err(Stop::Fatal)?;
        self.emit(|| ProgressEvent::Paused);
        let mut paused = self.control.paused.subscribe();
        while *paused.borrow_and_update() {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Stop::Cancelled),
                changed = paused.changed() => if changed.is_err() { break },
            }
        }
        self.record(EventKind::RunResumed)
            .await
            .map_err(Stop::Fatal)?;
        self.emit(|| ProgressEvent::Resumed);
        Ok(())
    }

    async fn skip(&self, name: &str) -> std::result::Result<(), Stop> {
        self.record(EventKind::StepSkipped {
            step: name.to_string(),
            reason: "completed before the run was resumed".into(),
        })
        .await
        .map_err(Stop::Fatal)?;
        self.finished(name, StepStatus::Succeeded);
        Ok(())
    }

    async fn step_or_skip(&self, step: &Step, r: &Resumption) -> std::result::Result<Done, Stop> {
        if r.done.contains(&step.name) {
            self.skip(&step.name).await?;
            return Ok(Done::Ran);
        }
        self.step(step).await
    }

    async fn step(&self, step: &Step) -> std::result::Result<Done, Stop> {
        self.emit(|| ProgressEvent::StepStarted {
            index: self.index[&step.name],
            step: step.name.clone(),
        });
        let unverifiable = step.verifies_changes && self.planned_change.load(Ordering::SeqCst);
        if self.dry() && (step.kind.mutates() || unverifiable) {
            let built = build_caught(&step.build, &self.ctx(&step.name, 1), &step.name);
            return self.plan(step, built).await;
        }
        // In a dry run, a read that needs a planned mutation's output cannot run: plan it. The
        // action built to find out is the one the first attempt runs (building has effects:
        // evidence).
        let mut first = None;
        if self.dry() {
            match build_caught(&step.build, &self.ctx(&step.name, 1), &step.name) {
                // Planned from the build that failed: no second build.
                Err(e) if pending(&e) => return self.plan(step, Err(e)).await,
                built => first = Some(built),
            }
        }
        let span = tracing::info_span!("step", step = %step.name, kind = ?step.kind);
        self.execute(step, first).instrument(span).await
    }

    /// Dry run of a mutation: record what would be called; the action's future is dropped
    /// without being polled, so nothing runs.
    async fn plan(&self, step: &Step, built: Result<Action>) -> std::result::Result<Done, Stop> {
        let action = match built {
            Ok(a) => PlannedAction {
                step: step.name.clone(),
                call: a.call,
                args: redacted(a.args),
            },
            // Arguments that come from an earlier mutation cannot be known in a dry run.
            Err(e) if pending(&e) => PlannedAction {
                step: step.name.clone(),
                call: "(depends on an earlier planned step)".into(),
                args: serde_json::json!({ "detail": e.to_string() }),
            },
            Err(e) => return self.fail(step, 1, Duration::ZERO, e).await,
        };
        if step.kind.mutates() {
            self.planned_change.store(true, Ordering::SeqCst);
        }
        self.record(EventKind::StepPlanned { action })
            .await
            .map_err(Stop::Fatal)?;
        self.finished(&step.name, StepStatus::Planned);
        Ok(Done::Planned)
    }

    async fn execute(
        &self,
        step: &Step,
        first: Option<Result<Action>>,
    ) -> std::result::Result<Done, Stop> {
        let first = Mutex::new(first);
        let clock = self.runner.clock.as_ref();
        let start = clock.instant();
        let mut policy = step.retry.clone();
        if let Some(deadline) = step.deadline {
            policy.max_elapsed = policy.max_elapsed.min(deadline);
        }
        let retried: Mutex<Option<EventKind>> = Mutex::new(None);
        let attempts = AtomicU32::new(0);
        let work = policy.run_observed(
            clock,
            step.idempotency(),
            |attempt| {
                attempts.store(attempt, Ordering::SeqCst);
                let prebuilt = if attempt == 1 {
                    lock(&first).take()
                } else {
                    None
                };
                let built = prebuilt.unwrap_or_else(|| {
                    build_caught(&step.build, &self.ctx(&step.name, attempt), &step.name)
                });
                let retry_event = lock(&retried).take();
                async move {
                    if let Some(event) = retry_event {
                        self.record_in_attempt(event).await?;
                    }
                    self.record_in_attempt(EventKind::StepStarted {
                        step: step.name.clone(),
                        attempt,
                        kind: step.kind,
                        fence: if step.kind.mutates() {
                            *lock(&self.fence)
                        } else {
                            None
                        },
                    })
                    .await?;
                    run_caught(built, &step.name).await
                }
            },
            |ev| {
                *lock(&retried) = Some(EventKind::StepRetried {
                    step: step.name.clone(),
                    attempt: ev.attempt,
                    wait: ev.wait,
                    error: ev.error.into(),
                });
                self.emit(|| ProgressEvent::StepRetrying {
                    step: step.name.clone(),
                    attempt: ev.attempt,
                    wait: ev.wait,
                });
            },
        );
        let bounded = async {
            match step.deadline {
                Some(limit) => crate::clock::timeout(clock, limit, work)
                    .await
                    .unwrap_or_else(|| {
                        Err(Error::new(
                            "engine",
                            "step",
                            ErrorKind::Timeout { after: limit },
                        ))
                    }),
                None => work.await,
            }
        };
        let outcome = tokio::select! {
            biased;
            _ = self.state.cancel.cancelled() => None,
            r = bounded => Some(r),
        };
        let duration = clock.instant().saturating_duration_since(start);
        let attempts = attempts.load(Ordering::SeqCst).max(1);
        self.flush_evidence().await.map_err(Stop::Fatal)?;
        if let Some(e) = lock(&self.journal_failure).take() {
            return Err(Stop::Fatal(e));
        }
        match outcome {
            None => {
                self.record(EventKind::StepCancelled {
                    step: step.name.clone(),
                })
                .await
                .map_err(Stop::Fatal)?;
                self.finished(&step.name, StepStatus::Cancelled);
                Err(Stop::Cancelled)
            }
            Some(Ok(out)) => {
                let value = out.json.clone();
                lock(&self.state.outputs).insert(step.name.clone(), out);
                self.record(EventKind::StepSucceeded {
                    step: step.name.clone(),
                    attempts,
                    duration,
                    output: redacted(value),
                })
                .await
                .map_err(Stop::Fatal)?;
                self.finished(&step.name, StepStatus::Succeeded);
                Ok(Done::Ran)
            }
            Some(Err(e)) => self.fail(step, attempts, duration, e).await,
        }
    }

    async fn fail(
        &self,
        step: &Step,
        attempts: u32,
        duration: Duration,
        e: Error,
    ) -> std::result::Result<Done, Stop> {
        tracing::warn!(step = %step.name, error = %e, "step failed");
        self.record(EventKind::StepFailed {
            step: step.name.clone(),
            attempts,
            duration,
            error: (&e).into(),
        })
        .await
        .map_err(Stop::Fatal)?;
        self.finished(&step.name, StepStatus::Failed);
        Err(Stop::Failed(e))
    }
}

/// Whether `e` says an earlier step has no output yet (in a dry run: a planned mutation's).
fn pending(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::OutputPending { .. })
}
