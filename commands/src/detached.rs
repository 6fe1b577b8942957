//! Running a command so that a caller who goes away cannot cut it in half.

use std::future::Future;

/// The detached task panicked or was aborted at shutdown.
#[derive(Debug, thiserror::Error)]
#[error("the command task did not finish: {0}")]
pub struct TaskLost(String);

/// Runs `work` on its own task and waits for it.
///
/// An HTTP handler's future is dropped when its client disconnects. A command that claims a unique
/// value, appends events and then releases or keeps the claim must never stop half-way, so every
/// command runs detached: dropping the caller drops only the wait, never the work.
pub async fn detached<F>(work: F) -> Result<F::Output, TaskLost>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(work)
        .await
        .map_err(|e| TaskLost(e.to_string()))
}
