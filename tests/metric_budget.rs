//! The observability bill: every metric × dimension set × dimension values combination is a
//! billed CloudWatch custom metric. This test drives the real binary (the README's run command,
//! on the offline model) through every kind of request a stage sees — answered, streamed,
//! rejected, throttled, failed, refused by a budget, blocked by a guardrail, with the state store
//! down — and counts the combinations its real EMF output creates.
//!
//! Budget: at most 15 for a one-model stage, at most 5 more for each further model or variant.
//! The catalog (`telemetry/catalog.rs`) must match what is emitted exactly, so the dashboard and
//! alarms, which `tests/deploy_template.rs` checks against the catalog, only use metrics that
//! exist.

mod binary_rig;
mod evidence;
mod lambda_emulator;
mod moto_rig;

use std::collections::{BTreeMap, BTreeSet};

use binary_rig::{Server, StoreKind, base_env, chat, post};
use chatbot_service::telemetry::catalog::METRICS;
use serde_json::{Value, json};

/// One billed custom metric: namespace, name, and its dimension name → value pairs.
type Combination = (String, String, BTreeMap<String, String>);

fn combinations(docs: &[Value]) -> BTreeSet<Combination> {
    let mut out = BTreeSet::new();
    for d in docs {
        for directive in d["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            let ns = directive["Namespace"].as_str().unwrap().to_owned();
            for set in directive["Dimensions"].as_array().unwrap() {
                let dims: BTreeMap<String, String> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| {
                        let k = k.as_str().unwrap();
                        (k.to_owned(), d[k].as_str().unwrap().to_owned())
                    })
                    .collect();
                for m in directive["Metrics"].as_array().unwrap() {
                    let name = m["Name"].as_str().unwrap().to_owned();
                    out.insert((ns.clone(), name, dims.clone()));
                }
            }
        }
    }
    out
}

/// Metric name → the dimension sets (as sorted name lists) it was published under.
fn emitted_sets(combos: &BTreeSet<Combination>) -> BTreeMap<String, BTreeSet<Vec<String>>> {
    let mut out: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (_, name, dims) in combos {
        out.entry(name.clone())
            .or_default()
            .insert(dims.keys().cloned().collect());
    }
    out
}

fn catalog_sets() -> BTreeMap<String, BTreeSet<Vec<String>>> {
    METRICS
        .iter()
        .map(|m| {
            let sets = m
                .dimensions
                .iter()
                .map(|set| {
                    let mut names: Vec<String> = set.iter().map(|s| s.to_string()).collect();
                    names.sort();
                    names
                })
                .collect();
            (m.name.to_owned(), sets)
        })
        .collect()
}

