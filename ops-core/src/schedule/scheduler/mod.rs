//! The scheduler: runs registered runbooks at their occurrences through a [`Runner`], on the
//! runner's clock. Several replicas sharing one [`OccurrenceStore`] (and one journal) run each
//! occurrence exactly once: an occurrence is claimed atomically before it runs, its replica
//! renews a lease while it runs, and when a replica dies another takes the occurrence over
//! after the lease and resumes its run from the journal (or fails it, as the job says).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

mod execute;

use super::store::{OccurrenceRecord, OccurrenceStatus, OccurrenceStore};
use crate::calendar::{Overlap, Schedule};
use crate::clock::SharedClock;
use crate::engine::{Mode, RunControl, Runbook, Runner};
use crate::{Error, Result};

/// Builds the runbook of one occurrence, given the occurrence (a
/// [`crate::runbooks::Procedure`] with its config, or any runbook).
pub type RunbookFactory = Arc<dyn Fn(DateTime<Utc>) -> Result<Runbook> + Send + Sync>;

/// How many times one occurrence's run is resumed after losing its run lock or its journal.
pub const MAX_LOCK_RESUMES: u32 = 3;

/// What happens to a job's occurrence whose replica died while running it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Takeover {
    /// Resume its run from the journal (completed steps are not repeated; a non-idempotent
    /// step that was in flight re-runs only if the approver says so).
    #[default]
    Resume,
    /// Record it as failed and leave it to people.
    Fail,
}

/// A runbook on a schedule.
#[derive(Clone)]
pub struct Job {
    name: String,
    schedule: Schedule,
    runbook: RunbookFactory,
    mode: Mode,
    takeover: Takeover,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("schedule", self.schedule.config())
            .field("mode", &self.mode)
            .field("takeover", &self.takeover)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// A job: `name` (a plain name, `A-Z a-z 0-9 . _ -`: it names the runs) runs the runbook
    /// `runbook` builds at every occurrence of `schedule`.
    pub fn new(
        name: &str,
        schedule: Schedule,
        runbook: impl Fn() -> Result<Runbook> + Send + Sync + 'static,
    ) -> Result<Self> {
        Self::for_occurrence(name, schedule, move |_| runbook())
    }

    /// A job whose runbook depends on the occurrence it runs for (an announcement naming the
    /// time it announces, a report of the period just ended).
    pub fn for_occurrence(
        name: &str,
        schedule: Schedule,
        runbook: impl Fn(DateTime<Utc>) -> Result<Runbook> + Send + Sync + 'static,
    ) -> Result<Self> {
        if let Some(reason) = crate::contracts::plain_name_problem(name, 100) {
            return Err(Error::invalid_input("schedule", "job", "name", reason));
        }
        Ok(Self {
            name: name.to_string(),
            schedule,
            runbook: Arc::new(runbook),
            mode: Mode::Execute,
            takeover: Takeover::Resume,
        })
    }

    /// A job running a procedure (its runbook is built, and its settings validated, at every
    /// occurrence).
    pub fn procedure<P>(name: &str, schedule: Schedule, procedure: P) -> Result<Self>
    where
        P: crate::runbooks::Procedure + 'static,
    {
        let procedure = Arc::new(procedure);
        Self::new(name, schedule, move || procedure.runbook())
    }

    /// Whether it runs as dry runs.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Runs as dry runs (plans only), for rehearsing a calendar.
    pub fn dry_run(mut self) -> Self {
        self.mode = Mode::DryRun;
        self
    }

    /// What happens when its replica dies mid-run.
    pub fn on_takeover(mut self, takeover: Takeover) -> Self {
        self.takeover = takeover;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
}

/// The run id of an occurrence: the same on every replica, so the journal refuses a second
/// run of it and a takeover finds the first.
pub fn run_id(job: &str, occurrence: DateTime<Utc>) -> String {
    format!("{job}-{}", occurrence.format("%Y%m%dT%H%M%SZ"))
}

/// What one tick decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// Occurrences this replica claimed and started.
    pub started: Vec<(String, DateTime<Utc>)>,
    /// Occurrences this replica took over from a replica that stopped renewing its lease.
    pub taken_over: Vec<(String, DateTime<Utc>)>,
    /// Occurrences this replica journaled as missed.
    pub missed: Vec<(String, DateTime<Utc>)>,
    /// Occurrences this replica journaled as skipped (the previous run was still going).
    pub skipped: Vec<(String, DateTime<Utc>)>,
    /// Occurrences waiting for a running one (`overlap = "queue"` or `"cancel-running"`).
    pub waiting: Vec<(String, DateTime<Utc>)>,
}

