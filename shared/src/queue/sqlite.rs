//! `SqliteQueue`: a durable queue in the same SQLite file as the store.
//!
//! A message row has a `visible_at` time. Receiving moves it into the
//! future by the visibility timeout and bumps `receive_count`, so a message
//! whose handler crashed comes back by itself; acknowledging deletes it.
//! Delayed delivery (retry, waits, timeouts) is just a later `visible_at`.

use super::{Delivery, Message, Queue, QueueError, QueueName};
use crate::store::sqlite::SqliteDb;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The embedded default [`Queue`].
#[derive(Clone)]
pub struct SqliteQueue {
    db: Arc<SqliteDb>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn backend(e: impl std::fmt::Display) -> QueueError {
    QueueError::Backend(e.to_string())
}

impl SqliteQueue {
    pub fn new(db: Arc<SqliteDb>) -> SqliteQueue {
        SqliteQueue { db }
    }

    async fn wait_until_visible(&self, max_wait: Duration) {
        let notified = self.db.notify.notified();
        let next_visible: Option<i64> = {
            let conn = self.db.lock();
            conn.query_row("SELECT MIN(visible_at) FROM queue", [], |r| r.get(0))
                .optional()
                .ok()
                .flatten()
                .flatten()
        };
        let wait = match next_visible {
            Some(at) => {
                let ms = (at - now_ms()).max(0) as u64;
                max_wait.min(Duration::from_millis(ms))
            }
            None => max_wait,
        };
        if wait.is_zero() {
            return;
        }
        let _ = tokio::time::timeout(wait, notified).await;
    }

    /// Number of messages in a queue (visible or not), for tests and status.
    pub fn depth(&self, queue: QueueName) -> Result<i64, QueueError> {
        self.db
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM queue WHERE queue = ?1",
                params![queue.as_str()],
                |r| r.get(0),
            )
            .map_err(backend)
    }

    /// Dead letters: (queue, body, reason), oldest first.
    pub fn dead_letters(&self) -> Result<Vec<(String, String, String)>, QueueError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare("SELECT queue, body, reason FROM dead_letters ORDER BY id")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }
}

#[async_trait::async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, messages: &[Message], delay: Duration) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        let visible_at = now_ms() + delay.as_millis() as i64;
        {
            let mut conn = self.db.lock();
            let tx = conn.transaction().map_err(backend)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO queue (queue, body, visible_at) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(backend)?;
                for message in messages {
                    let body = serde_json::to_string(message).map_err(backend)?;
                    stmt.execute(params![message.queue().as_str(), body, visible_at])
                        .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)?;
        }
        self.db.notify.notify_waiters();
        Ok(())
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let now = now_ms();
        let rows: Vec<(i64, String, u32)> = {
            let conn = self.db.lock();
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE queue SET visible_at = ?3, receive_count = receive_count + 1
                     WHERE id IN (SELECT id FROM queue WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, id LIMIT ?4)
                     RETURNING id, body, receive_count",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        queue.as_str(),
                        now,
                        now + visibility.as_millis() as i64,
                        max as i64
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        let mut deliveries = Vec::with_capacity(rows.len());
        for (id, body, receive_count) in rows {
            let receipt = format!("{id}:{receive_count}");
            match serde_json::from_str::<Message>(&body) {
                Ok(message) => deliveries.push(Delivery {
                    message,
                    receipt,
                    receive_count,
                }),
                Err(e) => {
                    // A body nobody can handle goes straight to the dead letters.
                    let conn = self.db.lock();
                    conn.execute(
                        "INSERT INTO dead_letters (queue, body, receive_count, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![queue.as_str(), body, receive_count, format!("malformed message: {e}"), now],
                    )
                    .map_err(backend)?;
                    conn.execute("DELETE FROM queue WHERE id = ?1", params![id])
                        .map_err(backend)?;
                }
            }
        }
        // Results come out of RETURNING in no promised order.
        deliveries.sort_by_key(|d| receipt_id(&d.receipt).unwrap_or(0));
        Ok(deliveries)
    }

    async fn ack(&self, _queue: QueueName, receipts: &[String]) -> Result<(), QueueError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(backend)?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM queue WHERE id = ?1 AND receive_count = ?2")
                .map_err(backend)?;
            for receipt in receipts {
                let (id, count) = parse_receipt(receipt)?;
                stmt.execute(params![id, count]).map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)
    }

    async fn retry_later(
        &self,
        _queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        self.db
            .lock()
            .execute(
                "UPDATE queue SET visible_at = ?3 WHERE id = ?1 AND receive_count = ?2",
                params![id, count, now_ms() + delay.as_millis() as i64],
            )
            .map_err(backend)?;
        if delay.is_zero() {
            self.db.notify.notify_waiters();
        }
        Ok(())
    }

    async fn wait_for_messages(&self, max_wait: Duration) {
        self.wait_until_visible(max_wait).await
    }

    async fn dead_letter(
        &self,
        queue: QueueName,
        delivery: &Delivery,
        reason: &str,
    ) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(&delivery.receipt)?;
        let body = serde_json::to_string(&delivery.message).map_err(backend)?;
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(backend)?;
        tx.execute(
            "INSERT INTO dead_letters (queue, body, receive_count, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![queue.as_str(), body, count, reason, now_ms()],
        )
        .map_err(backend)?;
        tx.execute("DELETE FROM queue WHERE id = ?1", params![id])
            .map_err(backend)?;
        tx.commit().map_err(backend)
    }
}

