//! The `complete-task` Lambda function: SQS batches from the complete-task queue, each
//! message handled by the library's shared per-message logic, partial batch
//! failures reported back. See `bora::lambda`.

use bora::lambda::{AwsDeps, LambdaConfig, handle_sqs_event, init_tracing};
use bora::queue::QueueName;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = LambdaConfig::from_env()?;
    let aws = AwsDeps::build(config).await;
    let aws = &aws;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        Ok::<_, Error>(handle_sqs_event(aws, QueueName::CompleteTask, event.payload).await)
    }))
    .await
}
