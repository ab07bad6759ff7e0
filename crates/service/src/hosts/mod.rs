//! The two hosts of the one router. Each only adapts [`crate::app::app`] to its transport:
//! [`local`] serves it over TCP (plus the page), [`lambda`] hands it to the Lambda runtime.
//! Both start the service the same way, through [`start`].

pub mod lambda;
pub mod local;

use std::sync::Arc;

use crate::app::AppState;
use crate::config::ServiceConfig;
use crate::model::{ModelClient, client};
use crate::pricing::PriceTable;
use crate::telemetry::{EmfSink, Telemetry};
use crate::variants::Variants;

/// Where model calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelEndpoint {
    /// Amazon Bedrock, with region, credentials and endpoint from the standard AWS
    /// configuration (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME` redirects it, as the Lambda tests do).
    Bedrock,
    /// A Bedrock-compatible endpoint on this machine (the offline model): fixed region and
    /// dummy credentials, nothing read from the environment.
    Local(String),
}

/// Build everything a request needs, once, at start-up.
pub async fn start(
    config: ServiceConfig,
    endpoint: ModelEndpoint,
    emf: EmfSink,
) -> Result<AppState, String> {
    config.check()?;
    // Variants are checked against the price table before anything starts.
    let pricing = match &config.pricing_file {
        Some(path) => PriceTable::from_file(path).map_err(|e| e.to_string())?,
        None => PriceTable::builtin(),
    };
    let (sdk, region) = match &endpoint {
        ModelEndpoint::Local(url) => client::local(&config, url),
        ModelEndpoint::Bedrock => client::bedrock(&config).await,
    };
    let variants = Variants::from_config(
        config.model_variants.as_deref(),
        &config.model_id,
        config.fallback_model_id.as_deref(),
        config.allow_variant_choice,
        &pricing,
    )?;
    let telemetry = Arc::new(Telemetry::new(&config, Arc::new(pricing), emf));
    let model = ModelClient::new(sdk, region, &config);
    Ok(AppState::new(config, model, variants, telemetry))
}
