//! The budget check's own cost, per request: one reservation and one settlement on the state
//! store, for one budget and for two (service + client), on the in-process store and on DynamoDB
//! (moto over loopback, started here; `scripts/setup-test-deps` installs it).
//!
//! `cargo bench --bench budget` prints p50 and p99 of reserve + settle. Each DynamoDB line is two
//! round trips (one before the model call, one after; `tests/budgets.rs` counts them).

#[path = "../tests/moto_rig/mod.rs"]
mod moto_rig;

use std::time::{Duration, Instant};

use chatbot_service::store::{DynamoStore, InProcessStore, Reserve, Settle, Store, dynamo};
use rust_decimal::Decimal;

fn percentiles(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let at = |p: f64| d[((d.len() as f64 * p) as usize).min(d.len() - 1)].as_secs_f64() * 1e3;
    (at(0.50), at(0.99))
}

async fn measure(store: &Store, counters: usize, n: usize) -> (f64, f64) {
    let keys: Vec<String> = (0..counters)
        .map(|i| format!("budget#bench{i}#day"))
        .collect();
    let amount = Decimal::new(29_505, 9);
    let reserve: Vec<Reserve> = keys
        .iter()
        .map(|k| Reserve {
            key: k.clone(),
            amount,
            limit: Decimal::from(1_000_000),
            expires_at: i64::MAX / 2,
        })
        .collect();
    let settle: Vec<Settle> = keys
        .iter()
        .map(|k| Settle {
            key: k.clone(),
            reserved: amount,
            actual: Decimal::new(6_300, 9),
        })
        .collect();
    let mut times = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t = Instant::now();
        store.reserve(&reserve).await.unwrap();
        store.settle(&settle).await.unwrap();
        if i >= n / 10 {
            times.push(t.elapsed());
        }
    }
    percentiles(times)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("budget check: reserve + settle per request");
    println!("  {:<40} {:>9} {:>9}", "", "p50 ms", "p99 ms");
    rt.block_on(async {
        let memory = Store::InProcess(InProcessStore::new());
        for counters in [1, 2] {
            let (p50, p99) = measure(&memory, counters, 100_000).await;
            println!(
                "  {:<40} {p50:>9.4} {p99:>9.4}",
                format!("in-process, {counters} budget(s)")
            );
        }
    });
    let moto = moto_rig::moto::Moto::start(&[]);
    // SAFETY: set before any other thread reads the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &moto.endpoint);
    }
    rt.block_on(async {
        dynamo::create_table_from_environment("bench")
            .await
            .unwrap();
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let store = Store::Dynamo(DynamoStore::new(
            dynamo::client(&shared, Duration::from_secs(2)),
            "bench".into(),
        ));
        for counters in [1, 2] {
            let (p50, p99) = measure(&store, counters, 500).await;
            println!(
                "  {:<40} {p50:>9.3} {p99:>9.3}",
                format!("DynamoDB (moto, loopback), {counters} budget(s)")
            );
        }
    });
}
