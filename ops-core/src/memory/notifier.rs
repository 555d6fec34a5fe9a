//! A notifier that keeps what it is sent: rehearsals and tests read it back.

use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::Result;
use crate::contracts::{Notification, Notifier, Receipt};

/// Keeps every notification it is sent, in order.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::contracts::{Notification, Notifier, Severity};
/// use ops_core::memory::MemoryNotifier;
/// let n = MemoryNotifier::new("slack");
/// n.send(&Notification::new(Severity::Info, "deployed")).await?;
/// assert_eq!(n.sent()[0].title, "deployed");
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    name: String,
    sent: Mutex<Vec<Notification>>,
}

impl MemoryNotifier {
    /// An empty notifier called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            sent: Mutex::default(),
        }
    }

    /// What it was sent, in order.
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Receipt> {
        n.validate()?;
        lock(&self.sent).push(n.clone());
        Ok(Receipt {
            notifier: self.name.clone(),
            id: None,
            dedup_key: n.dedup_key.clone(),
        })
    }
}
