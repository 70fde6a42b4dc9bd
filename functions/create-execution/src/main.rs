//! The `create-execution` Lambda function: API Gateway (HTTP API) requests,
//! answered by the library's REST API v2 router on DynamoDB (every route,
//! not only `POST /v2/executions`). See `bora::lambda::api_router`.

use bora::lambda::{AwsDeps, LambdaConfig, api_router, init_tracing};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = LambdaConfig::from_env()?;
    let aws = AwsDeps::build(config).await;
    lambda_http::run(api_router(&aws)).await
}
