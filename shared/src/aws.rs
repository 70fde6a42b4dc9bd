//! AWS SDK set-up shared by the DynamoDB, SQS and KMS adapters and by the
//! Lambda functions: one [`aws_config::SdkConfig`] per process, built with
//! an explicit HTTPS client on rustls + ring.
//!
//! The SDK crates are compiled without their default features (which would
//! bring a second TLS stack, aws-lc, and the legacy hyper 0.14 client), so
//! the SDK has no HTTP client of its own: [`sdk_config`] hands it one. The
//! same client speaks plain HTTP, which is what the tests' AWS emulator
//! (moto on 127.0.0.1) uses.

use aws_config::{BehaviorVersion, Region};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The region used when neither the environment nor the caller names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Load the SDK configuration the usual way (environment, profile, Lambda
/// role credentials), with bora's HTTPS client and, when given, an endpoint
/// override (`AWS_ENDPOINT_URL` is also honoured by the SDK itself).
pub async fn sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    crate::http::ensure_crypto_provider();
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
    if let Some(endpoint) = endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        // Lambda always sets AWS_REGION; a test or a laptop may not.
        let mut builder = config.to_builder();
        builder.set_region(Some(Region::new(DEFAULT_REGION)));
        return builder.build();
    }
    config
}

/// The message of an SDK error, with its service error code when there is
/// one (`ConditionalCheckFailedException: ...`), for logs and
/// `Backend(..)` variants. Never includes request bodies.
pub fn describe_sdk_error<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::SdkError;
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("ServiceError"),
                err.message().unwrap_or("no message")
            )
        }
        other => {
            // Walk the source chain: the top level says only "dispatch failure".
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(inner) = source {
                text.push_str(": ");
                text.push_str(&inner.to_string());
                source = inner.source();
            }
            text
        }
    }
}
