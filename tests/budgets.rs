//! Daily budgets through the real binary (`chatbot`, the local server, on the offline model) and
//! the real SDK: every test body runs against the in-process store and against DynamoDB (moto,
//! serialised as DynamoDB serialises writes to an item; `tests/moto_rig/moto_serial.py`).
//!
//! Costs are read back from the responses and from the EMF documents and summary lines the
//! process prints, and compared exactly (decimal).

mod binary_rig;
mod evidence;
mod lambda_emulator;
mod moto_rig;

use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use binary_rig::{Answer, Server, StoreKind, TABLE, base_env, chat, create_table, dec};
use futures_util::StreamExt;
use moto_rig::moto::Moto;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// A short system prompt and reply cap, so the worst case is easy to state.
const SYSTEM: &str = "Be brief.";
const MAX_TOKENS: u64 = 200;

/// The documented worst case of a one-message request on Nova Micro: one input token per byte
/// of system prompt and message plus 16 per message (the system prompt counts as one), and
/// `maxTokens` of output. No Lambda or API Gateway part on the local server.
fn worst_case(message: &str) -> Decimal {
    let input = (SYSTEM.len() + message.len()) as u64 + 16 * 2;
    let per1k = Decimal::from(1000);
    Decimal::from(input) * Decimal::from_str("0.000035").unwrap() / per1k
        + Decimal::from(MAX_TOKENS) * Decimal::from_str("0.00014").unwrap() / per1k
}

/// The budget tests' settings: the short system prompt and reply cap above, plus `extra`.
fn with_budget<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("CHATBOT_SYSTEM_PROMPT", SYSTEM),
        ("CHATBOT_MAX_TOKENS", "200"),
    ];
    env.extend_from_slice(extra);
    env
}

/// The service counter of today, read from DynamoDB (the in-process store is not visible
/// from outside the process).
async fn service_counter(server: &Server) -> Option<(Decimal, Decimal, Decimal)> {
    let client = server.dynamodb()?;
    let day = time::OffsetDateTime::now_utc().date();
    let pk = format!(
        "budget#service#{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    let item = client
        .get_item()
        .table_name(TABLE)
        .key("PK", AttributeValue::S(pk))
        .key("SK", AttributeValue::S("counter".into()))
        .send()
        .await
        .unwrap()
        .item?;
    // Stored in whole attodollars (10⁻¹⁸ USD).
    let n = |k: &str| {
        let units: i128 = item[k].as_n().unwrap().parse().unwrap();
        Decimal::from_i128_with_scale(units, 18).normalize()
    };
    Some((n("committed"), n("reserved"), n("spent")))
}

/// A refusal: 429, `budget_exhausted`, which budget in words, no amount, and `Retry-After` =
/// the seconds to the next UTC midnight.
fn assert_refusal(a: &Answer, scope_words: &str) {
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "budget_exhausted");
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(scope_words), "{message}");
    assert!(
        !message.chars().any(|c| c.is_ascii_digit() || c == '$'),
        "no amounts: {message}"
    );
    let retry: i64 = a
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let midnight = (now.date() + time::Duration::days(1))
        .midnight()
        .assume_utc();
    let expected = (midnight - now).whole_seconds();
    assert!(
        (retry - expected).abs() <= 5,
        "Retry-After {retry}, expected ~{expected}"
    );
}

both_stores!(parallel_requests_never_overrun_the_budget:
    parallel_requests_never_overrun_the_budget_in_process,
    parallel_requests_never_overrun_the_budget_on_dynamodb);

