//! Steering a run from outside: cancel, pause, resume.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Cancels or pauses a run. Clone it to hand to another task (a signal handler, a UI).
///
/// Cancelling stops the current step at its next await point, undoes completed steps (their
/// compensations run), and records the run as cancelled. Pausing lets the current step finish
/// and holds the run at the next step boundary until [`RunControl::resume`] (or a cancel).
#[derive(Debug, Clone)]
pub struct RunControl {
    pub(crate) cancel: CancellationToken,
    pub(crate) paused: Arc<watch::Sender<bool>>,
}

impl Default for RunControl {
    fn default() -> Self {
        Self::new()
    }
}

impl RunControl {
    /// A control for a new run.
    pub fn new() -> Self {
        Self {
            cancel: CancellationToken::new(),
            paused: Arc::new(watch::channel(false).0),
        }
    }

    /// A control for one attempt of a run steered by this one: cancelling this one (or
    /// pausing it) reaches the attempt; the attempt's own cancellation (a lost lock) does not
    /// reach back, so the caller may try again.
    pub fn child(&self) -> Self {
        Self {
            cancel: self.cancel.child_token(),
            paused: self.paused.clone(),
        }
    }

    /// Cancels the run.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the run was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Holds the run at the next step boundary.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Lets a paused run go on.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Whether the run is (to be) paused.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }
}
