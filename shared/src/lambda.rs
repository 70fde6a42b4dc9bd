//! The Lambda glue shared by the three functions in `functions/`: their
//! configuration, logging, dependencies, and the two event handlers.
//!
//! - [`handle_sqs_event`]: run-task and complete-task. Each record of the
//!   SQS batch is parsed, handed to [`crate::worker::process_message`] (the
//!   same per-message logic as the local worker) in its own tracing span,
//!   and mapped to SQS's partial batch response: a handled message is left
//!   out (Lambda deletes it), a failed one is listed in
//!   `batchItemFailures` so that only it comes back. A retryable failure
//!   also shortens the message's visibility (`ChangeMessageVisibility`), as
//!   the local worker's `retry_later` does.
//! - Poison messages: SQS's redrive policy moves a message to the DLQ on
//!   the receive after `maxReceiveCount`. The functions are given the same
//!   number (`BORA_MAX_RECEIVE_COUNT`) and give up one receive earlier, so on
//!   the last receive the message's count exceeds their limit: [`crate::handlers::give_up`] fails its
//!   execution with the reason, the message is reported failed, and the
//!   redrive policy moves it to the DLQ.
//! - [`api_router`]: create-execution's API Gateway (HTTP API, v2)
//!   requests, answered by the REST API v2 router on DynamoDB (the store
//!   and [`DynamoDbCatalog`]), so every route works behind API Gateway.

use crate::actions::ActionRegistry;
use crate::api::{self, ApiSettings, ApiState};
use crate::handlers::Deps;
use crate::queue::sqs::{SqsQueue, SqsSettings};
use crate::queue::{Message, QueueName};
use crate::seal::{KmsKeyring, KmsSealer};
use crate::store::dynamodb::{DynamoDbCatalog, DynamoDbSettings, DynamoDbStore};
use crate::target::policy::{self, OutboundPolicy};
use crate::worker::{Disposition, process_message};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::sync::Arc;
use std::time::Duration;
use tracing::{Instrument, info_span, warn};

/// A configuration problem found at start-up. The function fails its init,
/// so the problem shows in the first invocation's log, naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required environment variable is not set. Deployment's fault.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// An environment variable has a value that cannot be used.
    /// Deployment's fault.
    #[error("environment variable {name}: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

/// The functions' configuration, read once from the environment.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    /// `BORA_TABLE`: the DynamoDB table.
    pub table: String,
    /// `BORA_RUN_TASK_QUEUE_URL`.
    pub run_task_queue_url: String,
    /// `BORA_COMPLETE_TASK_QUEUE_URL`.
    pub complete_task_queue_url: String,
    /// `BORA_KMS_KEY_ID`: the key that wraps the executions' data keys.
    pub kms_key_id: String,
    /// `AWS_ENDPOINT_URL` (tests: the AWS emulator); unset in AWS.
    pub endpoint_url: Option<String>,
    /// Receives after which a message is given up: the queues'
    /// `maxReceiveCount` (`BORA_MAX_RECEIVE_COUNT`, default 6) minus one, see
    /// the module doc.
    pub max_receives: u32,
    /// `BORA_HOME_CLOUD_URL`: the home cloud's Keystone (legacy mode).
    pub home_cloud_url: Option<String>,
    /// `BORA_FINISHED_TTL_DAYS`: keep finished executions this many days
    /// (unset: forever).
    pub finished_ttl: Option<Duration>,
    /// `BORA_ACTION_LEASE_SECONDS` (default: the handlers' default): how
    /// long run-task holds an action; set it to the run-task queue's
    /// visibility timeout.
    pub action_lease: Option<Duration>,
    /// `BORA_TARGET_ALLOW_CIDRS` and `BORA_ALLOW_INSECURE_TARGETS`: where
    /// caller-supplied cloud URLs may point (as for `bora serve`).
    pub policy: OutboundPolicy,
}

impl LambdaConfig {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|e| ConfigError::Invalid {
                        name,
                        reason: format!("'{v}' is not a whole number ({e})"),
                    }),
            }
        };
        Ok(LambdaConfig {
            table: required("BORA_TABLE")?,
            run_task_queue_url: required("BORA_RUN_TASK_QUEUE_URL")?,
            complete_task_queue_url: required("BORA_COMPLETE_TASK_QUEUE_URL")?,
            kms_key_id: required("BORA_KMS_KEY_ID")?,
            endpoint_url: lookup("AWS_ENDPOINT_URL").filter(|v| !v.is_empty()),
            max_receives: match number("BORA_MAX_RECEIVE_COUNT")?.unwrap_or(6) {
                0 | 1 => {
                    return Err(ConfigError::Invalid {
                        name: "BORA_MAX_RECEIVE_COUNT",
                        reason: "must be at least 2 (one try, then give up)".into(),
                    });
                }
                count => count as u32 - 1,
            },
            home_cloud_url: lookup("BORA_HOME_CLOUD_URL").filter(|v| !v.is_empty()),
            finished_ttl: number("BORA_FINISHED_TTL_DAYS")?
                .map(|days| Duration::from_secs(days * 86_400)),
            action_lease: number("BORA_ACTION_LEASE_SECONDS")?.map(Duration::from_secs),
            policy: OutboundPolicy::from_values(
                lookup(policy::ALLOW_CIDRS_VAR).as_deref(),
                lookup(policy::ALLOW_INSECURE_VAR).as_deref(),
            )
            .map_err(|e| ConfigError::Invalid {
                name: policy::ALLOW_CIDRS_VAR,
                reason: e.to_string(),
            })?,
        })
    }
}

