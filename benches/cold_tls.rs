//! The cold path over TLS: what a fresh process's first invocation costs when its Bedrock
//! endpoint is across a network, with the connection opened during init
//! (`CHATBOT_PREWARM_TIMEOUT_MS`, default 1000) and without (`=0`, the old behaviour).
//!
//! The offline model sits behind `tests/tls_rig/`'s TLS front (a test CA the binary trusts via
//! `SSL_CERT_FILE`) with each direction delayed by `ONE_WAY` (so a round trip costs twice that);
//! the function runs under the Runtime API emulator of the tests, its first event already queued
//! when it starts (as on an on-demand cold start). Per run:
//!
//! - **init**: exec → first `/next` poll;
//! - **exec → reply**: exec → the first invocation's response posted;
//! - **1st inv**: the first invocation alone (event handed over → response posted), what the
//!   invoke phase of a cold start bills;
//! - **warm inv**: the same for the median of 5 later invocations;
//! - **TCP/TLS at init, in 1st**: connections the front accepted and TLS handshakes it completed
//!   during init and during the first invocation (median over the runs).
//!
//! `BENCH_BOOTSTRAP=path` measures that build (`bench/run cold-tls` passes the lambda-release
//! one, the artifact's profile); otherwise the bench-profile `bootstrap`. `COLD_TLS_ONE_WAY_MS`
//! (comma-separated, default `0,20`) sets the delays. Prints numbers; asserts only that replies
//! are 200.

#[path = "../tests/lambda_emulator/mod.rs"]
mod lambda_emulator;
#[path = "../tests/tls_rig/mod.rs"]
mod tls_rig;

use std::net::UdpSocket;
use std::time::Duration;

use bedrock_offline::{self as offline, OfflineConfig};
use lambda_emulator::Emulator;
use lambda_emulator::events::http_api_v2;
use tls_rig::{TestCa, TlsFront};

const RUNS: usize = 10;
const WARM_INVOCATIONS: usize = 5;
/// The two settings compared: off (the "before") and the default.
const PREWARM: [(&str, &str); 2] = [("off (0)", "0"), ("on (1000)", "1000")];

struct Sample {
    init: f64,
    exec_to_reply: f64,
    first: f64,
    warm: f64,
    init_tcp: usize,
    init_tls: usize,
    first_tcp: usize,
    first_tls: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn sample(binary: &str, env: &[(&str, &str)], front: &TlsFront) -> Sample {
    let event = http_api_v2(
        "POST",
        "/api/chat",
        &[("content-type", "application/json")],
        Some(r#"{"messages":[{"role":"user","content":"hello"}]}"#),
    );
    let emulator = Emulator::start(binary, env).await;
    let spawned = emulator.spawned_at();
    // Queued at once: the function's first poll receives it, as on a cold start.
    let first = emulator.invoke(event.clone()).await;
    assert_eq!(first.http_response().unwrap().status, 200, "{binary}");
    let polled = emulator.first_poll_at().expect("polled");
    let first_polled = first.polled_at.expect("polled");
    let mut warm = Vec::with_capacity(WARM_INVOCATIONS);
    for _ in 0..WARM_INVOCATIONS {
        let inv = emulator.invoke(event.clone()).await;
        assert_eq!(inv.http_response().unwrap().status, 200);
        warm.push(ms(inv.finished_at - inv.polled_at.expect("polled")));
    }
    emulator.shutdown().await;
    Sample {
        init: ms(polled - spawned),
        exec_to_reply: ms(first.finished_at - spawned),
        first: ms(first.finished_at - first_polled),
        warm: median(warm),
        init_tcp: front.accepts_between(spawned, polled),
        init_tls: front.handshakes_between(spawned, polled),
        first_tcp: front.accepts_between(first_polled, first.finished_at),
        first_tls: front.handshakes_between(first_polled, first.finished_at),
    }
}

fn one_way_delays() -> Vec<u64> {
    std::env::var("COLD_TLS_ONE_WAY_MS")
        .unwrap_or_else(|_| "0,20".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

fn main() {
    let binary = std::env::var("BENCH_BOOTSTRAP")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_bootstrap").to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // A UDP sink as the X-Ray daemon, so the function exports its segments as in Lambda.
    let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
    let daemon_addr = daemon.local_addr().unwrap().to_string();
    let ca = TestCa::generate();
    let ca_file = ca.ca_file().display().to_string();
    println!(
        "Cold start over TLS (test CA via SSL_CERT_FILE), offline model at zero latency, \
         medians of {RUNS} runs ({WARM_INVOCATIONS} warm invocations each); {binary}"
    );
    for one_way in one_way_delays() {
        let delay = Duration::from_millis(one_way);
        let results: Vec<Vec<Sample>> = rt.block_on(async {
            let model = offline::spawn(OfflineConfig::default(), "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            let front = TlsFront::start(model.addr(), &ca, delay).await;
            let endpoint = front.endpoint_url();
            let mut results: Vec<Vec<Sample>> = PREWARM.iter().map(|_| Vec::new()).collect();
            // Interleaved, so both settings see the same machine state.
            for _ in 0..RUNS {
                for (i, (_, bound)) in PREWARM.iter().enumerate() {
                    let env = [
                        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str()),
                        ("SSL_CERT_FILE", ca_file.as_str()),
                        ("AWS_XRAY_DAEMON_ADDRESS", daemon_addr.as_str()),
                        ("CHATBOT_PREWARM_TIMEOUT_MS", bound),
                    ];
                    results[i].push(sample(&binary, &env, &front).await);
                }
            }
            results
        });
        println!("\n  round trip {} ms ({one_way} ms each way)", 2 * one_way);
        println!(
            "  {:<10} {:>8} {:>13} {:>10} {:>10} {:>12} {:>12} {:>12}",
            "prewarm",
            "init ms",
            "exec→reply",
            "1st inv",
            "warm inv",
            "1st − warm",
            "TCP/TLS init",
            "TCP/TLS 1st"
        );
        for ((label, _), samples) in PREWARM.iter().zip(&results) {
            let m = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
            println!(
                "  {label:<10} {:>8.2} {:>13.2} {:>10.2} {:>10.2} {:>12.2} {:>12} {:>12}",
                m(|s| s.init),
                m(|s| s.exec_to_reply),
                m(|s| s.first),
                m(|s| s.warm),
                m(|s| s.first - s.warm),
                format!(
                    "{:.0}/{:.0}",
                    m(|s| s.init_tcp as f64),
                    m(|s| s.init_tls as f64)
                ),
                format!(
                    "{:.0}/{:.0}",
                    m(|s| s.first_tcp as f64),
                    m(|s| s.first_tls as f64)
                ),
            );
        }
    }
}
