//! Long-running operations (`google.longrunning.Operation`): poll until `done`, surface `error`.

use std::time::Duration;

use ops_core::poll::{Every, Polled, poll_until};
use ops_core::{Error, Result};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{GcpClient, RpcStatus, operation_error_kind};

/// A long-running operation as the API returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// `projects/…/locations/…/operations/…`.
    pub name: String,
    /// Whether it finished (then exactly one of `error` / `response` is set).
    #[serde(default)]
    pub done: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcStatus>,
    /// The result (for Cloud Run writes, the service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
    /// Service-specific progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// How often an operation is polled: from `initial`, growing by half each time, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationPolling {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for OperationPolling {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(5),
        }
    }
}

impl GcpClient {
    /// Polls `op` (at `base`, the API's versioned root such as `…/v2/`, joined with its name) until done or `deadline` has passed, returning its
    /// `response`. A failed operation is an error of the kind its status says; running out of
    /// time is [`ErrorKind::Timeout`](ops_core::ErrorKind::Timeout) (the operation itself goes on).
    pub async fn await_operation(
        &self,
        base: &Url,
        op: Operation,
        deadline: Duration,
        polling: OperationPolling,
        operation: &'static str,
    ) -> Result<serde_json::Value> {
        let every = Every::growing(polling.initial, polling.max);
        let polled = poll_until(
            self.clock().as_ref(),
            deadline,
            every,
            op,
            |op| match (op.done, &op.error) {
                (false, _) => Ok(None),
                (true, Some(status)) => {
                    Err(Error::new("gcp", operation, operation_error_kind(status)))
                }
                (true, None) => Ok(Some(op.response.clone().unwrap_or_default())),
            },
            |op| async move {
                let url = self.url(base, &op.name)?;
                self.get("get_operation", url, &op.name).await
            },
        )
        .await?;
        if let Polled::TimedOut(op) = &polled {
            tracing::warn!(operation = %op.name, ?deadline, "operation still running at the deadline");
        }
        polled.or_timeout("gcp", operation, deadline)
    }
}
