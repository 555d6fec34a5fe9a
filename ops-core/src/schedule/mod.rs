//! The runbook calendar: when each runbook runs, and the scheduler that runs it.
//!
//! - [`Schedule`]: a cron pattern read in an IANA time zone (DST handled as the Open Cron
//!   Pattern Specification says: a time skipped by DST runs at the first instant after the
//!   gap, a repeated time runs once), with jitter, a per-occurrence deadline, an overlap policy
//!   and a catch-up policy for occurrences missed while no scheduler ran. Pure arithmetic on
//!   instants: no clock is read here.
pub mod spec;

pub use spec::{CatchUp, Due, MAX_CATCH_UP, MAX_DELAY, Overlap, Schedule, ScheduleConfig};
