//! The two hosts of the one router. Each only adapts [`crate::app::app`] to its transport:
//! [`local`] serves it over TCP (plus the page), [`lambda`] hands it to the Lambda runtime.
//! Both start the service the same way, through [`start`].

pub mod lambda;
pub mod local;

use std::sync::Arc;

use crate::app::{AppState, Parts};
use crate::aws::prewarm;
use crate::budget::Budgets;
use crate::config::{ServiceConfig, Switch};
use crate::conversations::Conversations;
use crate::model::{ModelClient, client};
use crate::pricing::PriceTable;
use crate::secrets::HashKey;
use crate::store::{DynamoStore, InProcessStore, Store, dynamo};
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

/// Build everything a request needs, once, at start-up, and open the connections the first
/// request would otherwise open itself (bounded by `CHATBOT_PREWARM_TIMEOUT_MS`; never fails).
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
    let hash_key = config.hash_key.as_ref().map(HashKey::new);
    // The AWS configuration is resolved once, and only when something needs it.
    let needs_aws = endpoint == ModelEndpoint::Bedrock || config.state_table.is_some();
    let shared = match needs_aws {
        true => Some(crate::aws::sdk_config(&config).await),
        false => None,
    };
    let (sdk, region) = match (&endpoint, &shared) {
        (ModelEndpoint::Local(url), _) => client::local(&config, url),
        (ModelEndpoint::Bedrock, Some(shared)) => client::bedrock(shared),
        (ModelEndpoint::Bedrock, None) => unreachable!("loaded above"),
    };
    let variants = Variants::from_config(
        config.model_variants.as_deref(),
        &config.model_id,
        config.fallback_model_id.as_deref(),
        config.allow_variant_choice,
        hash_key.clone(),
        &pricing,
    )?;
    // The connections a request will need, opened now (`aws::prewarm`): Bedrock's and the state
    // table's. Not a local model: it is on this machine, a connection to it costs nothing.
    let mut warm = match &endpoint {
        ModelEndpoint::Bedrock => vec![prewarm::bedrock(&sdk)],
        ModelEndpoint::Local(_) => Vec::new(),
    };
    let store = match (&config.state_table, &shared) {
        (Some(table), Some(shared)) => {
            let client = dynamo::client(shared, config.store_timeout());
            warm.push(prewarm::dynamodb(&client));
            Store::Dynamo(DynamoStore::new(client, table.clone()))
        }
        _ => Store::InProcess(InProcessStore::new()),
    };
    let conversations = Conversations::new(
        store.clone(),
        config.memory == Switch::On,
        config.memory_ttl(),
        config.memory_max_turns,
        config.memory_max_bytes,
    );
    let budgets = Budgets::new(
        store,
        config.daily_budget()?,
        config.client_daily_budget()?,
        config.budget_fail_open,
    );
    if budgets.enabled()
        && let Some(id) = variants.model_ids().find(|id| pricing.model(id).is_none())
    {
        return Err(format!(
            "budgets need a price for every model a request may reach; none for {id}: add it with CHATBOT_PRICING_FILE"
        ));
    }
    if budgets.enabled() && config.guardrail().is_some() && pricing.guardrails.is_none() {
        return Err(
            "budgets with a guardrail need guardrail prices: add `guardrails` with CHATBOT_PRICING_FILE"
                .into(),
        );
    }
    // Last, once every setting has been checked: a start-up that fails opens nothing.
    prewarm::warm(config.prewarm_timeout(), warm).await;
    let telemetry = Arc::new(Telemetry::new(&config, Arc::new(pricing), emf));
    let model = ModelClient::new(sdk, region, &config);
    Ok(AppState::new(Parts {
        config,
        model,
        variants,
        budgets,
        conversations,
        hash_key: hash_key.unwrap_or_else(HashKey::random),
        telemetry,
    }))
}
