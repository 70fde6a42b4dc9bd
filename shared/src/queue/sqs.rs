//! `SqsQueue`: the [`Queue`] port on two SQS standard queues (run-task and
//! complete-task), for AWS.
//!
//! - **send**: `SendMessageBatch` in batches of 10, the message JSON as the
//!   body. A delay becomes `DelaySeconds` (whole seconds, rounded up). SQS
//!   caps `DelaySeconds` at 900 s (15 min); a longer delay (a long
//!   `wait-before`, a retry delay of an hour) is sent with 900 s and a
//!   `not_before` message attribute (Unix ms). A receiver that gets such a
//!   message early does not hand it out: it sends it again with the
//!   remaining delay (again at most 900 s) and deletes the early copy
//!   ([`SqsQueue::defer_if_early`], used by [`Queue::receive`] and by the
//!   Lambda functions). A message thus hops every 15 minutes until due; each
//!   hop is a new message, so it never counts as a failed receive.
//! - **receive**: `ReceiveMessage` with `WaitTimeSeconds` (long polling,
//!   [`SqsSettings::wait_time`]) and the `ApproximateReceiveCount`
//!   attribute, which becomes [`Delivery::receive_count`]; the receipt is
//!   SQS's receipt handle.
//! - **ack**: `DeleteMessageBatch`. **retry_later**:
//!   `ChangeMessageVisibility` (whole seconds, rounded down so that a short
//!   back-off means "visible again now").
//! - **dead_letter**: the queues have a redrive policy to the dead-letter
//!   queue (`maxReceiveCount`, see `template.yaml`). When the adapter knows
//!   the DLQ's URL it moves the message itself, at once and with the reason
//!   as a message attribute (`SendMessage` to the DLQ, then delete), so the
//!   reason travels with it; otherwise it makes the message visible again
//!   and the redrive policy moves it after the last receive. The Lambda
//!   functions use the redrive path (they report the message as failed).

use super::{Delivery, Message, Queue, QueueError, QueueName};
use crate::aws::describe_sdk_error;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName, SendMessageBatchRequestEntry,
};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest `DelaySeconds` SQS accepts.
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// The message attribute holding the earliest delivery time (Unix ms) of a
/// message delayed longer than [`MAX_DELAY`].
pub const NOT_BEFORE_ATTRIBUTE: &str = "not_before";
/// The message attribute holding why a message was dead-lettered.
pub const REASON_ATTRIBUTE: &str = "reason";
/// SQS's batch size limit.
const BATCH: usize = 10;

/// The queue URLs and polling settings of [`SqsQueue`].
#[derive(Debug, Clone)]
pub struct SqsSettings {
    /// URL of the run-task queue.
    pub run_task_url: String,
    /// URL of the complete-task queue.
    pub complete_task_url: String,
    /// URL of the dead-letter queue, when this process may move messages
    /// there itself (the local worker on SQS); `None` to rely on the
    /// redrive policy alone.
    pub dead_letter_url: Option<String>,
    /// Long-polling wait of `receive` (at most 20 s; zero for short polls).
    pub wait_time: Duration,
}

/// The [`Queue`] on SQS; see the module doc.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    settings: SqsSettings,
}

impl std::fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsQueue")
            .field("settings", &self.settings)
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn backend<E, R>(what: &str, error: aws_sdk_sqs::error::SdkError<E, R>) -> QueueError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    QueueError::Backend(format!("SQS {what}: {}", describe_sdk_error(&error)))
}

fn build_error(e: impl std::fmt::Display) -> QueueError {
    QueueError::Backend(e.to_string())
}

/// Whole seconds of a delay for `DelaySeconds`, rounded up, capped at 900.
fn delay_seconds(delay: Duration) -> i32 {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    secs.min(MAX_DELAY.as_secs()) as i32
}

fn number_attribute(value: i64) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(value.to_string())
        .build()
        .map_err(build_error)
}

impl SqsQueue {
    /// A queue adapter over existing queues.
    pub fn new(client: Client, settings: SqsSettings) -> Self {
        SqsQueue { client, settings }
    }

    /// The URL of one of the two queues.
    pub fn url(&self, queue: QueueName) -> &str {
        match queue {
            QueueName::RunTask => &self.settings.run_task_url,
            QueueName::CompleteTask => &self.settings.complete_task_url,
        }
    }

