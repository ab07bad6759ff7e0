//! The two hosts of the one router. Each only adapts [`crate::app::app`] to its transport:
//! [`local`] serves it over TCP (plus the page), [`lambda`] hands it to the Lambda runtime.
//! Both start the service the same way, through [`start`].

pub mod lambda;
pub mod local;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::app::AppState;
use crate::config::{Backend, ServiceConfig};
use crate::cost::pricing::PriceTable;
use crate::model::{ModelClient, client};
use crate::offline::{self, OfflineConfig, OfflineServer};
use crate::telemetry::{EmfSink, Telemetry};
use crate::variants::Variants;

/// A started service: its state, and the embedded offline model when that is the backend
/// (kept alive as long as the service).
pub struct Started {
    pub state: AppState,
    pub offline: Option<OfflineServer>,
}

/// Build everything a request needs, once, at start-up.
pub async fn start(
    config: ServiceConfig,
    backend: Backend,
    offline_config: OfflineConfig,
    emf: EmfSink,
) -> Result<Started, String> {
    config.check()?;
    // Variants are checked against the price table before anything starts.
    let pricing = match &config.pricing_file {
        Some(path) => PriceTable::from_file(path).map_err(|e| e.to_string())?,
        None => PriceTable::builtin(),
    };
    let (offline, (sdk, region)) = match backend {
        Backend::Offline => {
            let server = offline::spawn(offline_config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .await
                .map_err(|e| format!("cannot start the offline model: {e}"))?;
            let client = client::offline(&config, &server.endpoint_url());
            (Some(server), client)
        }
        Backend::Bedrock => (None, client::bedrock(&config).await),
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
    Ok(Started {
        state: AppState::new(config, model, variants, telemetry),
        offline,
    })
}
