//! The AWS backend of the test harness: a fresh DynamoDB table and fresh
//! SQS queues (with a dead-letter queue) per test, on the AWS emulator that
//! `scripts/aws/start-moto.sh` started (`AWS_ENDPOINT_URL`), used through
//! the real SDK clients.

use bora::actions::ActionRegistry;
use bora::handlers::Deps;
use bora::queue::SqsQueue;
use bora::queue::sqs::SqsSettings;
use bora::store::DynamoDbStore;
use bora::store::dynamodb::DynamoDbSettings;
use std::sync::Arc;
use std::time::Duration;

/// The emulator's URL; the AWS tests cannot run without it.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: start the AWS emulator with scripts/aws/start-moto.sh \
         and source the env file it prints (scripts/test does this)",
    )
}

/// SDK configuration pointing at the emulator.
pub async fn sdk_config() -> aws_config::SdkConfig {
    bora::aws::sdk_config(Some(&endpoint())).await
}

/// A fresh KMS key on the emulator; returns its id.
pub async fn kms_key(kms: &aws_sdk_kms::Client) -> String {
    kms.create_key()
        .send()
        .await
        .expect("create a KMS key on the emulator")
        .key_metadata
        .expect("CreateKey answers the key's metadata")
        .key_id
}

/// A unique name prefix for one test's table and queues.
pub fn unique_prefix() -> String {
    format!("bora-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// One test's table and queues, and the handlers' dependencies on them.
pub struct AwsBackend {
    pub deps: Arc<Deps>,
    pub store: DynamoDbStore,
    pub queue: SqsQueue,
    pub queues: SqsSettings,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sdk: aws_config::SdkConfig,
}

impl AwsBackend {
    /// Create a table and queues (redrive after `max_receive_count`
    /// receives) and dependencies with `actions`.
    pub async fn create(actions: ActionRegistry, max_receive_count: u32) -> AwsBackend {
        let sdk = sdk_config().await;
        let prefix = unique_prefix();
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        DynamoDbStore::create_table(&dynamodb, &prefix)
            .await
            .expect("create the table on the emulator");
        let queues =
            SqsQueue::create_queues(&sqs, &prefix, max_receive_count, Duration::from_secs(900))
                .await
                .expect("create the queues on the emulator");
        let store = DynamoDbStore::new(
            dynamodb.clone(),
            prefix.clone(),
            DynamoDbSettings {
                finished_ttl: Some(Duration::from_secs(7 * 86_400)),
            },
        );
        let queue = SqsQueue::new(sqs.clone(), queues.clone());
        let deps = Arc::new(Deps::new(
            Arc::new(store.clone()),
            Arc::new(queue.clone()),
            Arc::new(actions),
        ));
        AwsBackend {
            deps,
            store,
            queue,
            queues,
            dynamodb,
            sqs,
            sdk,
        }
    }

    /// How many execution items the table holds.
    pub async fn count_executions(&self) -> i64 {
        let mut count = 0;
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(self.store.table())
                .filter_expression("sk = :exe")
                .expression_attribute_values(
                    ":exe",
                    aws_sdk_dynamodb::types::AttributeValue::S("EXE".into()),
                )
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            count += page.count() as i64;
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return count,
            }
        }
    }
}

impl AwsBackend {
    /// The Lambda functions' configuration for this backend's table and
    /// queues, as their environment would give it.
    pub fn lambda_config(
        &self,
        kms_key_id: &str,
        max_receive_count: u32,
    ) -> bora::lambda::LambdaConfig {
        bora::lambda::LambdaConfig::from_lookup(|name| match name {
            "BORA_TABLE" => Some(self.store.table().to_string()),
            "BORA_RUN_TASK_QUEUE_URL" => Some(self.queues.run_task_url.clone()),
            "BORA_COMPLETE_TASK_QUEUE_URL" => Some(self.queues.complete_task_url.clone()),
            "BORA_KMS_KEY_ID" => Some(kms_key_id.to_string()),
            "BORA_MAX_RECEIVE_COUNT" => Some(max_receive_count.to_string()),
            "AWS_ENDPOINT_URL" => Some(endpoint()),
            // The test clouds listen on loopback (scripts/test allows it).
            "BORA_TARGET_ALLOW_CIDRS" => std::env::var(name).ok(),
            _ => None,
        })
        .unwrap()
    }
}