/// Another replica takes an occurrence over only `lease / TAKEOVER_MARGIN` after its lease
/// ran out, so the holder (which stops when the lease runs out by its own clock) has stopped
/// first despite scheduling delays and small clock differences.
pub const TAKEOVER_MARGIN: u32 = 6;

/// How a scheduler replica behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// This replica's name, unique among replicas (host and process, say).
    pub replica: String,
    /// How long a claim on a running occurrence lasts without renewal; renewed every third of
    /// it. A dead replica's occurrence is taken over within about `lease + lease / 2` (the
    /// lease, the [`TAKEOVER_MARGIN`], and the next tick).
    pub lease: Duration,
    /// The most occurrences of one job a tick decides (a later tick goes on).
    pub max_per_tick: usize,
}

impl SchedulerConfig {
    /// Defaults for `replica`: a 30-second lease, 1,000 occurrences per job and tick.
    pub fn new(replica: &str) -> Self {
        Self {
            replica: replica.to_string(),
            lease: Duration::from_secs(30),
            max_per_tick: 1000,
        }
    }
}

/// A scheduler replica. Cheap to clone (clones share it).
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    config: SchedulerConfig,
    runner: Runner,
    store: Arc<dyn OccurrenceStore>,
    jobs: BTreeMap<String, Job>,
    /// This replica's runs in flight, by job and occurrence.
    local: Mutex<BTreeMap<(String, DateTime<Utc>), tokio::task::AbortHandle>>,
    /// Told whenever a run in flight ends.
    ended: tokio::sync::Notify,
    /// Cancelled when the replica is aborted (its process "dies").
    dead: CancellationToken,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.inner.config)
            .field("jobs", &self.inner.jobs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A replica running `jobs` through `runner` (its journal, lock, approver and clock),
    /// agreeing with other replicas through `store`. Job names must be unique.
    pub fn new(
        config: SchedulerConfig,
        runner: Runner,
        store: Arc<dyn OccurrenceStore>,
        jobs: Vec<Job>,
    ) -> Result<Self> {
        let bad = |field: &str, reason: &str| {
            Error::invalid_input("schedule", "scheduler", field, reason)
        };
        if let Some(reason) = crate::contracts::plain_name_problem(&config.replica, 100) {
            return Err(bad("replica", &reason));
        }
        if config.lease < Duration::from_millis(30) {
            return Err(bad("lease", "at least 30 ms"));
        }
        if config.max_per_tick == 0 {
            return Err(bad("max_per_tick", "at least 1"));
        }
        let mut by_name = BTreeMap::new();
        for job in jobs {
            let name = job.name.clone();
            if by_name.insert(name.clone(), job).is_some() {
                return Err(bad("jobs", &format!("two jobs are named {name}")));
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                runner,
                store,
                jobs: by_name,
                local: Mutex::default(),
                ended: tokio::sync::Notify::new(),
                dead: CancellationToken::new(),
            }),
        })
    }

    fn clock(&self) -> &SharedClock {
        self.inner.runner.clock()
    }

    fn lease_until(&self) -> DateTime<Utc> {
        let lease =
            chrono::Duration::from_std(self.inner.config.lease).unwrap_or(chrono::Duration::MAX);
        self.clock()
            .now()
            .checked_add_signed(lease)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Decides what is due now: journals missed and skipped occurrences, claims and starts
    /// those to run (in the background, renewing their leases), and takes over occurrences
    /// whose replica stopped renewing. Safe to call from every replica at once.
    pub async fn tick(&self) -> Result<Tick> {
        let mut tick = Tick::default();
        if self.inner.dead.is_cancelled() {
            return Ok(tick);
        }
        self.take_over(&mut tick).await?;
        for job in self.inner.jobs.values() {
            self.tick_job(job, &mut tick).await?;
        }
        Ok(tick)
    }

    async fn take_over(&self, tick: &mut Tick) -> Result<()> {
        // Leases that ran out a margin ago: their holder has stopped by its own clock.
        let margin = chrono::Duration::from_std(self.inner.config.lease / TAKEOVER_MARGIN)
            .unwrap_or(chrono::Duration::zero());
        let now = self.clock().now() - margin;
        for expired in self.inner.store.expired(now).await? {
            if self
                .local()
                .contains_key(&(expired.schedule.clone(), expired.occurrence))
            {
                continue; // this replica's own run, still going: its heartbeat decides
            }
            let Some(job) = self.inner.jobs.get(&expired.schedule) else {
                continue; // another replica's job: it is for that replica to take over
            };
            if !self
                .inner
                .store
                .take_over(&expired, &self.inner.config.replica, self.lease_until())
                .await?
            {
                continue; // another replica won
            }
            let key = (job.name.clone(), expired.occurrence);
            tracing::warn!(job = %job.name, occurrence = %expired.occurrence, from = ?expired.replica, "took over an occurrence whose replica stopped renewing its lease");
            tick.taken_over.push(key);
            match job.takeover {
                Takeover::Resume => self.spawn(job.clone(), expired.occurrence),
                Takeover::Fail => {
                    let why = format!(
                        "its replica {} stopped while running it; not resumed (takeover = fail)",
                        expired.replica.as_deref().unwrap_or("?")
                    );
                    self.inner
                        .store
                        .finish(
                            &job.name,
                            expired.occurrence,
                            &self.inner.config.replica,
                            OccurrenceStatus::Failed,
                            Some(why),
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn tick_job(&self, job: &Job, tick: &mut Tick) -> Result<()> {
        let store = &self.inner.store;
        let now = self.clock().now();
        let since = match store.watermark(&job.name).await? {
            Some(w) => w,
            None => {
                // A new schedule starts with the occurrences after it was first seen.
                store.advance(&job.name, now).await?;
                return Ok(());
            }
        };
        let due = job
            .schedule
            .due(&job.name, since, now, self.inner.config.max_per_tick)?;
        for &o in &due.missed {
            let mut r = OccurrenceRecord::new(&job.name, o, OccurrenceStatus::Missed);
            r.replica = Some(self.inner.config.replica.clone());
            r.detail =
                Some("its deadline passed while no scheduler ran; catch-up did not run it".into());
            if store.claim(&r).await? {
                tracing::warn!(job = %job.name, occurrence = %o, "missed");
                tick.missed.push((job.name.clone(), o));
            }
        }
        let mut through = due.missed.last().copied().unwrap_or(since).max(since);
        // What runs now, read once per tick; occurrences this tick starts join it.
        let mut running = if due.run.is_empty() {
            Vec::new()
        } else {
            store.running(&job.name).await?
        };
        for &o in &due.run {
            let others: Vec<_> = running
                .iter()
                .filter(|r| r.occurrence != o)
                .cloned()
                .collect();
            if !others.is_empty() {
                match job.schedule.config().overlap {
                    Overlap::Skip => {
                        let mut r = OccurrenceRecord::new(&job.name, o, OccurrenceStatus::Skipped);
                        r.replica = Some(self.inner.config.replica.clone());
                        r.detail = Some(format!(
                            "the occurrence of {} was still running",
                            others[0].occurrence
                        ));
                        if store.claim(&r).await? {
                            tick.skipped.push((job.name.clone(), o));
                        }
                        through = o;
                        continue;
                    }
                    Overlap::Queue => {
                        tick.waiting.push((job.name.clone(), o));
                        break;
                    }
                    Overlap::CancelRunning => {
                        for r in &others {
                            store.request_cancel(&job.name, r.occurrence).await?;
                        }
                        tick.waiting.push((job.name.clone(), o));
                        break;
                    }
                }
            }
            let mut r = OccurrenceRecord::new(&job.name, o, OccurrenceStatus::Running);
            r.replica = Some(self.inner.config.replica.clone());
            r.lease_until = Some(self.lease_until());
            if store.claim(&r).await? {
                tick.started.push((job.name.clone(), o));
                self.spawn(job.clone(), o);
                running.push(r);
            } else {
                // Another replica decided it first (ran, skipped or recorded it): read again.
                running = store.running(&job.name).await?;
            }
            through = o;
        }
        if due.run.is_empty() {
            through = through.max(due.through);
        }
        store.advance(&job.name, through).await
    }

    /// Runs (or resumes) one claimed occurrence in the background, renewing its lease.
    fn spawn(&self, job: Job, occurrence: DateTime<Utc>) {
        let me = self.clone();
        let key = (job.name.clone(), occurrence);
        // Held while spawning, so the task cannot remove its entry before it is inserted.
        let mut local = self.local();
        let handle = tokio::spawn(async move {
            let control = RunControl::new();
            // The heartbeat is a task of its own: a run that blocks its thread for a while
            // (a synchronous check, a slow disk) must not starve its lease's renewals.
            let lost = CancellationToken::new();
            // Stopped with this task however it ends (aborted too: a "dead" replica must
            // not go on renewing).
            let _heartbeat = AbortOnDrop(tokio::spawn({
                let (me, job, control, lost) =
                    (me.clone(), job.clone(), control.clone(), lost.clone());
                async move {
                    me.heartbeat(&job, occurrence, &control).await;
                    lost.cancel();
                }
            }));
            let outcome = tokio::select! {
                outcome = me.execute(&job, occurrence, &control) => Some(outcome),
                () = lost.cancelled() => None,
                () = me.inner.dead.cancelled() => None,
            };
            if let Some((status, detail)) = outcome {
                let recorded = me
                    .inner
                    .store
                    .finish(
                        &job.name,
                        occurrence,
                        &me.inner.config.replica,
                        status,
                        detail,
                    )
                    .await;
                if let Err(e) = recorded {
                    // Not recorded: the lease runs out and another replica finds the run's
                    // end in the journal.
                    tracing::error!(job = %job.name, %occurrence, error = %e, "could not record the end of a run");
                }
            }
            me.local().remove(&(job.name.clone(), occurrence));
            me.inner.ended.notify_waiters();
        });
        local.insert(key, handle.abort_handle());
    }

    fn local(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<(String, DateTime<Utc>), tokio::task::AbortHandle>>
    {
        self.inner.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Renews the lease every third of it; returns when the lease is lost (the run must stop
    /// at once: another replica may hold it now). The lease counts as lost when a renewal is
    /// refused, and also when it runs out by this replica's own clock with no renewal getting
    /// through (the store unreachable): a replica stops before any other may take over
    /// ([`TAKEOVER_MARGIN`] after the lease). Cancels the run when asked to.
    async fn heartbeat(&self, job: &Job, occurrence: DateTime<Utc>, control: &RunControl) {
        let every = self.inner.config.lease / 3;
        let mut valid_until = self.lease_until();
        loop {
            let until_expiry = (valid_until - self.clock().now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            self.clock().sleep(every.min(until_expiry)).await;
            if self.clock().now() >= valid_until {
                tracing::error!(job = %job.name, %occurrence, "the lease ran out without a renewal: stopping the run");
                return;
            }
            let next = self.lease_until();
            let renewed = self
                .inner
                .store
                .renew(&job.name, occurrence, &self.inner.config.replica, next)
                .await;
            match renewed {
                Ok(Some(r)) => {
                    valid_until = next;
                    if r.cancel_requested {
                        control.cancel();
                    }
                }
                Ok(None) => {
                    tracing::error!(job = %job.name, %occurrence, "lost the lease on a running occurrence: stopping it");
                    return;
                }
                // The store is unreachable: keep running while the lease lasts.
                Err(e) => {
                    tracing::warn!(job = %job.name, %occurrence, error = %e, "could not renew a lease")
                }
            }
        }
    }

    /// Ticks until `stop` is cancelled (or the replica is aborted): at every job's next start
    /// and at least every third of the lease (to take over dead replicas' occurrences).
    /// A store that cannot be reached is logged and tried again at the next tick. Runs in
    /// flight go on after it returns, renewing their leases; [`Scheduler::drain`] waits
    /// for them.
    pub async fn run(&self, stop: CancellationToken) {
        let every = self.inner.config.lease / 3;
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(replica = %self.inner.config.replica, error = %e, "tick failed; trying again at the next");
            }
            let wait = self.next_wake().await.min(every);
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.inner.dead.cancelled() => return,
                () = self.clock().sleep(wait) => {}
            }
        }
    }

    /// How long until the earliest next start of any job still ahead (after its watermark).
    async fn next_wake(&self) -> Duration {
        let now = self.clock().now();
        let mut earliest: Option<DateTime<Utc>> = None;
        for job in self.inner.jobs.values() {
            // Unreachable store, or a job not seen yet: the regular tick looks again (never a
            // tight loop against a store that is down).
            let Ok(Some(since)) = self.inner.store.watermark(&job.name).await else {
                continue;
            };
            if let Ok(Some(next)) = job.schedule.next_after(since) {
                let start = job.schedule.start_of(&job.name, next);
                // One already due waits for a run to end: the regular tick looks again.
                if start > now {
                    earliest = Some(earliest.map_or(start, |e| e.min(start)));
                }
            }
        }
        earliest.map_or(Duration::MAX, |t| {
            (t - now).to_std().unwrap_or(Duration::ZERO)
        })
    }

    /// This replica's runs in flight.
    pub fn in_flight(&self) -> Vec<(String, DateTime<Utc>)> {
        self.local().keys().cloned().collect()
    }

    /// Waits until this replica has no run in flight.
    pub async fn drain(&self) {
        loop {
            // Registered before looking, so an end between the look and the wait is not lost.
            let ended = self.inner.ended.notified();
            if self.local().is_empty() || self.inner.dead.is_cancelled() {
                return;
            }
            ended.await;
        }
    }

    /// Stops this replica at once, as if its process died: runs stop mid-step, no end is
    /// recorded, leases are no longer renewed. Other replicas take its occurrences over once
    /// the leases run out. For rehearsals and tests of failover.
    pub fn abort(&self) {
        self.inner.dead.cancel();
        for (_, handle) in std::mem::take(&mut *self.local()) {
            handle.abort();
        }
        self.inner.ended.notify_waiters();
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
