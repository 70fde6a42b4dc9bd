//! The local worker: the loop that plays SQS + Lambda on one machine.
//!
//! N workers share the queue. Each takes a batch of complete-task messages
//! (moving workflows forward comes first), then a batch of run-task
//! messages, hands each message to its handler, and acknowledges what was
//! handled. A message whose handler failed in a retryable way is given
//! back; one that failed `max_receives` times goes to the dead letters and
//! its execution ends in ERROR with the reason. In AWS, SQS and Lambda's
//! event source mapping do exactly this, with the same handlers.

use crate::handlers::{self, Deps, HandlerError};
use crate::queue::{Delivery, Message, QueueName};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, warn};

/// How the workers poll and give up.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub workers: usize,
    /// Messages taken per receive.
    pub batch: usize,
    /// How long a received message stays invisible to other workers.
    pub visibility_timeout: Duration,
    /// After this many receives a message is a poison message.
    pub max_receives: u32,
    /// How long an idle worker waits before looking again (it is woken
    /// earlier when a message is sent).
    pub idle_wait: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            workers: 8,
            batch: 16,
            visibility_timeout: Duration::from_secs(900),
            max_receives: 5,
            idle_wait: Duration::from_millis(200),
        }
    }
}

/// Run workers until `shutdown` turns true.
pub async fn run(deps: Arc<Deps>, settings: WorkerSettings, shutdown: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for _ in 0..settings.workers.max(1) {
        let deps = deps.clone();
        let settings = settings.clone();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            worker_loop(&deps, &settings, shutdown).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn worker_loop(
    deps: &Arc<Deps>,
    settings: &WorkerSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut handled = 0;
        for queue in [QueueName::CompleteTask, QueueName::RunTask] {
            handled += poll_once(deps, settings, queue).await;
        }
        if handled == 0 {
            tokio::select! {
                _ = deps.queue.wait_for_messages(settings.idle_wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Receive and handle one batch of one queue; returns how many messages
/// were received.
pub async fn poll_once(deps: &Arc<Deps>, settings: &WorkerSettings, queue: QueueName) -> usize {
    let batch = match deps
        .queue
        .receive(queue, settings.batch, settings.visibility_timeout)
        .await
    {
        Ok(b) => b,
        Err(e) => {
            warn!(queue = queue.as_str(), error = %e, "receive failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
            return 0;
        }
    };
    let received = batch.len();
    let mut done = Vec::with_capacity(received);
    if received == 1 {
        if let Some(delivery) = batch.into_iter().next()
            && let Some(receipt) = handle_delivery(deps, settings, queue, delivery).await
        {
            done.push(receipt);
        }
    } else {
        // The messages of a batch are independent (different actions or
        // tasks; conflicts are handled by conditional writes), so they run
        // at once: a slow action does not hold up the rest of its batch.
        let mut running = tokio::task::JoinSet::new();
        for delivery in batch {
            let deps = deps.clone();
            let settings = settings.clone();
            running.spawn(async move { handle_delivery(&deps, &settings, queue, delivery).await });
        }
        while let Some(result) = running.join_next().await {
            if let Ok(Some(receipt)) = result {
                done.push(receipt);
            }
        }
    }
    if let Err(e) = deps.queue.ack(queue, &done).await {
        warn!(queue = queue.as_str(), error = %e, "ack failed; the messages will come back");
    }
    received
}

/// Handle one delivery; returns its receipt when it should be acknowledged.
async fn handle_delivery(
    deps: &Deps,
    settings: &WorkerSettings,
    queue: QueueName,
    delivery: Delivery,
) -> Option<String> {
    match process_message(
        deps,
        &delivery.message,
        delivery.receive_count,
        settings.max_receives,
    )
    .await
    {
        Disposition::Ack => Some(delivery.receipt),
        Disposition::RetryAfter(delay) => {
            if let Err(e) = deps
                .queue
                .retry_later(queue, &delivery.receipt, delay)
                .await
            {
                warn!(error = %e, "could not give the message back; it returns after the visibility timeout");
            }
            None
        }
        Disposition::Redeliver => None,
        Disposition::DeadLetter { reason } => {
            if let Err(e) = deps.queue.dead_letter(queue, &delivery, &reason).await {
                warn!(error = %e, "could not dead-letter the message");
            }
            None
        }
    }
}

/// What should become of a received message once [`process_message`] ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Handled (or a harmless duplicate): delete it.
    Ack,
    /// A retryable failure (a conflict, a busy lease, a store or queue
    /// outage): make it visible again after this delay.
    RetryAfter(Duration),
    /// A failure retrying will not fix (a bug or bad data): leave it to come
    /// back after the visibility timeout until it is dead-lettered, so the
    /// give-up path records a reason on its execution.
    Redeliver,
    /// Received more than `max_receives` times: its execution was already
    /// failed with `reason` ([`handlers::give_up`]); move it to the dead
    /// letters.
    DeadLetter {
        /// Why, for the dead-letter record and the logs.
        reason: String,
    },
}

/// The per-message logic shared by the local worker and the Lambda
/// functions: give up on a poison message (received more than
/// `max_receives` times), otherwise route the message to its handler and
/// map the outcome to what the queue should do with it.
pub async fn process_message(
    deps: &Deps,
    message: &Message,
    receive_count: u32,
    max_receives: u32,
) -> Disposition {
    if receive_count > max_receives {
        let reason = format!(
            "message {} was received {} times without success and was moved to the dead-letter queue",
            describe(message),
            receive_count - 1
        );
        warn!(%reason, "poison message");
        if let Err(e) = handlers::give_up(deps, message, &reason).await {
            warn!(error = %e, "could not mark the execution failed");
        }
        return Disposition::DeadLetter { reason };
    }
    match handle_message(deps, message).await {
        Ok(()) => Disposition::Ack,
        Err(e) if e.is_retryable() => {
            debug!(message = %describe(message), error = %e, "will retry");
            Disposition::RetryAfter(match e {
                HandlerError::Busy(_) => Duration::from_secs(1),
                _ => Duration::from_millis(50),
            })
        }
        Err(e) => {
            // Not retryable: a bug or bad data. Retrying will not help;
            // let it come back until it is dead-lettered, with a reason.
            warn!(message = %describe(message), error = %e, "handler failed");
            Disposition::Redeliver
        }
    }
}

/// Route a message to its handler.
pub async fn handle_message(deps: &Deps, message: &Message) -> Result<(), HandlerError> {
    match message {
        Message::RunAction {
            action_execution_id,
        } => handlers::run_task(deps, action_execution_id).await,
        other => handlers::complete_task(deps, other).await,
    }
}

fn describe(message: &Message) -> String {
    serde_json::to_string(message).unwrap_or_else(|_| format!("{message:?}"))
}
