//! The `create-execution` Lambda function: API Gateway (HTTP API) requests,
//! answered by the library. See `bora::lambda::handle_api_request`; when the
//! REST router lands, the `service_fn` below becomes the router.

use bora::lambda::{AwsDeps, LambdaConfig, handle_api_request, init_tracing};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = LambdaConfig::from_env()?;
    let aws = AwsDeps::build(config).await;
    let deps = &aws.deps;
    lambda_http::run(service_fn(move |request: Request| async move {
        let (parts, body) = request.into_parts();
        Ok::<_, Error>(handle_api_request(deps, parts, body).await)
    }))
    .await
}