    /// Create the run-task, complete-task and dead-letter queues named
    /// `<prefix>-run-task`, `<prefix>-complete-task`, `<prefix>-dlq`, with a
    /// redrive policy of `max_receive_count`, as `template.yaml` declares
    /// them. Returns settings naming them (with the DLQ URL). For tests and
    /// for operators without SAM.
    pub async fn create_queues(
        client: &Client,
        prefix: &str,
        max_receive_count: u32,
        visibility_timeout: Duration,
    ) -> Result<SqsSettings, QueueError> {
        let dlq_url = client
            .create_queue()
            .queue_name(format!("{prefix}-dlq"))
            .send()
            .await
            .map_err(|e| backend("CreateQueue", e))?
            .queue_url
            .unwrap_or_default();
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| backend("GetQueueAttributes", e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .unwrap_or_default();
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receive_count,
        })
        .to_string();
        let mut urls = Vec::new();
        for name in ["run-task", "complete-task"] {
            let url = client
                .create_queue()
                .queue_name(format!("{prefix}-{name}"))
                .attributes(QueueAttributeName::RedrivePolicy, &redrive)
                .attributes(
                    QueueAttributeName::VisibilityTimeout,
                    visibility_timeout.as_secs().to_string(),
                )
                .send()
                .await
                .map_err(|e| backend("CreateQueue", e))?
                .queue_url
                .unwrap_or_default();
            urls.push(url);
        }
        Ok(SqsSettings {
            run_task_url: urls[0].clone(),
            complete_task_url: urls[1].clone(),
            dead_letter_url: Some(dlq_url),
            wait_time: Duration::ZERO,
        })
    }

    /// Send bodies to a queue URL in batches of 10, each with optional
    /// attributes.
    async fn send_batch(
        &self,
        url: &str,
        entries: Vec<(String, i32, HashMap<String, MessageAttributeValue>)>,
    ) -> Result<(), QueueError> {
        for chunk in entries.chunks(BATCH) {
            let mut request = self.client.send_message_batch().queue_url(url);
            for (i, (body, delay, attributes)) in chunk.iter().enumerate() {
                request = request.entries(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(*delay)
                        .set_message_attributes(if attributes.is_empty() {
                            None
                        } else {
                            Some(attributes.clone())
                        })
                        .build()
                        .map_err(build_error)?,
                );
            }
            let out = request
                .send()
                .await
                .map_err(|e| backend("SendMessageBatch", e))?;
            if let Some(failed) = out.failed.first() {
                return Err(QueueError::Backend(format!(
                    "SQS SendMessageBatch: {} of {} messages failed ({}: {})",
                    out.failed.len(),
                    chunk.len(),
                    failed.code,
                    failed.message.as_deref().unwrap_or("no message")
                )));
            }
        }
        Ok(())
    }

    /// A message received before its `not_before` time (see the module
    /// doc) is sent again with the remaining delay; returns true when the
    /// caller must not handle it now (and should delete or acknowledge the
    /// early copy).
    pub async fn defer_if_early(
        &self,
        queue: QueueName,
        body: &str,
        not_before: Option<i64>,
    ) -> Result<bool, QueueError> {
        let Some(not_before) = not_before else {
            return Ok(false);
        };
        let remaining = not_before - now_ms();
        if remaining <= 0 {
            return Ok(false);
        }
        let mut attributes = HashMap::new();
        attributes.insert(
            NOT_BEFORE_ATTRIBUTE.to_string(),
            number_attribute(not_before)?,
        );
        let delay = delay_seconds(Duration::from_millis(remaining as u64));
        self.send_batch(self.url(queue), vec![(body.to_string(), delay, attributes)])
            .await?;
        Ok(true)
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(self.url(queue))
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| backend("DeleteMessage", e))?;
        Ok(())
    }

    /// Send a raw body to the dead-letter queue with a reason.
    async fn send_dead_letter(
        &self,
        queue: QueueName,
        body: &str,
        reason: &str,
    ) -> Result<bool, QueueError> {
        let Some(dlq) = &self.settings.dead_letter_url else {
            return Ok(false);
        };
        let mut attributes = HashMap::new();
        attributes.insert(
            REASON_ATTRIBUTE.to_string(),
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(reason)
                .build()
                .map_err(build_error)?,
        );
        attributes.insert(
            "source_queue".to_string(),
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(queue.as_str())
                .build()
                .map_err(build_error)?,
        );
        self.send_batch(dlq, vec![(body.to_string(), 0, attributes)])
            .await?;
        Ok(true)
    }
}

