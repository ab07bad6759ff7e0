//! Cold start of the real release binary as a Lambda function, through the Runtime API
//! emulator used by the tests: time from exec to the first `/next` poll (init), and to the
//! first response posted (init + first request against the zero-latency offline model).
//! `cargo bench --bench cold_start` prints the median (and min/max) of 20 runs.

#[path = "../tests/lambda_emulator/mod.rs"]
mod lambda_emulator;

use std::time::Duration;

use bedrock_offline::{self as offline, OfflineConfig};
use lambda_emulator::events::http_api_v2;
use lambda_emulator::{Emulator, InvokeOptions};

const RUNS: usize = 20;

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1]))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut init, mut first) = (Vec::new(), Vec::new());
    rt.block_on(async {
        let model = offline::spawn(OfflineConfig::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let endpoint = model.endpoint_url();
        let body = r#"{"messages":[{"role":"user","content":"hello"}]}"#;
        for _ in 0..RUNS {
            let env = [("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str())];
            let emulator = Emulator::start(env!("CARGO_BIN_EXE_bootstrap"), &env).await;
            let spawned = emulator.spawned_at();
            let polled = emulator
                .wait_for_first_poll(Duration::from_secs(10))
                .await
                .expect("first poll");
            init.push(polled - spawned);
            let event = http_api_v2(
                "POST",
                "/api/chat",
                &[("content-type", "application/json")],
                Some(body),
            );
            let inv = emulator.invoke_with(event, InvokeOptions::default()).await;
            assert_eq!(inv.http_response().unwrap().status, 200);
            first.push(inv.finished_at - spawned);
            emulator.shutdown().await;
        }
    });
    let (m, lo, hi) = stats(init);
    println!(
        "cold start over {RUNS} runs of {}",
        env!("CARGO_BIN_EXE_bootstrap")
    );
    println!(
        "  exec → first /next poll (init):        median {m:.1} ms  (min {lo:.1}, max {hi:.1})"
    );
    let (m, lo, hi) = stats(first);
    println!(
        "  exec → first response posted:          median {m:.1} ms  (min {lo:.1}, max {hi:.1})"
    );
}