/// Every kind of request a stage sees, each from its own client address (so no client budget
/// runs out early); then one client spends until its daily budget refuses it.
async fn traffic(server: &Server, variants: &[&str]) {
    let url = &server.url;
    let source = std::cell::Cell::new(10u8);
    let client = || {
        source.set(source.get() + 1);
        server.client(source.get())
    };
    let with_variant = |text: &str, v: &str| json!({"messages": [{"role": "user", "content": text}], "variant": v});
    for v in variants {
        let ok = post(&client(), url, &with_variant("hello", v)).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        let throttled = post(&client(), url, &with_variant("hi #fault=throttle", v)).await;
        assert_eq!(throttled.status, 429);
        let failed = post(&client(), url, &with_variant("hi #fault=error", v)).await;
        assert_eq!(failed.status, 502);
    }
    assert_eq!(chat(&client(), url, "a plain question").await.status, 200);
    let blocked = chat(&client(), url, "where is the kraken").await;
    assert_eq!(blocked.body["guardrail"]["action"], "input_blocked");
    let stream = |text: &str| {
        client()
            .post(format!("{url}/api/chat/stream"))
            .json(&json!({"messages": [{"role": "user", "content": text}]}))
            .send()
    };
    let ok = stream("stream it").await.unwrap();
    assert!(ok.text().await.unwrap().contains("event: done"));
    let midstream = stream("x #fault=midstream").await.unwrap();
    assert!(midstream.text().await.unwrap().contains("event: error"));
    // Client mistakes and other routes.
    let bad = client()
        .post(format!("{url}/api/chat"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let get = |path: &str| client().get(format!("{url}{path}")).send();
    assert_eq!(get("/api/nothing").await.unwrap().status(), 404);
    assert_eq!(get("/api/health").await.unwrap().status(), 200);
    // A client over its budget.
    let spender = server.client(3);
    let mut refused = false;
    for _ in 0..40 {
        if chat(&spender, url, "spend it").await.status == 429 {
            refused = true;
            break;
        }
    }
    assert!(refused, "the client budget refused a request");
}

/// Every EMF document the server printed, health and errors included.
fn all_docs(server: &Server) -> Vec<Value> {
    let docs: Vec<Value> = server
        .child
        .stdout()
        .snapshot()
        .into_iter()
        .filter_map(|l| l.json)
        .filter(|v| v.get("_aws").is_some())
        .collect();
    for d in &docs {
        evidence::emf::validate(d).unwrap();
    }
    docs
}

/// The documents of the same stage with its state store down (served unbudgeted):
/// `StoreErrors`.
async fn store_down_docs(extra: &[(&str, &str)]) -> Vec<Value> {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut env = base_env(StoreKind::Dynamo, Some(&endpoint));
    env.push(("CHATBOT_DAILY_BUDGET_USD".into(), "1".into()));
    env.push(("CHATBOT_BUDGET_FAIL_OPEN".into(), "true".into()));
    env.push(("CHATBOT_STORE_TIMEOUT_MS".into(), "300".into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let server = Server::spawn(env, None).await;
    assert_eq!(chat(&server.client(2), &server.url, "hi").await.status, 200);
    server.wait_chat_docs(1).await
}

/// A client budget (for `BudgetRejections`) and a guardrail on the offline model's simulated
/// one (for `GuardrailInterventions`): every optional metric is in play.
const STAGE: [(&str, &str); 4] = [
    // The worst case with a guardrail is ~$0.001 at 20 tokens; settled, a request costs
    // ~$0.0003: the spender below is refused after a handful.
    ("CHATBOT_CLIENT_DAILY_BUDGET_USD", "0.003"),
    ("CHATBOT_MAX_TOKENS", "20"),
    ("CHATBOT_GUARDRAIL_ID", "stageguard"),
    ("CHATBOT_OFFLINE_GUARDRAIL_BLOCKED_WORDS", "kraken"),
];

async fn stage(extra: &[(&str, &str)], variants: &[&str]) -> BTreeSet<Combination> {
    let mut env: Vec<(&str, &str)> = STAGE.to_vec();
    env.extend_from_slice(extra);
    let server = Server::start(StoreKind::InProcess, &env).await;
    traffic(&server, variants).await;
    // The refusal is the last request: its document is the last to be printed.
    server
        .child
        .stdout()
        .wait_for(
            |l| {
                l.json
                    .as_ref()
                    .is_some_and(|v| v.get("BudgetRejections").is_some())
            },
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("the budget refusal's EMF document");
    let mut docs = all_docs(&server);
    docs.extend(store_down_docs(extra).await);
    combinations(&docs)
}

fn report(label: &str, combos: &BTreeSet<Combination>) {
    println!(
        "{label}: {} custom metrics, ${:.2} a month at $0.30 each",
        combos.len(),
        combos.len() as f64 * 0.30
    );
    for (_, name, dims) in combos {
        println!("  {name} {dims:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_model_stage_stays_within_its_metric_budget() {
    let combos = stage(&[], &[]).await;
    report("one model", &combos);
    // The catalog is exactly what is emitted: every metric, under exactly its sets.
    assert_eq!(emitted_sets(&combos), catalog_sets());
    let service_only = combos.iter().filter(|(_, _, d)| d.len() == 1).count();
    let per_model = combos.len() - service_only;
    assert!(
        combos.len() <= 15,
        "{} custom metrics for one model: over the budget of 15",
        combos.len()
    );
    assert!(per_model <= 5, "{per_model} per model × variant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_further_model_or_variant_adds_at_most_five() {
    let one = stage(&[], &[]).await;
    let variants = [
        (
            "CHATBOT_MODEL_VARIANTS",
            "a=us.amazon.nova-micro-v1:0:50,b=us.amazon.nova-lite-v1:0:50",
        ),
        ("CHATBOT_ALLOW_VARIANT_CHOICE", "true"),
    ];
    let two = stage(&variants, &["a", "b"]).await;
    report("two variants", &two);
    let pairs = |c: &BTreeSet<Combination>| {
        c.iter()
            .filter_map(|(_, _, d)| Some((d.get("Model")?.clone(), d.get("Variant")?.clone())))
            .collect::<BTreeSet<_>>()
    };
    let (p1, p2) = (pairs(&one), pairs(&two));
    assert_eq!(p1.len(), 1, "{p1:?}");
    assert_eq!(p2.len(), 2, "{p2:?}");
    let added = two.len() as i64 - one.len() as i64;
    assert!(
        (1..=5).contains(&added),
        "a second model × variant added {added} custom metrics"
    );
    assert_eq!(emitted_sets(&two), catalog_sets());
}
