//! The Lambda function against its floor, side by side, under the Runtime API emulator of the
//! tests (`tests/lambda_emulator/`), on the zero-latency offline model:
//!
//! - **init**: exec → first `/next` poll;
//! - **first response**: exec → the first invocation's response posted (init + a cold request);
//! - **warm**: the gap between consecutive `/next` polls with 50 events queued back to back —
//!   the function's own cycle (post the response, poll, handle), model round trip included;
//! - **peak RSS** (`VmHWM`) after those 51 invocations.
//!
//! The floor is `echo_lambda`, a minimal `lambda_runtime` function built the same way.
//! `cargo bench --bench cold_start` measures the bench-profile builds; `BENCH_BINS=label=path,…`
//! measures others (`bench/run cold` passes the `lambda`-profile builds — the artifact's — and
//! `BENCH_BASELINE` adds an older build for a before/after in one run).

#[path = "../tests/lambda_emulator/mod.rs"]
mod lambda_emulator;

use std::net::UdpSocket;
use std::time::Duration;

use bedrock_offline::{self as offline, OfflineConfig};
use lambda_emulator::events::http_api_v2;
use lambda_emulator::{Emulator, InvokeOptions};

const RUNS: usize = 10;
const WARM_EVENTS: usize = 50;

struct Sample {
    init: Duration,
    first: Duration,
    warm: Duration,
    hwm_kb: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or_default()
}

async fn sample(binary: &str, env: &[(&str, &str)], echo: bool) -> Sample {
    let event = http_api_v2(
        "POST",
        "/api/chat",
        &[("content-type", "application/json")],
        Some(r#"{"messages":[{"role":"user","content":"hello"}]}"#),
    );
    let emulator = Emulator::start(binary, env).await;
    let spawned = emulator.spawned_at();
    let polled = emulator
        .wait_for_first_poll(Duration::from_secs(10))
        .await
        .expect("first poll");
    let first = emulator
        .invoke_with(event.clone(), InvokeOptions::default())
        .await;
    if !echo {
        assert_eq!(first.http_response().unwrap().status, 200, "{binary}");
    }
    let invocations = futures_util::future::join_all(
        (0..WARM_EVENTS).map(|_| emulator.invoke_with(event.clone(), InvokeOptions::default())),
    )
    .await;
    let mut polls: Vec<_> = invocations.iter().filter_map(|i| i.polled_at).collect();
    polls.sort();
    let gaps: Vec<f64> = polls
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    let hwm_kb = peak_rss_kb(emulator.pid());
    emulator.shutdown().await;
    Sample {
        init: polled - spawned,
        first: first.finished_at - spawned,
        warm: Duration::from_secs_f64(median(gaps)),
        hwm_kb,
    }
}

fn binaries() -> Vec<(String, String)> {
    let mut bins: Vec<(String, String)> = match std::env::var("BENCH_BINS") {
        Ok(list) => list
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(l, p)| (l.to_owned(), p.to_owned()))
            .collect(),
        Err(_) => vec![
            (
                "echo floor".into(),
                env!("CARGO_BIN_EXE_echo_lambda").into(),
            ),
            ("bootstrap".into(), env!("CARGO_BIN_EXE_bootstrap").into()),
        ],
    };
    if let Ok(path) = std::env::var("BENCH_BASELINE") {
        bins.push(("baseline".into(), path));
    }
    bins
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bins = binaries();
    // A UDP sink as the X-Ray daemon, so the function exports its segments as in Lambda.
    let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
    let daemon_addr = daemon.local_addr().unwrap().to_string();
    let mut results: Vec<Vec<Sample>> = (0..bins.len()).map(|_| Vec::new()).collect();
    rt.block_on(async {
        let model = offline::spawn(OfflineConfig::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let endpoint = model.endpoint_url();
        let env = [
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str()),
            ("AWS_XRAY_DAEMON_ADDRESS", daemon_addr.as_str()),
        ];
        // Interleaved, so every binary sees the same machine state.
        for _ in 0..RUNS {
            for (i, (label, path)) in bins.iter().enumerate() {
                let echo = label.starts_with("echo");
                results[i].push(sample(path, &env, echo).await);
            }
        }
    });
    println!(
        "Lambda function under the Runtime API emulator, offline model at zero latency: medians of {RUNS} runs ({WARM_EVENTS} warm invocations each)"
    );
    println!(
        "  {:<14} {:>9} {:>10} {:>13} {:>10} {:>11} {:>11}",
        "", "size MB", "init ms", "1st resp ms", "warm ms", "peak RSS", "max RSS"
    );
    for ((label, path), samples) in bins.iter().zip(&results) {
        let ms = |f: fn(&Sample) -> Duration| {
            median(samples.iter().map(|s| f(s).as_secs_f64() * 1e3).collect())
        };
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or_default() as f64 / 1e6;
        let hwm: Vec<f64> = samples.iter().map(|s| s.hwm_kb as f64 / 1024.0).collect();
        let max_hwm = hwm.iter().copied().fold(0.0, f64::max);
        println!(
            "  {label:<14} {size:>9.2} {:>10.2} {:>13.2} {:>10.3} {:>8.1} MB {:>8.1} MB",
            ms(|s| s.init),
            ms(|s| s.first),
            ms(|s| s.warm),
            median(hwm),
            max_hwm
        );
    }
}
