//! [`Runner`]: runs runbooks (execute or dry run), resumes interrupted runs from the journal.

mod exec;
mod resume;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use self::exec::Exec;
use crate::clock::{SharedClock, system_clock};
use crate::engine::{
    Approver, DenyAll, Journal, JournalFilter, LockHolder, LockWait, MemoryJournal, Mode,
    ProgressSink, RunControl, RunLock, RunReport, Runbook,
};
use crate::{Error, ErrorKind, Result};

/// Runs runbooks.
///
/// A run journals every event, takes the target's lock (execute mode, when a lock is set),
/// honours cancellation and pause through a [`RunControl`], asks its [`Approver`] at gates,
/// undoes completed steps in reverse order when a later one fails, and returns the
/// [`RunReport`] rebuilt from the journal. A step failing is a report with outcome `Failed`,
/// not an `Err`; `Err` is for runs that could not be run or recorded (invalid runbook, lock
/// taken, journal unwritable).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::engine::{Action, Mode, Runbook, Runner, Step};
/// let rb = Runbook::new("hello", "demo")
///     .step(Step::read("look", |_| Ok(Action::new("look", serde_json::json!({}), async { Ok(42) }))))
///     .step(Step::mutate("change", |ctx| {
///         let n: i32 = ctx.output("look")?;
///         Ok(Action::new("change", serde_json::json!({ "to": n + 1 }), async move { Ok(n + 1) }))
///     }));
/// let plan = Runner::new().run(&rb, Mode::DryRun).await?;
/// assert_eq!(plan.planned[0].args["to"], 43); // planned, not run
/// let done = Runner::new().run(&rb, Mode::Execute).await?.into_result()?;
/// assert_eq!(done.steps.len(), 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Runner {
    clock: SharedClock,
    journal: Arc<dyn Journal>,
    lock: Option<(Arc<dyn RunLock>, LockWait)>,
    approver: Arc<dyn Approver>,
    approval_timeout: Duration,
    approval_policy: crate::engine::ApprovalPolicy,
    requested_by: Option<String>,
    progress: Option<Arc<dyn ProgressSink>>,
    change: Option<Arc<crate::engine::change::ChangeControl>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("clock", &self.clock)
            .field("locked", &self.lock.is_some())
            .field("approval_timeout", &self.approval_timeout)
            .field("approval_policy", &self.approval_policy)
            .field("requested_by", &self.requested_by)
            .finish_non_exhaustive()
    }
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// A runner with the system clock, an in-memory journal, no lock, an approver that denies
    /// every gate (choose one on purpose), and a one-hour approval timeout.
    pub fn new() -> Self {
        Self {
            clock: system_clock(),
            journal: Arc::new(MemoryJournal::new()),
            lock: None,
            approver: Arc::new(DenyAll::default()),
            approval_timeout: Duration::from_secs(3600),
            approval_policy: crate::engine::ApprovalPolicy::default(),
            requested_by: None,
            progress: None,
            change: None,
        }
    }

    /// Uses `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Records runs in `journal`.
    pub fn with_journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = journal;
        self
    }

    /// Takes `lock` on the target before executing, waiting as `wait` says.
    pub fn with_lock(mut self, lock: Arc<dyn RunLock>, wait: LockWait) -> Self {
        self.lock = Some((lock, wait));
        self
    }

    /// Asks `approver` at gates.
    pub fn with_approver(mut self, approver: Arc<dyn Approver>) -> Self {
        self.approver = approver;
        self
    }

    /// Denies a gate nobody decides within `timeout` (unless its policy says otherwise).
    pub fn approval_timeout(mut self, timeout: Duration) -> Self {
        self.approval_timeout = timeout;
        self
    }

    /// The policy of gates that have none of their own (default: one approver, anyone).
    /// Checked when a run starts.
    pub fn approval_policy(mut self, policy: crate::engine::ApprovalPolicy) -> Self {
        self.approval_policy = policy;
        self
    }

    /// Runs on behalf of `who`: approvers are told, and four-eyes gates refuse their approval.
    pub fn requested_by(mut self, who: impl Into<String>) -> Self {
        self.requested_by = Some(who.into());
        self
    }

    /// Sends progress events to `sink`.
    pub fn with_progress(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Asks `control` before every mutating run: the stopped line and freezes refuse all but
    /// emergencies, and a window-only runbook waits for (or is refused outside) its window.
    /// Each decision is journaled in the run.
    pub fn with_change_control(
        mut self,
        control: Arc<crate::engine::change::ChangeControl>,
    ) -> Self {
        self.change = Some(control);
        self
    }

    /// The clock its runs read.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Runs `runbook` to the end.
    pub async fn run(&self, runbook: &Runbook, mode: Mode) -> Result<RunReport> {
        self.run_with(runbook, mode, &RunControl::new(), None).await
    }

    /// Runs `runbook` under `control`, with a chosen run id (or a generated one).
    pub async fn run_with(
        &self,
        runbook: &Runbook,
        mode: Mode,
        control: &RunControl,
        run_id: Option<String>,
    ) -> Result<RunReport> {
        runbook.validate()?;
        self.check_policy()?;
        let run_id = match run_id {
            Some(id) => {
                crate::contracts::validate_name("engine", "run", "run_id", &id)?;
                if id == crate::engine::change::CHANGE_CONTROL_RUN {
                    return Err(Error::invalid_input(
                        "engine",
                        "run",
                        "run_id",
                        format!("{id:?} is reserved for change-control switches"),
                    ));
                }
                if !self
                    .journal
                    .events(&JournalFilter::run(&id))
                    .await?
                    .is_empty()
                {
                    return Err(Error::new(
                        "engine",
                        "run",
                        ErrorKind::AlreadyExists {
                            resource: format!("run {id}"),
                        },
                    ));
                }
                id
            }
            None => format!(
                "{}-{}-{:04x}",
                runbook.name,
                self.clock.now().format("%Y%m%dT%H%M%SZ"),
                fastrand::u16(..)
            ),
        };
        let exec = Exec::new(
            self,
            runbook,
            mode,
            control,
            run_id,
            Vec::new(),
            HashMap::new(),
        );
        self.locked(runbook, &exec, |exec| {
            Box::pin(exec.run(resume::Resumption::fresh()))
        })
        .await
    }

    /// Continues the run `run_id` of `runbook` (failed, cancelled, or whose process died) from
    /// its first unfinished step. Completed steps are not repeated; a step that was in flight
    /// re-runs if it reads or is an idempotent mutation, and otherwise only if the approver says
    /// so (gate `rerun:STEP`).
    pub async fn resume(
        &self,
        runbook: &Runbook,
        run_id: &str,
        control: &RunControl,
    ) -> Result<RunReport> {
        runbook.validate()?;
        self.check_policy()?;
        let history = self.journal.events(&JournalFilter::run(run_id)).await?;
        let resumption = resume::analyse(runbook, run_id, &history)?;
        let exec = Exec::new(
            self,
            runbook,
            Mode::Execute,
            control,
            run_id.to_string(),
            history,
            resumption.outputs.clone(),
        );
        self.locked(runbook, &exec, move |exec| Box::pin(exec.run(resumption)))
            .await
    }

    fn check_policy(&self) -> Result<()> {
        use crate::config::RunbookConfig;
        self.approval_policy.validate()
    }

    /// The report of `run_id`, rebuilt from the journal.
    pub async fn report(&self, run_id: &str) -> Result<RunReport> {
        let events = self.journal.events(&JournalFilter::run(run_id)).await?;
        if events.is_empty() {
            return Err(Error::new(
                "engine",
                "report",
                ErrorKind::NotFound {
                    resource: format!("run {run_id}"),
                },
            ));
        }
        RunReport::from_events(&events)
    }

    async fn locked<'a, F>(
        &'a self,
        runbook: &Runbook,
        exec: &'a Exec<'a>,
        body: F,
    ) -> Result<RunReport>
    where
        F: FnOnce(
            &'a Exec<'a>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<RunReport>> + Send + 'a>,
        >,
    {
        let span = tracing::info_span!("run", run_id = %exec.run_id(), runbook = %runbook.name, target = %runbook.target, mode = ?exec.mode());
        let lease = match (&self.lock, exec.mode()) {
            (Some((lock, wait)), Mode::Execute) => {
                let holder =
                    LockHolder::this_process(exec.run_id(), &runbook.name, self.clock.now());
                Some((lock, lock.acquire(&runbook.target, &holder, *wait).await?))
            }
            _ => None,
        };
        if let Some((_, l)) = &lease {
            exec.hold(l);
        }
        // While the body runs, watch the lease: a lost lock cancels the run (the body goes on
        // to record that and stop; it is never dropped half-way).
        let watch = lease.as_ref().map(|(_, l)| l.lost.clone());
        let body = body(exec).instrument(span);
        tokio::pin!(body);
        let lost = async {
            match &watch {
                Some(w) => w.lost().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(lost);
        let mut watching = true;
        let result = loop {
            tokio::select! {
                r = &mut body => break r,
                reason = &mut lost, if watching => {
                    watching = false;
                    if let Some((_, l)) = &lease {
                        exec.lose_lock(&l.key, l.fence, reason);
                    }
                }
            }
        };
        if let Some((lock, lease)) = lease
            && let Err(e) = lock.release(&lease).await
        {
            tracing::error!(error = %e, "could not release the run lock");
        }
        result
    }
}