/// The `not_before` attribute of a received message, if any.
pub fn not_before_of(attributes: Option<&HashMap<String, MessageAttributeValue>>) -> Option<i64> {
    attributes?
        .get(NOT_BEFORE_ATTRIBUTE)?
        .string_value()?
        .parse()
        .ok()
}

#[async_trait::async_trait]
impl Queue for SqsQueue {
    async fn send(&self, messages: &[Message], delay: Duration) -> Result<(), QueueError> {
        let not_before = (delay > MAX_DELAY).then(|| now_ms() + delay.as_millis() as i64);
        let seconds = delay_seconds(delay);
        for queue in [QueueName::RunTask, QueueName::CompleteTask] {
            let mut entries = Vec::new();
            for message in messages.iter().filter(|m| m.queue() == queue) {
                let body = serde_json::to_string(message).map_err(build_error)?;
                let mut attributes = HashMap::new();
                if let Some(at) = not_before {
                    attributes.insert(NOT_BEFORE_ATTRIBUTE.to_string(), number_attribute(at)?);
                }
                entries.push((body, seconds, attributes));
            }
            if !entries.is_empty() {
                self.send_batch(self.url(queue), entries).await?;
            }
        }
        Ok(())
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(self.url(queue))
            .max_number_of_messages(max.clamp(1, BATCH) as i32)
            .wait_time_seconds(self.settings.wait_time.as_secs().min(20) as i32)
            .visibility_timeout(visibility.as_secs().clamp(1, 43_200) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names(NOT_BEFORE_ATTRIBUTE)
            .send()
            .await
            .map_err(|e| backend("ReceiveMessage", e))?;
        let mut deliveries = Vec::new();
        for received in out.messages.unwrap_or_default() {
            let (Some(body), Some(receipt)) = (received.body(), received.receipt_handle()) else {
                continue;
            };
            let receive_count = received
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            if self
                .defer_if_early(queue, body, not_before_of(received.message_attributes()))
                .await?
            {
                self.delete(queue, receipt).await?;
                continue;
            }
            match serde_json::from_str::<Message>(body) {
                Ok(message) => deliveries.push(Delivery {
                    message,
                    receipt: receipt.to_string(),
                    receive_count,
                }),
                Err(e) => {
                    // A body nobody can handle: dead-letter it now when we
                    // can; otherwise the redrive policy takes it later.
                    if self
                        .send_dead_letter(queue, body, &format!("malformed message: {e}"))
                        .await?
                    {
                        self.delete(queue, receipt).await?;
                    }
                }
            }
        }
        Ok(deliveries)
    }

    async fn ack(&self, queue: QueueName, receipts: &[String]) -> Result<(), QueueError> {
        for chunk in receipts.chunks(BATCH) {
            let mut request = self
                .client
                .delete_message_batch()
                .queue_url(self.url(queue));
            for (i, receipt) in chunk.iter().enumerate() {
                request = request.entries(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .map_err(build_error)?,
                );
            }
            request
                .send()
                .await
                .map_err(|e| backend("DeleteMessageBatch", e))?;
        }
        Ok(())
    }

    async fn retry_later(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(self.url(queue))
            .receipt_handle(receipt)
            .visibility_timeout(delay.as_secs().min(43_200) as i32)
            .send()
            .await
            .map_err(|e| backend("ChangeMessageVisibility", e))?;
        Ok(())
    }

    async fn wait_for_messages(&self, max_wait: Duration) {
        // With long polling, `receive` itself waits.
        if self.settings.wait_time.is_zero() {
            tokio::time::sleep(max_wait).await;
        }
    }

    async fn dead_letter(
        &self,
        queue: QueueName,
        delivery: &Delivery,
        reason: &str,
    ) -> Result<(), QueueError> {
        let body = serde_json::to_string(&delivery.message).map_err(build_error)?;
        if self.send_dead_letter(queue, &body, reason).await? {
            self.delete(queue, &delivery.receipt).await
        } else {
            // Visible again at once; the redrive policy moves it to the DLQ
            // on the receive after maxReceiveCount.
            self.retry_later(queue, &delivery.receipt, Duration::ZERO)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_whole_seconds_and_cap_at_fifteen_minutes() {
        assert_eq!(delay_seconds(Duration::ZERO), 0);
        assert_eq!(delay_seconds(Duration::from_millis(1)), 1);
        assert_eq!(delay_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(delay_seconds(Duration::from_secs(3600)), 900);
    }
}
