//! Calendar arithmetic: when a schedule's occurrences fall and when a recurring window is open.
//! Pure functions of instants (no clock is read here), used by the engine's change control and
//! by the scheduler; re-exported from [`crate::schedule`].
pub mod spec;
pub mod window;

pub use spec::{CatchUp, Due, MAX_CATCH_UP, MAX_DELAY, Overlap, Schedule, ScheduleConfig};
pub use window::{MAX_WINDOW, Opening, Window, WindowConfig};
