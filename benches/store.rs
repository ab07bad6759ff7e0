//! What the state store adds to a request, on the in-process store and on DynamoDB (moto over
//! loopback, started here; `scripts/setup-test-deps` installs it):
//!
//! - the budget check: one reservation and one settlement, for one budget and for two (service +
//!   client) — two round trips on DynamoDB (`tests/budgets.rs` counts them);
//! - conversation memory: a turn on a conversation of 5 stored turns — take it, load its
//!   history, store the new turn (three round trips on DynamoDB).
//!
//! `cargo bench --bench store` prints p50 and p99 of each.

#[path = "../tests/moto_rig/mod.rs"]
mod moto_rig;

use std::time::{Duration, Instant};

use chatbot_service::store::{
    Append, DynamoStore, InProcessStore, Reserve, Settle, Store, StoredTurn, dynamo,
};
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

/// One memory turn, `n` times over (each on a fresh conversation of 5 turns of ~600 bytes).
async fn measure_turns(store: &Store, n: usize) -> (f64, f64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let turn = StoredTurn {
        user: "How do I read a file line by line in Rust? ".repeat(4),
        assistant: "Use BufReader::new(file).lines() and handle each io::Result. ".repeat(7),
        at: now,
    };
    let mut times = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let id = format!("bench-{i}");
        let append = |after| Append {
            id: &id,
            after,
            turn: &turn,
            expires_at: now + 3600,
            turn_expires_at: now + 7200,
        };
        store.append_turn(&append(None)).await.unwrap();
        for _ in 1..5 {
            let head = store.begin_turn(&id, "setup", now + 60, now).await.unwrap();
            store
                .append_turn(&append(Some((head, "setup"))))
                .await
                .unwrap();
        }
        let t = Instant::now();
        let head = store.begin_turn(&id, "lease", now + 60, now).await.unwrap();
        let history = store.turns(&id).await.unwrap();
        assert_eq!(history.len(), 5);
        store
            .append_turn(&append(Some((head, "lease"))))
            .await
            .unwrap_or_else(|e| panic!("conversation {i}: storing turn 6 after {head:?}: {e:?}"));
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
    println!("state store, per request");
    println!("  {:<52} {:>9} {:>9}", "", "p50 ms", "p99 ms");
    rt.block_on(async {
        let memory = Store::InProcess(InProcessStore::new());
        for counters in [1, 2] {
            let (p50, p99) = measure(&memory, counters, 100_000).await;
            println!(
                "  {:<52} {p50:>9.4} {p99:>9.4}",
                format!("budget check, in-process, {counters} budget(s)")
            );
        }
        let (p50, p99) = measure_turns(&memory, 20_000).await;
        println!(
            "  {:<52} {p50:>9.4} {p99:>9.4}",
            "memory turn (take, load 5 turns, store), in-process"
        );
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
        let shared =
            chatbot_service::aws::sdk_config(&chatbot_service::config::ServiceConfig::defaults())
                .await;
        let store = Store::Dynamo(DynamoStore::new(
            // Generous: with the service's 2 s (1 s per attempt), a moto stall on this busy
            // machine lets the SDK retry a transaction moto already applied, and moto ignores the
            // retry's idempotency token (its code never reads ClientRequestToken; DynamoDB
            // honours it), so the retry fails as a Conflict. This measures latency only.
            dynamo::client(&shared, Duration::from_secs(20)),
            "bench".into(),
        ));
        for counters in [1, 2] {
            let (p50, p99) = measure(&store, counters, 500).await;
            println!(
                "  {:<52} {p50:>9.3} {p99:>9.3}",
                format!("budget check, DynamoDB (moto), {counters} budget(s)")
            );
        }
        let (p50, p99) = measure_turns(&store, 200).await;
        println!(
            "  {:<52} {p50:>9.3} {p99:>9.3}",
            "memory turn (take, load 5 turns, store), DynamoDB (moto)"
        );
    });
}
