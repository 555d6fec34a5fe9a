//! Calendar arithmetic: when a schedule's occurrences fall, when a recurring window is open, and
//! who is on call.
//! Pure functions of instants (no clock is read here), used by the engine's change control and
//! by the scheduler; re-exported from [`crate::schedule`].
pub mod rotation;
pub mod spec;
pub mod window;

pub use rotation::{MAX_HAND_OFFS, Override, Rotation, RotationConfig};
pub use spec::{CatchUp, Due, MAX_CATCH_UP, MAX_DELAY, Overlap, Schedule, ScheduleConfig};
pub use window::{MAX_WINDOW, Opening, Window, WindowConfig};