/// 50 requests at once against a service budget of three worst cases: the costs of those served
/// add up to no more than the budget; then, one at a time, a request is served exactly while
/// what is left covers its worst case.
async fn parallel_requests_never_overrun_the_budget(kind: StoreKind) {
    let message = "hi";
    let w = worst_case(message);
    let budget = w * Decimal::from(3);
    let budget_text = budget.to_string();
    let server = Server::start(
        kind,
        &with_budget(&[("CHATBOT_DAILY_BUDGET_USD", &budget_text)]),
    )
    .await;
    let client = server.client(2);
    let answers =
        futures_util::future::join_all((0..50).map(|_| chat(&client, &server.url, message))).await;
    let served: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status != 200).collect();
    assert!(!served.is_empty() && !refused.is_empty(), "some of each");
    for a in &refused {
        assert_refusal(a, "This service has used up its daily budget");
    }
    let mut spent: Decimal = served
        .iter()
        .map(|a| dec(&a.body["cost"]["totalUsd"]))
        .sum();
    assert!(spent <= budget, "served {spent} > budget {budget}");
    eprintln!(
        "{kind:?}: {} served, {} refused; spent {spent} of {budget}",
        served.len(),
        refused.len()
    );

    // The evidence says the same: one document per request, the reservation is the worst
    // case, the settlement is the cost, refusals are counted.
    let docs = server.wait_chat_docs(50).await;
    for d in &docs {
        if d["statusCode"] == 200 {
            assert_eq!(dec(&d["budgetReservedUsd"]), w, "{d}");
            assert_eq!(dec(&d["budgetSettledUsd"]), dec(&d["CostUSD"]), "{d}");
            assert_eq!(d["BudgetRejections"], Value::Null, "{d}");
        } else {
            assert_eq!(d["budgetRejected"], "service", "{d}");
            assert_eq!(d["BudgetRejections"], 1, "{d}");
            assert_eq!(d["Errors"], 0, "a refusal is not an error: {d}");
        }
    }
    let settled: Decimal = docs
        .iter()
        .filter(|d| d["statusCode"] == 200)
        .map(|d| dec(&d["budgetSettledUsd"]))
        .sum();
    assert_eq!(settled, spent);

    // One at a time: served while budget − spent ≥ worst case, refused from then on.
    let mut refused_at = None;
    for _ in 0..40 {
        let room = budget - spent;
        let a = chat(&client, &server.url, message).await;
        if a.status == 200 {
            assert!(room >= w, "served with {room} left < {w}");
            spent += dec(&a.body["cost"]["totalUsd"]);
        } else {
            assert_refusal(&a, "This service");
            assert!(room < w, "refused with {room} left ≥ {w}");
            refused_at = Some(room);
            break;
        }
    }
    assert!(refused_at.is_some(), "the budget ran out");
    if let Some((committed, reserved, stored_spent)) = service_counter(&server).await {
        assert_eq!(reserved, Decimal::ZERO);
        assert_eq!(stored_spent, spent);
        assert_eq!(committed, spent);
    }
}

both_stores!(one_client_exhausted_while_another_is_served:
    one_client_exhausted_while_another_is_served_in_process,
    one_client_exhausted_while_another_is_served_on_dynamodb);

