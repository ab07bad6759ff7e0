//! Building the Bedrock Runtime client: created once at start-up (never per request), with
//! explicit timeouts and the SDK's standard retry mode (`crate::aws`).

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_bedrockruntime::Client;

use crate::aws::{endpoint_override, https_client, retry, timeouts};
use crate::config::{DEFAULT_REGION, ServiceConfig};

/// Real Bedrock, with the shared AWS configuration — and `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`
/// redirects it (tests point the Lambda binary at the offline model that way).
pub fn bedrock(shared: &aws_config::SdkConfig) -> (Client, String) {
    let region = shared
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
    let mut conf = aws_sdk_bedrockruntime::config::Builder::from(shared);
    if let Some(url) = endpoint_override("BEDROCK_RUNTIME") {
        conf = conf.endpoint_url(url);
    }
    (Client::from_conf(conf.build()), region)
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
        .http_client(https_client())
        .retry_config(retry(config))
        .timeout_config(timeouts(config))
        .build();
    (Client::from_conf(conf), DEFAULT_REGION.to_owned())
}