/// The log filter for a `RUST_LOG` value: its common forms (`info`,
/// `warn,bora=debug`) as `Targets`, which, unlike `EnvFilter`, needs no
/// regex engine in every function; unset or unreadable means `info`.
fn log_filter(value: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// JSON logs on stdout (CloudWatch), level from `RUST_LOG` (default info).
/// Safe to call twice.
pub fn init_tracing() {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .finish();
    let _ = logs.with(filter).try_init();
}

/// What a function needs, built once per Lambda instance.
pub struct AwsDeps {
    /// The handlers' dependencies (DynamoDB store, SQS queue, actions).
    pub deps: Arc<Deps>,
    /// The DynamoDB adapter itself (the API's catalog shares its table).
    pub store: DynamoDbStore,
    /// The SQS adapter itself (for visibility changes and deferrals).
    pub queue: SqsQueue,
    /// The configuration it was built from.
    pub config: LambdaConfig,
}

impl AwsDeps {
    /// Build the SDK clients and adapters from the configuration.
    pub async fn build(config: LambdaConfig) -> AwsDeps {
        crate::http::ensure_crypto_provider();
        let sdk = crate::aws::sdk_config(config.endpoint_url.as_deref()).await;
        let store = DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.table.clone(),
            DynamoDbSettings {
                finished_ttl: config.finished_ttl,
            },
        );
        let queue = SqsQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            SqsSettings {
                run_task_url: config.run_task_queue_url.clone(),
                complete_task_url: config.complete_task_queue_url.clone(),
                dead_letter_url: None,
                wait_time: Duration::ZERO,
            },
        );
        let mut deps = Deps::new(
            Arc::new(store.clone()),
            Arc::new(queue.clone()),
            Arc::new(ActionRegistry::standard()),
        );
        // Registered sub-workflows and ad-hoc actions resolve through the
        // catalog on the same table.
        deps.resolver = Some(Arc::new(DynamoDbCatalog::new(
            store.clone(),
            api::DEFAULT_PROJECT_ID,
        )));
        // Every Lambda instance must open what another one sealed: a data
        // key per root execution, wrapped by the deployment's KMS key and
        // stored beside the sealed token (see `seal::kms`).
        deps.keyring = Arc::new(KmsKeyring::new(KmsSealer::new(
            aws_sdk_kms::Client::new(&sdk),
            config.kms_key_id.clone(),
        )));
        deps.policy = config.policy.clone();
        if let Some(lease) = config.action_lease {
            deps.settings.action_lease = lease;
        }
        AwsDeps {
            deps: Arc::new(deps),
            store,
            queue,
            config,
        }
    }
}

fn message_type(message: &Message) -> &'static str {
    match message {
        Message::RunAction { .. } => "run_action",
        Message::StartTask { .. } => "start_task",
        Message::ActionDone { .. } => "action_done",
        Message::TaskTimer { .. } => "task_timer",
    }
}

/// The execution a message belongs to, for its log span (one read; an
/// unknown id gives an empty field rather than an error).
async fn execution_of(deps: &Deps, message: &Message) -> String {
    crate::handlers::complete_task::execution_of(deps, message)
        .await
        .unwrap_or_default()
}

