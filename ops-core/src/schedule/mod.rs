//! The runbook calendar: when each runbook runs, and the scheduler that runs it.
//!
//! - [`Schedule`]: a cron pattern read in an IANA time zone (DST handled as the Open Cron
//!   Pattern Specification says: a time skipped by DST runs at the first instant after the
//!   gap, a repeated time runs once), with jitter, a per-occurrence deadline, an overlap policy
//!   and a catch-up policy for occurrences missed while no scheduler ran. Pure arithmetic on
//!   instants: no clock is read here.
//! - [`OccurrenceStore`]: one record per occurrence, claimed atomically; how replicas agree.
//!   [`MemoryOccurrenceStore`] for one process, [`FileOccurrenceStore`] for the processes of
//!   one machine (the embedded default); PostgreSQL in `ops-postgres` for several machines.
//! - [`Scheduler`]: a replica that runs [`Job`]s at their occurrences through the
//!   [`crate::engine::Runner`] (journal, lock, report), on the runner's clock. Each occurrence
//!   runs once however many replicas tick; a dead replica's run is taken over after its lease
//!   and resumed from the journal; nothing is missed without a record saying so.
//! - [`ChangeControl`]: maintenance [`Window`]s, freezes and the stop-the-line switch, decided
//!   by the runner before each mutating run and journaled with who set them.
pub mod announce;
pub mod file_store;
pub mod memory_store;
pub mod scheduler;
pub mod store;

pub use crate::calendar::{
    CatchUp, Due, MAX_CATCH_UP, MAX_DELAY, MAX_WINDOW, Opening, Overlap, Schedule, ScheduleConfig,
    Window, WindowConfig,
};
pub use crate::engine::change::{
    CHANGE_CONTROL_RUN, ChangeCalendarConfig, ChangeControl, ChangeDecision, ChangeRules,
    ChangeState, ChangeSwitch, Freeze, OutsideWindow, SetBy, Verdict, WindowRule,
};
pub use announce::SEED_LEAD_TIMES;
pub use file_store::{DEFAULT_RETENTION, FileOccurrenceStore};
pub use memory_store::MemoryOccurrenceStore;
pub use scheduler::{
    Job, RunbookFactory, Scheduler, SchedulerConfig, TAKEOVER_MARGIN, Takeover, Tick, run_id,
};
pub use store::{OccurrenceRecord, OccurrenceStatus, OccurrenceStore};
