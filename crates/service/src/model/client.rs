//! Building the Bedrock Runtime client: created once at start-up (never per request), with
//! explicit timeouts and the SDK's standard retry mode.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_bedrockruntime::Client;

use crate::config::{DEFAULT_REGION, ServiceConfig};

fn retry(config: &ServiceConfig) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(config.max_attempts)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(2))
}

fn timeouts(config: &ServiceConfig) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(config.connect_timeout())
        .operation_attempt_timeout(config.attempt_timeout())
        .operation_timeout(config.model_timeout())
        .build()
}

/// The standard AWS configuration (region, credentials, endpoints from the environment and
/// profile), loaded once at start-up for every AWS client the service makes.
pub async fn shared_config(config: &ServiceConfig) -> aws_config::SdkConfig {
    let region = RegionProviderChain::default_provider().or_else(Region::new(DEFAULT_REGION));
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(retry(config))
        .timeout_config(timeouts(config))
        .load()
        .await
}

/// Real Bedrock: region, credentials and endpoint from the standard AWS configuration — so
/// `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` redirects it (tests point the Lambda binary at the offline
/// model that way).
pub fn bedrock(shared: &aws_config::SdkConfig) -> (Client, String) {
    let region = shared
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
    (Client::new(shared), region)
}

/// A Bedrock-compatible endpoint on this machine (the offline model): fixed region and dummy
/// credentials, nothing read from the environment (so no credential chain runs, and no EC2
/// metadata probe stalls start-up).
pub fn local(config: &ServiceConfig, endpoint: &str) -> (Client, String) {
    let conf = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(DEFAULT_REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "local"))
        .retry_config(retry(config))
        .timeout_config(timeouts(config))
        .build();
    (Client::from_conf(conf), DEFAULT_REGION.to_owned())
}
