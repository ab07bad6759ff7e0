//! What the service adds to a model call: handler + validation + telemetry (JSON summary line,
//! EMF document, X-Ray spans exported over UDP) per request, against the zero-latency offline
//! model, in process.
//!
//! `cargo bench --bench overhead` prints p50/p90/p99 of
//!   - `model`: the bare SDK Converse call to the offline model over loopback (the baseline), and
//!   - `request`: the same call made through the whole router (`POST /api/chat`),
//!
//! and their difference, which is the overhead; then the same request with both daily budgets
//! on (in-process store), whose difference is the budget check; then criterion's estimate of the
//! mean.
//! Sequential requests on a current-thread runtime, so the numbers are per-request costs.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use bedrock_offline::OfflineConfig;
use chatbot_service::config::ServiceConfig;
use chatbot_service::hosts;
use chatbot_service::hosts::ModelEndpoint;
use chatbot_service::request::Role;
use chatbot_service::telemetry::{EmfSink, logging};
use chatbot_service::validation::{ChatRequest, Message};
use criterion::Criterion;
use http_body_util::BodyExt;
use tower::ServiceExt;

const SAMPLES: usize = 20_000;
const BODY: &str = r#"{"messages":[{"role":"user","content":"How much does this request cost?"}],"conversationId":"bench"}"#;

fn percentiles(mut d: Vec<Duration>) -> [f64; 3] {
    d.sort();
    let at = |p: f64| d[((d.len() as f64 * p) as usize).min(d.len() - 1)].as_secs_f64() * 1e3;
    [at(0.50), at(0.90), at(0.99)]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Production-like telemetry: JSON logs (to a sink here), X-Ray export to a UDP "daemon".
    let daemon = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = ServiceConfig::defaults();
    config.xray_daemon_address = Some(daemon.local_addr().unwrap().to_string());
    config.lambda_memory_mb = Some(128);
    let _guard = logging::init_with_writer(&config, true, std::io::sink).unwrap();
    let (sink, emf) = EmfSink::memory();
    let offline = rt
        .block_on(bedrock_offline::spawn(
            OfflineConfig::default(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let endpoint = ModelEndpoint::Local(offline.endpoint_url());
    let state = rt.block_on(hosts::start(config, endpoint, sink)).unwrap();
    let router = chatbot_service::app(state.clone());
    // The same service with both daily budgets on (in-process store; never reached), so the
    // budget check's share shows as a third line.
    let mut budgeted = ServiceConfig::defaults();
    budgeted.lambda_memory_mb = Some(128);
    budgeted.daily_budget_usd = Some("1000000".into());
    budgeted.client_daily_budget_usd = Some("1000000".into());
    let budgeted = rt
        .block_on(hosts::start(
            budgeted,
            ModelEndpoint::Local(offline.endpoint_url()),
            EmfSink::memory().0,
        ))
        .unwrap();
    let budgeted_router = chatbot_service::app(budgeted);
    let model = state.model().clone();
    let model_id = state.model_id().to_owned();
    let req = ChatRequest {
        messages: vec![Message {
            role: Role::User,
            content: "How much does this request cost?".into(),
        }],
        conversation_id: Some("bench".into()),
        variant: None,
    };

    let through = |router: axum::Router| async move {
        let res = router
            .oneshot(
                Request::post("/api/chat")
                    .header("content-type", "application/json")
                    .body(Body::from(BODY))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.into_body().collect().await.unwrap();
    };
    let one_budgeted = || through(budgeted_router.clone());
    let one_request = || {
        let router = router.clone();
        async move {
            let res = router
                .oneshot(
                    Request::post("/api/chat")
                        .header("content-type", "application/json")
                        .body(Body::from(BODY))
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.into_body().collect().await.unwrap();
        }
    };
    let one_call = || {
        let (model, model_id, req) = (model.clone(), model_id.clone(), req.clone());
        async move {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(25);
            model.converse(&model_id, &req, deadline).await.unwrap();
        }
    };

    let (mut requests, mut calls) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    let mut budgeted_requests = Vec::with_capacity(SAMPLES);
    rt.block_on(async {
        for _ in 0..2_000 {
            one_request().await;
            one_budgeted().await;
            one_call().await;
        }
        // Interleave so all three see the same machine state.
        for i in 0..SAMPLES {
            let t = Instant::now();
            one_call().await;
            calls.push(t.elapsed());
            let t = Instant::now();
            one_request().await;
            requests.push(t.elapsed());
            let t = Instant::now();
            one_budgeted().await;
            budgeted_requests.push(t.elapsed());
            if i % 1_000 == 0 {
                emf.lock().unwrap().clear();
            }
        }
    });
    let [m50, m90, m99] = percentiles(calls);
    let [r50, r90, r99] = percentiles(requests);
    let [b50, b90, b99] = percentiles(budgeted_requests);
    println!(
        "overhead: {SAMPLES} sequential requests, zero-latency offline model, telemetry on (JSON logs, EMF, X-Ray UDP)"
    );
    println!(
        "  {:<28} {:>9} {:>9} {:>9}",
        "", "p50 ms", "p90 ms", "p99 ms"
    );
    println!(
        "  {:<28} {m50:>9.3} {m90:>9.3} {m99:>9.3}",
        "model call alone (SDK)"
    );
    println!(
        "  {:<28} {r50:>9.3} {r90:>9.3} {r99:>9.3}",
        "request through the router"
    );
    println!(
        "  {:<28} {:>9.3} {:>9.3} {:>9.3}",
        "overhead (difference)",
        r50 - m50,
        r90 - m90,
        r99 - m99
    );
    println!(
        "  {:<28} {b50:>9.3} {b90:>9.3} {b99:>9.3}",
        "… with both daily budgets on"
    );
    println!(
        "  {:<28} {:>9.3} {:>9.3} {:>9.3}",
        "budget check (difference)",
        b50 - r50,
        b90 - r90,
        b99 - r99
    );

    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    c.bench_function("model call alone", |b| b.to_async(&rt).iter(one_call));
    c.bench_function("request through the router", |b| {
        b.to_async(&rt).iter(one_request)
    });
    c.final_summary();
}
