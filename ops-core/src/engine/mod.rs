//! The runbook engine.
//!
//! A [`Runbook`] is a list of named [`Step`]s, parallel groups and approval gates acting on one
//! target. A [`Runner`] runs it:
//! - **dry run** ([`Mode::DryRun`]): reads run, so the plan reflects live state; mutations are
//!   recorded as [`PlannedAction`]s (call and arguments, secrets masked) and never run;
//! - **retries and deadlines**: each step has a [`crate::retry::RetryPolicy`], a per-attempt
//!   timeout and an overall deadline the retries never outlive;
//! - **saga**: when a step fails or the run is cancelled, the compensations of completed steps
//!   run in reverse order, each journaled; a failed compensation is reported, not hidden;
//! - **approval gates**: an [`Approver`] decides, within a timeout, under an [`ApprovalPolicy`]
//!   (several distinct approvers, four eyes, a stated default at the timeout);
//! - **change control**: a [`change::ChangeControl`] decides before each mutating run
//!   (maintenance windows, freezes, the stopped line; emergencies pass freezes);
//! - **control**: [`RunControl`] cancels (at the next await point) or pauses (at the next step
//!   boundary);
//! - **journal**: every event goes to a [`Journal`] ([`FileJournal`]: JSON lines, fsync
//!   policy, survives a torn last line); a run's [`RunReport`] is rebuilt from it alone, and
//!   [`Runner::resume`] continues an interrupted run without repeating completed steps;
//! - **lock**: a [`RunLock`] ([`FileRunLock`]) keeps two runs off one target;
//! - **progress**: [`ProgressEvent`]s for display, and tracing spans per run and step.

mod approval;
pub mod change;
mod context;
mod control;
mod journal;
mod lock;
mod model;
mod output;
mod progress;
mod report;
mod runbook;
mod runner;
mod step;

#[cfg(feature = "mock")]
pub use approval::MockApprover;
pub use approval::{
    ApprovalDecision, ApprovalPolicy, ApprovalRequest, Approver, AutoApprove, AutoApproveAs,
    DenyAll, MAX_APPROVERS, OnTimeout,
};
pub use context::StepContext;
pub use control::RunControl;
#[cfg(feature = "mock")]
pub use journal::MockJournal;
pub use journal::{
    EventKind, FileJournal, FsyncPolicy, Journal, JournalEvent, JournalFilter, MemoryJournal,
    NullJournal, RunSummary, run_summaries,
};
#[cfg(feature = "mock")]
pub use lock::MockRunLock;
pub use lock::{
    FileRunLock, LeaseLoss, LockHolder, LockLease, LockWait, RunLock, hostname, lock_conflict,
    lock_file_stem,
};
pub use model::{Category, ErrorRecord, Mode, PlannedAction, RunOutcome, StepKind};
pub use output::Output;
pub use progress::{ProgressEvent, ProgressSink, progress_channel};
pub use report::{
    ApprovalRecord, CompensationRecord, EvidenceRecord, RunReport, StepReport, StepStatus,
};
pub use runbook::{Gate, GateCondition, Item, Runbook};
pub use runner::Runner;
pub use step::{Action, ActionFuture, BuildAction, Step, StepOutput};
