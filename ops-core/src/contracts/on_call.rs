//! Who is on call: asked by the notification router when it escalates, by incident response
//! and by the weekly review.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;

/// One stretch of on-call duty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCallShift {
    /// Who is on call.
    pub primary: String,
    /// Who backs them up (the next in the rotation), if anyone.
    pub secondary: Option<String>,
    /// When the shift began.
    pub from: DateTime<Utc>,
    /// When it hands off (exclusive).
    pub until: DateTime<Utc>,
    /// Whether `at` falls in business hours, when the whole team is at work and the on-call
    /// person is not the only one to call.
    pub business_hours: bool,
    /// Set when an override replaced the scheduled person: why, and whom it replaced.
    pub overridden: Option<String>,
}

/// Answers "who is on call at this instant".
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait OnCallSource: Send + Sync {
    /// The shift in force at `at`.
    async fn on_call(&self, at: DateTime<Utc>) -> Result<OnCallShift>;
}
