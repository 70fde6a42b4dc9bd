//! The queue port: typed messages between the handlers, delivered at least
//! once, with delays (retry, waits, timeouts) and a visibility timeout. The
//! adapter is SQLite (a table in the same database file) for the embedded
//! default; SQS in AWS.
//!
//! Two queues, as in AWS: `run-task` carries [`Message::RunAction`] to the
//! handler that runs actions; `complete-task` carries everything else to the
//! handler that moves the workflow forward.

pub mod sqlite;
#[cfg(feature = "aws")]
pub mod sqs;

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use sqlite::SqliteQueue;
#[cfg(feature = "aws")]
pub use sqs::SqsQueue;

/// The two queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueName {
    RunTask,
    CompleteTask,
}

impl QueueName {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::RunTask => "run-task",
            QueueName::CompleteTask => "complete-task",
        }
    }
}

/// Why a timer was set on a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// `wait-before` elapsed: start the task for real.
    WaitBefore,
    /// `wait-after` elapsed: take the task's transitions.
    WaitAfter,
    /// `timeout` elapsed: fail the task if it is still running.
    Timeout,
}

/// A command for a handler. Parsed once at the edge, then applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// run-task: run one action execution.
    RunAction { action_execution_id: String },
    /// complete-task: a task execution was created; start it.
    StartTask { task_execution_id: String },
    /// complete-task: an action execution (or a sub-workflow) finished.
    ActionDone { action_execution_id: String },
    /// complete-task: a timer of a task fired.
    TaskTimer {
        task_execution_id: String,
        kind: TimerKind,
    },
}

impl Message {
    pub fn queue(&self) -> QueueName {
        match self {
            Message::RunAction { .. } => QueueName::RunTask,
            _ => QueueName::CompleteTask,
        }
    }
}

/// A received message, to be acknowledged once handled.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Message,
    /// Opaque handle for [`Queue::ack`].
    pub receipt: String,
    /// How many times this message was received, this time included.
    pub receive_count: u32,
}

/// What the queue could not do.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The backend failed; a retry may help.
    #[error("queue backend error: {0}")]
    Backend(String),
    /// A message body we cannot parse: a bug or a foreign writer.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// The queue port.
#[async_trait::async_trait]
pub trait Queue: Send + Sync {
    /// Send messages, each visible after `delay`.
    async fn send(&self, messages: &[Message], delay: Duration) -> Result<(), QueueError>;
    /// Receive up to `max` visible messages; each stays invisible to others
    /// for `visibility`, then comes back unless acknowledged.
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, QueueError>;
    /// Delete handled messages.
    async fn ack(&self, queue: QueueName, receipts: &[String]) -> Result<(), QueueError>;
    /// Make a received message visible again after `delay` (a handler that
    /// hit a conflict or a busy lease gives it back early, rather than
    /// waiting out the whole visibility timeout).
    async fn retry_later(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError>;
    /// Wait until a message may be available, at most `max_wait`. Queues
    /// with long polling may return at once and wait in `receive` instead.
    async fn wait_for_messages(&self, max_wait: Duration) {
        tokio::time::sleep(max_wait).await;
    }
    /// Move a received message to the dead-letter store.
    async fn dead_letter(
        &self,
        queue: QueueName,
        delivery: &Delivery,
        reason: &str,
    ) -> Result<(), QueueError>;
}