/// A client budget of two worst cases: 127.0.0.2 is served until it is refused; 127.0.0.3 is
/// served right after.
async fn one_client_exhausted_while_another_is_served(kind: StoreKind) {
    let message = "hello";
    let w = worst_case(message);
    let budget = w * Decimal::from(2);
    let budget_text = budget.to_string();
    let server = Server::start(
        kind,
        &with_budget(&[("CHATBOT_CLIENT_DAILY_BUDGET_USD", &budget_text)]),
    )
    .await;
    let first = server.client(2);
    let mut served = 0;
    let refusal = loop {
        let a = chat(&first, &server.url, message).await;
        if a.status != 200 {
            break a;
        }
        served += 1;
        assert!(served < 50, "never refused");
    };
    assert!(served >= 2, "served {served}");
    assert_refusal(&refusal, "You have used up your daily budget");
    let id = refusal.body["error"]["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let summary = server.summary(&id).await;
    assert_eq!(summary["budgetRejected"], "client");
    assert!(
        !summary.to_string().contains("127.0.0.2"),
        "no address in the logs: {summary}"
    );

    let second = server.client(3);
    let a = chat(&second, &server.url, message).await;
    assert_eq!(a.status, 200, "{}", a.body);
    // Still refused for the first.
    assert_eq!(chat(&first, &server.url, message).await.status, 429);
}

both_stores!(settlement_follows_what_bedrock_may_have_billed:
    settlement_follows_what_bedrock_may_have_billed_in_process,
    settlement_follows_what_bedrock_may_have_billed_on_dynamodb);

/// Success settles to the cost; a model error, a timeout and a client abort settle to the
/// estimated cost (tokens may have been billed but were never reported), never zero; a
/// throttled call (Bedrock bills nothing) settles to zero.
async fn settlement_follows_what_bedrock_may_have_billed(kind: StoreKind) {
    let server = Server::start(kind, &with_budget(&[("CHATBOT_DAILY_BUDGET_USD", "1")])).await;
    let client = server.client(2);
    let cases = [
        ("ok", "a question", 200),
        ("model error", "x #fault=model-error", 502),
        ("timeout", "x #fault=hang", 504),
        ("throttled", "x #fault=throttle", 429),
    ];
    let mut total = Decimal::ZERO;
    for (label, text, status) in cases {
        let a = chat(&client, &server.url, text).await;
        assert_eq!(a.status, status, "{label}: {}", a.body);
        let id = a.body["requestId"]
            .as_str()
            .or(a.body["error"]["requestId"].as_str())
            .unwrap()
            .to_owned();
        let s = server.summary(&id).await;
        let reserved = dec(&s["budgetReservedUsd"]);
        let settled = dec(&s["budgetSettledUsd"]);
        assert_eq!(reserved, worst_case(text), "{label}: {s}");
        match label {
            "ok" => assert_eq!(settled, dec(&a.body["cost"]["totalUsd"]), "{s}"),
            "throttled" => assert_eq!(settled, Decimal::ZERO, "{s}"),
            // Usage never came: settled to the estimate the summary reports, flagged, never
            // zero (the input was sent, so it may have been billed).
            _ => {
                assert_eq!(s["costEstimated"], true, "{label}: {s}");
                assert_eq!(settled, dec(&s["costUsd"]), "{label}: {s}");
                assert!(
                    settled > Decimal::ZERO && settled < reserved,
                    "{label}: {s}"
                );
            }
        }
        total += settled;
    }

    // A streamed reply the client abandons after the first words.
    let text = "tell me slowly #fault=slow";
    let res = client
        .post(format!("{}/api/chat/stream", server.url))
        .json(&json!({"messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    drop(body);
    let summary = server.summary(&id).await;
    assert_eq!(summary["clientAborted"], true, "{summary}");
    assert_eq!(summary["costEstimated"], true, "{summary}");
    let settled = dec(&summary["budgetSettledUsd"]);
    assert_eq!(settled, dec(&summary["costUsd"]), "{summary}");
    assert!(
        settled > Decimal::ZERO && settled < worst_case(text),
        "{summary}"
    );
    total += settled;

    // In DynamoDB every reservation is settled (the abort's in the background): nothing stays
    // reserved, and spent is what the summaries say.
    if kind == StoreKind::Dynamo {
        let mut last = None;
        for _ in 0..100 {
            last = service_counter(&server).await;
            if last.is_some_and(|(_, reserved, _)| reserved == Decimal::ZERO) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (committed, reserved, spent) = last.expect("a counter");
        assert_eq!(reserved, Decimal::ZERO);
        assert_eq!(spent, total);
        assert_eq!(committed, total);
    }
}

/// The store cannot be reached (nothing listens at its endpoint): by default the request is
/// refused with 503 `budget_unavailable`; with `CHATBOT_BUDGET_FAIL_OPEN=true` it is served
/// unbudgeted. Both count a store error.
#[tokio::test]
async fn an_unreachable_store_fails_closed_or_open_as_configured() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    for fail_open in [false, true] {
        let mut env = base_env(StoreKind::Dynamo, Some(&endpoint));
        env.push(("CHATBOT_DAILY_BUDGET_USD".into(), "1".into()));
        env.push(("CHATBOT_BUDGET_FAIL_OPEN".into(), fail_open.to_string()));
        let server = Server::spawn(env, None).await;
        let a = chat(&server.client(2), &server.url, "hi").await;
        let docs = server.wait_chat_docs(1).await;
        assert_eq!(docs[0]["StoreErrors"], 1, "{}", docs[0]);
        let id = a.body["requestId"]
            .as_str()
            .or(a.body["error"]["requestId"].as_str())
            .unwrap()
            .to_owned();
        let summary = server.summary(&id).await;
        if fail_open {
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(summary["budgetFailedOpen"], true, "{summary}");
        } else {
            assert_eq!(a.status, 503, "{}", a.body);
            assert_eq!(a.body["error"]["code"], "budget_unavailable");
            assert_eq!(docs[0]["Errors"], 1, "fail-closed is the service's failure");
        }
    }
}

/// A budget of 0, a negative one, or not a number: neither binary starts, and the message
/// names the variable.
#[test]
fn bad_budget_configuration_refuses_start_up() {
    for (var, value) in [
        ("CHATBOT_DAILY_BUDGET_USD", "0"),
        ("CHATBOT_DAILY_BUDGET_USD", "-1"),
        ("CHATBOT_DAILY_BUDGET_USD", "five"),
        ("CHATBOT_CLIENT_DAILY_BUDGET_USD", "0.00"),
    ] {
        for (binary, lambda) in [
            (env!("CARGO_BIN_EXE_chatbot"), false),
            (env!("CARGO_BIN_EXE_bootstrap"), true),
        ] {
            let mut cmd = Command::new(binary);
            cmd.env_clear()
                .env("CHATBOT_LISTEN", "127.0.0.1:0")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env(var, value);
            if lambda {
                // Start-up fails before the runtime API is ever called.
                cmd.env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9");
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{binary} started with {var}={value}");
            assert!(stderr.contains(var), "{binary}: {stderr}");
        }
    }
}

/// With DynamoDB, the budget check is one round trip before the model call and one after it:
/// one `UpdateItem` each for one budget, one `TransactWriteItems` each for two (counted by a
/// relay in front of moto).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_check_is_one_round_trip_before_and_one_after() {
    let moto = Moto::start_serialized();
    let relay = moto_rig::cbor_proxy::CborProxy::start(&moto.endpoint).await;
    for (budgets, expected) in [
        (
            &[("CHATBOT_DAILY_BUDGET_USD", "1")][..],
            ["UpdateItem", "UpdateItem"],
        ),
        (
            &[
                ("CHATBOT_DAILY_BUDGET_USD", "1"),
                ("CHATBOT_CLIENT_DAILY_BUDGET_USD", "1"),
            ][..],
            ["TransactWriteItems", "TransactWriteItems"],
        ),
    ] {
        let mut env = base_env(StoreKind::Dynamo, Some(&relay.endpoint));
        let out = create_table(&env);
        // The second round finds the table there already.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("ResourceInUseException"),
            "{stderr}"
        );
        env.extend(budgets.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let server = Server::spawn(env, None).await;
        let client = server.client(2);
        for _ in 0..3 {
            let before = relay.operations().len();
            let a = chat(&client, &server.url, "hi").await;
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(&relay.operations()[before..], expected);
        }
    }
}

/// `chatbot create-table` makes the table `chatbot_service::store::schema` declares (which the
/// template test holds `serverless.yml` to): keys, on-demand, encryption, TTL, PITR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_makes_the_declared_schema() {
    use chatbot_service::store::schema::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
    let server_moto = Moto::start(&[]);
    let env = base_env(StoreKind::Dynamo, Some(&server_moto.endpoint));
    let run = || create_table(&env);
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = run();
    assert!(
        !again.status.success(),
        "a second run reports the table exists"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("ResourceInUseException"));

    let conf = aws_sdk_dynamodb::Config::builder()
        .http_client(chatbot_service::aws::https_client())
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(&server_moto.endpoint)
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let table = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<(String, String)> = table
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (PARTITION_KEY.to_owned(), "HASH".to_owned()),
            (SORT_KEY.to_owned(), "RANGE".to_owned())
        ]
    );
    for a in table.attribute_definitions() {
        assert_eq!(a.attribute_type().as_str(), "S", "{a:?}");
    }
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );
    assert_eq!(
        table
            .sse_description()
            .and_then(|s| s.status())
            .map(|s| s.as_str()),
        Some("ENABLED")
    );
    let ttl = client
        .describe_time_to_live()
        .table_name(TABLE)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
    let pitr = client
        .describe_continuous_backups()
        .table_name(TABLE)
        .send()
        .await
        .unwrap()
        .continuous_backups_description
        .unwrap()
        .point_in_time_recovery_description
        .unwrap();
    assert_eq!(
        pitr.point_in_time_recovery_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
}