/// Handle one SQS batch for `queue` and report the messages that failed.
pub async fn handle_sqs_event(
    aws: &AwsDeps,
    queue: QueueName,
    event: SqsEvent,
) -> SqsBatchResponse {
    let handled = event
        .records
        .into_iter()
        .map(|record| handle_record(aws, queue, record));
    let failures: Vec<String> = futures_util::future::join_all(handled)
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// Handle one record; returns its message id when it failed.
async fn handle_record(aws: &AwsDeps, queue: QueueName, record: SqsMessage) -> Option<String> {
    let message_id = record.message_id.clone().unwrap_or_default();
    let body = record.body.clone().unwrap_or_default();
    let receive_count: u32 = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let message: Message = match serde_json::from_str(&body) {
        Ok(message) => message,
        Err(e) => {
            // Nobody can handle it: let it fail until the redrive policy
            // moves it to the DLQ.
            warn!(message_id, error = %e, "malformed message");
            return Some(message_id);
        }
    };
    let not_before = record
        .message_attributes
        .get(crate::queue::sqs::NOT_BEFORE_ATTRIBUTE)
        .and_then(|a| a.string_value.as_deref())
        .and_then(|v| v.parse().ok());
    match aws.queue.defer_if_early(queue, &body, not_before).await {
        // Sent again with the remaining delay: this early copy is done.
        Ok(true) => return None,
        Ok(false) => {}
        Err(e) => {
            warn!(message_id, error = %e, "could not defer an early message");
            return Some(message_id);
        }
    }
    let execution_id = execution_of(&aws.deps, &message).await;
    let span = info_span!(
        "message",
        message_id = %message_id,
        message_type = message_type(&message),
        execution_id = %execution_id,
        receive_count,
    );
    async {
        match process_message(&aws.deps, &message, receive_count, aws.config.max_receives).await {
            Disposition::Ack => None,
            Disposition::RetryAfter(delay) => {
                if let Some(receipt) = &record.receipt_handle
                    && let Err(e) = aws.queue_retry_later(queue, receipt, delay).await
                {
                    warn!(error = %e, "could not shorten the visibility; the message returns after the visibility timeout");
                }
                Some(message_id.clone())
            }
            Disposition::Redeliver | Disposition::DeadLetter { .. } => Some(message_id.clone()),
        }
    }
    .instrument(span)
    .await
}

impl AwsDeps {
    async fn queue_retry_later(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), crate::queue::QueueError> {
        use crate::queue::Queue;
        self.queue.retry_later(queue, receipt, delay).await
    }
}

/// create-execution's service: the whole REST API v2 (the same router as
/// `bora serve`) on DynamoDB, for `lambda_http::run`. Work that `bora
/// serve` leaves running after an answer runs before it here, since Lambda
/// freezes an instance once it answered.
pub fn api_router(aws: &AwsDeps) -> axum::Router {
    let settings = ApiSettings {
        home_auth_url: aws.config.home_cloud_url.clone(),
        background_work: false,
        ..ApiSettings::default()
    };
    let catalog = DynamoDbCatalog::new(aws.store.clone(), settings.project_id.clone());
    api::router(ApiState {
        deps: aws.deps.clone(),
        catalog: Arc::new(catalog),
        settings: Arc::new(settings),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(name: &str) -> Option<String> {
        match name {
            "BORA_TABLE" => Some("t".into()),
            "BORA_RUN_TASK_QUEUE_URL" => Some("https://sqs/run".into()),
            "BORA_COMPLETE_TASK_QUEUE_URL" => Some("https://sqs/complete".into()),
            "BORA_KMS_KEY_ID" => Some("alias/bora".into()),
            _ => None,
        }
    }

    #[test]
    fn a_missing_variable_is_named() {
        let error = LambdaConfig::from_lookup(|name| {
            (name != "BORA_COMPLETE_TASK_QUEUE_URL")
                .then(|| full(name))
                .flatten()
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment variable BORA_COMPLETE_TASK_QUEUE_URL is not set"
        );
    }

    #[test]
    fn the_functions_give_up_one_receive_before_the_redrive_policy() {
        let config = LambdaConfig::from_lookup(full).unwrap();
        assert_eq!(config.max_receives, 5);
        assert_eq!(config.finished_ttl, None);
        let config = LambdaConfig::from_lookup(|name| match name {
            "BORA_MAX_RECEIVE_COUNT" => Some("3".into()),
            "BORA_FINISHED_TTL_DAYS" => Some("2".into()),
            other => full(other),
        })
        .unwrap();
        assert_eq!(config.max_receives, 2);
        assert_eq!(config.finished_ttl, Some(Duration::from_secs(2 * 86_400)));
        let error = LambdaConfig::from_lookup(|name| match name {
            "BORA_MAX_RECEIVE_COUNT" => Some("many".into()),
            other => full(other),
        })
        .unwrap_err();
        assert!(
            error.to_string().contains("BORA_MAX_RECEIVE_COUNT"),
            "{error}"
        );
    }

    #[test]
    fn rust_log_sets_levels_per_target_and_defaults_to_info() {
        use tracing::Level;
        let f = log_filter(Some("warn,bora=debug"));
        assert!(f.would_enable("bora::handlers", &Level::DEBUG));
        assert!(!f.would_enable("aws_smithy", &Level::INFO));
        let f = log_filter(None);
        assert!(f.would_enable("bora", &Level::INFO));
        assert!(!f.would_enable("bora", &Level::DEBUG));
    }

    #[test]
    fn the_outbound_policy_is_read_with_the_rest_and_a_bad_cidr_is_named() {
        let config = LambdaConfig::from_lookup(full).unwrap();
        assert_eq!(config.policy, OutboundPolicy::default());
        let error = LambdaConfig::from_lookup(|name| match name {
            "BORA_TARGET_ALLOW_CIDRS" => Some("10.0.0.0/33".into()),
            other => full(other),
        })
        .unwrap_err();
        assert!(
            error.to_string().contains("BORA_TARGET_ALLOW_CIDRS"),
            "{error}"
        );
        let config = LambdaConfig::from_lookup(|name| match name {
            "BORA_TARGET_ALLOW_CIDRS" => Some("127.0.0.0/8".into()),
            other => full(other),
        })
        .unwrap();
        assert_ne!(config.policy, OutboundPolicy::default());
    }
}