fn receipt_id(receipt: &str) -> Option<i64> {
    receipt.split(':').next()?.parse().ok()
}

fn parse_receipt(receipt: &str) -> Result<(i64, i64), QueueError> {
    let mut parts = receipt.split(':');
    let id = parts.next().and_then(|p| p.parse().ok());
    let count = parts.next().and_then(|p| p.parse().ok());
    match (id, count) {
        (Some(id), Some(count)) => Ok((id, count)),
        _ => Err(QueueError::Malformed(format!("bad receipt '{receipt}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteDb;

    fn queue() -> SqliteQueue {
        SqliteQueue::new(SqliteDb::open(":memory:").unwrap())
    }

    fn run(id: &str) -> Message {
        Message::RunAction {
            action_execution_id: id.into(),
        }
    }

    #[tokio::test]
    async fn a_received_message_is_invisible_until_the_timeout_then_comes_back() {
        let q = queue();
        q.send(&[run("a")], Duration::ZERO).await.unwrap();
        let first = q
            .receive(QueueName::RunTask, 10, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].receive_count, 1);
        assert!(
            q.receive(QueueName::RunTask, 10, Duration::from_secs(1))
                .await
                .unwrap()
                .is_empty()
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        let again = q
            .receive(QueueName::RunTask, 10, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receive_count, 2);
        // The first receipt is stale: acking it must not delete the message.
        q.ack(QueueName::RunTask, &[first[0].receipt.clone()])
            .await
            .unwrap();
        assert_eq!(q.depth(QueueName::RunTask).unwrap(), 1);
        q.ack(QueueName::RunTask, &[again[0].receipt.clone()])
            .await
            .unwrap();
        assert_eq!(q.depth(QueueName::RunTask).unwrap(), 0);
    }

    #[tokio::test]
    async fn delayed_messages_and_queues_are_separate() {
        let q = queue();
        q.send(&[run("late")], Duration::from_secs(60))
            .await
            .unwrap();
        q.send(
            &[Message::StartTask {
                task_execution_id: "t".into(),
            }],
            Duration::ZERO,
        )
        .await
        .unwrap();
        assert!(
            q.receive(QueueName::RunTask, 10, Duration::from_secs(1))
                .await
                .unwrap()
                .is_empty()
        );
        let got = q
            .receive(QueueName::CompleteTask, 10, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            got[0].message,
            Message::StartTask {
                task_execution_id: "t".into()
            }
        );
    }

    #[tokio::test]
    async fn dead_lettered_messages_leave_the_queue_with_their_reason() {
        let q = queue();
        q.send(&[run("poison")], Duration::ZERO).await.unwrap();
        let got = q
            .receive(QueueName::RunTask, 1, Duration::from_secs(1))
            .await
            .unwrap();
        q.dead_letter(QueueName::RunTask, &got[0], "received 5 times")
            .await
            .unwrap();
        assert_eq!(q.depth(QueueName::RunTask).unwrap(), 0);
        let dead = q.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].2, "received 5 times");
    }
}
