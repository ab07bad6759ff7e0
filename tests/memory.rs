//! Conversation memory through the real binary (`chatbot` on the offline model), the same test
//! bodies against the in-process store and DynamoDB (moto, real SDK): the model sees the history
//! (the offline model counts every word it is sent and says which user message it answers),
//! `GET` and `DELETE`, expiry, trimming, concurrent turns, aborted streams, ids never issued;
//! and the Lambda host with DynamoDB, its store calls as X-Ray subsegments.

mod binary_rig;
mod evidence;
mod lambda_emulator;
mod moto_rig;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use binary_rig::{Answer, Server, StoreKind, TABLE, dec, post};
use evidence::xray;
use futures_util::StreamExt;
use lambda_emulator::events::http_api_v2;
use lambda_emulator::{Emulator, InvokeOptions};
use moto_rig::moto::Moto;
use serde_json::{Value, json};

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

async fn say(server: &Server, id: Option<&str>, text: &str) -> Answer {
    let mut body = json!({ "message": text });
    if let Some(id) = id {
        body["conversationId"] = json!(id);
    }
    post(&server.client(2), &server.url, &body).await
}

async fn get(server: &Server, id: &str) -> (u16, Value) {
    let res = reqwest::get(format!("{}/api/conversations/{id}", server.url))
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn delete(server: &Server, id: &str) -> u16 {
    reqwest::Client::new()
        .delete(format!("{}/api/conversations/{id}", server.url))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn tokens(a: &Answer, key: &str) -> u64 {
    a.body["usage"][key].as_u64().unwrap()
}

both_stores!(the_model_sees_the_history_and_get_returns_it:
    the_model_sees_the_history_and_get_returns_it_in_process,
    the_model_sees_the_history_and_get_returns_it_on_dynamodb);

/// Turn 2's model input holds turn 1: the offline model billed turn 1's message and reply
/// again (one token per word) and says it answers the second message; `GET` returns both turns.
async fn the_model_sees_the_history_and_get_returns_it(kind: StoreKind) {
    let server = Server::start(kind, &[]).await;
    let first = say(&server, None, "What is Rust?").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let id = first.body["conversationId"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "128 random bits, hex: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(first.body["droppedTurns"], 0);
    let reply1 = first.body["reply"].as_str().unwrap().to_owned();
    assert!(!reply1.contains("in this conversation"), "{reply1}");

    let second = say(&server, Some(&id), "And Go?").await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["conversationId"], id.as_str());
    let reply2 = second.body["reply"].as_str().unwrap().to_owned();
    assert!(
        reply2.contains("It is your message 2 in this conversation."),
        "{reply2}"
    );
    assert_eq!(
        tokens(&second, "inputTokens"),
        tokens(&first, "inputTokens") + tokens(&first, "outputTokens") + words("And Go?"),
        "turn 2's input = turn 1's input + turn 1's reply + the new message"
    );
    let s = server.summary(&second.request_id()).await;
    assert_eq!(s["historyTurns"], 1, "{s}");
    assert_eq!(s["droppedTurns"], 0);
    let history_chars = ("What is Rust?".len() + reply1.chars().count()) as u64;
    assert_eq!(s["historyTokens"], history_chars.div_ceil(4));
    assert!(
        !s.to_string().contains("What is Rust?") && !s.to_string().contains("And Go?"),
        "no conversation text in the summary line: {s}"
    );

    let (status, conversation) = get(&server, &id).await;
    assert_eq!(status, 200, "{conversation}");
    assert_eq!(
        conversation["messages"],
        json!([
            {"role": "user", "content": "What is Rust?"},
            {"role": "assistant", "content": reply1},
            {"role": "user", "content": "And Go?"},
            {"role": "assistant", "content": reply2},
        ])
    );
    assert_eq!(conversation["turns"], 2);
    assert!(
        conversation["expiresAt"].as_str().unwrap() > conversation["updatedAt"].as_str().unwrap()
    );

    // A streamed turn is remembered too.
    let res = server
        .client(2)
        .post(format!("{}/api/chat/stream", server.url))
        .json(&json!({"message": "And Zig?", "conversationId": id}))
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("event: done"), "{body}");
    assert!(
        body.contains(&format!("\"conversationId\":\"{id}\"")),
        "meta names it: {body}"
    );
    let streamed: String = body
        .split("\n\n")
        .filter(|event| event.starts_with("event: delta"))
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| {
            serde_json::from_str::<Value>(data).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        streamed.contains("It is your message 3 in this conversation."),
        "{streamed}"
    );
    let (_, conversation) = get(&server, &id).await;
    assert_eq!(conversation["turns"], 3);
}

both_stores!(delete_forgets_now_and_unknown_ids_are_not_found:
    delete_forgets_now_and_unknown_ids_are_not_found_in_process,
    delete_forgets_now_and_unknown_ids_are_not_found_on_dynamodb);

async fn delete_forgets_now_and_unknown_ids_are_not_found(kind: StoreKind) {
    let server = Server::start(kind, &[]).await;
    let id = say(&server, None, "remember me").await.body["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(say(&server, Some(&id), "again").await.status, 200);
    assert_eq!(delete(&server, &id).await, 204);
    let (status, body) = get(&server, &id).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("conversation_not_found"))
    );
    let a = say(&server, Some(&id), "still there?").await;
    assert_eq!(a.status, 404);
    assert_eq!(a.body["error"]["code"], "conversation_not_found");
    assert_eq!(delete(&server, &id).await, 404);
    if let Some(db) = server.dynamodb() {
        let left = db
            .query()
            .table_name(TABLE)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("conv#{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(left.count(), 0, "every item deleted: {:?}", left.items());
    }

    // Ids never issued.
    let never = "0123456789abcdef0123456789abcdef";
    assert_eq!(say(&server, Some(never), "hi").await.status, 404);
    assert_eq!(get(&server, never).await.0, 404);
    assert_eq!(get(&server, "not-an-id").await.0, 404);
    let bad = say(&server, Some("has space"), "hi").await;
    assert_eq!(bad.status, 400);
    // Both forms at once.
    let both = post(
        &server.client(2),
        &server.url,
        &json!({"message": "a", "messages": [{"role": "user", "content": "b"}]}),
    )
    .await;
    assert_eq!(both.status, 400);
    assert!(
        both.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not both")
    );
}

both_stores!(conversations_expire_without_activity:
    conversations_expire_without_activity_in_process,
    conversations_expire_without_activity_on_dynamodb);

/// A 4-second TTL (expiry is kept in whole seconds): a turn keeps the conversation alive; 5 s
/// of silence ends it, for every reader, though DynamoDB's TTL deletion (lazy, never on moto)
/// has not removed the items.
async fn conversations_expire_without_activity(kind: StoreKind) {
    let server = Server::start(kind, &[("CHATBOT_MEMORY_TTL_HOURS", "0.00112")]).await;
    let id = say(&server, None, "short-lived").await.body["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(say(&server, Some(&id), "still here").await.status, 200);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(get(&server, &id).await.0, 200, "the turn moved the expiry");
    tokio::time::sleep(Duration::from_millis(5000)).await;
    assert_eq!(get(&server, &id).await.0, 404);
    assert_eq!(say(&server, Some(&id), "hello?").await.status, 404);
    if let Some(db) = server.dynamodb() {
        let items = db
            .query()
            .table_name(TABLE)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("conv#{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            items.count(),
            3,
            "still stored: the read-side check decides"
        );
    }
}

both_stores!(history_is_trimmed_oldest_first_and_conversations_fill_up:
    history_is_trimmed_oldest_first_and_conversations_fill_up_in_process,
    history_is_trimmed_oldest_first_and_conversations_fill_up_on_dynamodb);

/// At most 3 messages a request: from turn 3 on, the oldest turns are left out (and said so);
/// a conversation of 4 turns is full.
async fn history_is_trimmed_oldest_first_and_conversations_fill_up(kind: StoreKind) {
    let server = Server::start(
        kind,
        &[
            ("CHATBOT_MAX_MESSAGES", "3"),
            ("CHATBOT_MEMORY_MAX_TURNS", "4"),
        ],
    )
    .await;
    let id = say(&server, None, "one").await.body["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let two = say(&server, Some(&id), "two").await;
    assert_eq!(two.body["droppedTurns"], 0);
    assert!(
        two.body["reply"]
            .as_str()
            .unwrap()
            .contains("your message 2")
    );
    let three = say(&server, Some(&id), "three").await;
    assert_eq!(three.body["droppedTurns"], 1);
    // The model saw turn 2 and the new message: two user messages, not three.
    assert!(
        three.body["reply"]
            .as_str()
            .unwrap()
            .contains("your message 2")
    );
    let s = server.summary(&three.request_id()).await;
    assert_eq!(
        (s["historyTurns"].as_u64(), s["droppedTurns"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(say(&server, Some(&id), "four").await.status, 200);
    let (_, conversation) = get(&server, &id).await;
    assert_eq!(
        conversation["turns"], 4,
        "everything is kept; only the model's input is cut"
    );
    let full = say(&server, Some(&id), "five").await;
    assert_eq!(full.status, 409);
    assert_eq!(full.body["error"]["code"], "conversation_full");
    assert!(
        full.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("start a new one")
    );
    assert_eq!(get(&server, &id).await.1["turns"], 4);
}

both_stores!(concurrent_turns_never_lose_or_duplicate_one:
    concurrent_turns_never_lose_or_duplicate_one_in_process,
    concurrent_turns_never_lose_or_duplicate_one_on_dynamodb);

/// Eight turns at once on one conversation (the model takes 300 ms, so they overlap): each is
/// either stored or refused with 409 `conversation_busy` before any model call; the stored
/// conversation holds exactly the accepted ones, each once.
async fn concurrent_turns_never_lose_or_duplicate_one(kind: StoreKind) {
    let server = Server::start(kind, &[("CHATBOT_OFFLINE_TTFT_MS", "300")]).await;
    let id = say(&server, None, "start").await.body["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let answers = futures_util::future::join_all((0..8).map(|i| {
        let (server, id) = (&server, id.clone());
        async move { (i, say(server, Some(&id), &format!("parallel {i}")).await) }
    }))
    .await;
    let mut accepted = Vec::new();
    for (i, a) in &answers {
        match a.status {
            200 => accepted.push(format!("parallel {i}")),
            409 => {
                assert_eq!(a.body["error"]["code"], "conversation_busy");
                let s = server.summary(&a.request_id()).await;
                assert!(s.get("modelId").is_none(), "refused before the model: {s}");
            }
            other => panic!("{other}: {}", a.body),
        }
    }
    assert!(!accepted.is_empty());
    eprintln!(
        "{kind:?}: {} of 8 concurrent turns accepted",
        accepted.len()
    );
    let (_, conversation) = get(&server, &id).await;
    let users: Vec<String> = conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users[0], "start");
    let mut stored = users[1..].to_vec();
    stored.sort();
    accepted.sort();
    assert_eq!(stored, accepted, "exactly the accepted turns, each once");
    assert_eq!(
        conversation["turns"].as_u64().unwrap() as usize,
        users.len()
    );
}

both_stores!(an_aborted_stream_leaves_no_half_turn:
    an_aborted_stream_leaves_no_half_turn_in_process,
    an_aborted_stream_leaves_no_half_turn_on_dynamodb);

/// The client leaves a streamed turn after its first words: nothing of it is stored, and the
/// conversation is free for the next turn at once.
async fn an_aborted_stream_leaves_no_half_turn(kind: StoreKind) {
    let server = Server::start(kind, &[]).await;
    let id = say(&server, None, "first").await.body["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = server
        .client(2)
        .post(format!("{}/api/chat/stream", server.url))
        .json(&json!({"message": "slowly please #fault=slow", "conversationId": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    drop(body);
    let s = server.summary(&request_id).await;
    assert_eq!(s["clientAborted"], true);
    // The lease is given back in the background: the next turn goes through within a moment.
    let mut next = None;
    for _ in 0..50 {
        let a = say(&server, Some(&id), "second").await;
        if a.status != 409 {
            next = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let next = next.expect("the conversation was given back");
    assert_eq!(next.status, 200, "{}", next.body);
    let (_, conversation) = get(&server, &id).await;
    let users: Vec<&str> = conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["first", "second"], "no half turn");
}

/// `CHATBOT_MEMORY=off`: the stateless form only, said clearly; health tells the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_off_keeps_the_stateless_api() {
    let server = Server::start(StoreKind::InProcess, &[("CHATBOT_MEMORY", "off")]).await;
    let health: Value = reqwest::get(format!("{}/api/health", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["memory"]["enabled"], false);
    let a = say(&server, None, "hi").await;
    assert_eq!(a.status, 400);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("memory is off")
    );
    let stateless = binary_rig::chat(&server.client(2), &server.url, "hi").await;
    assert_eq!(stateless.status, 200);
    assert!(stateless.body.get("droppedTurns").is_none());
    assert_eq!(
        get(&server, "0123456789abcdef0123456789abcdef").await.0,
        404
    );
}

/// The Lambda host with the DynamoDB store: two turns of one conversation, and every store call
/// of the request as an X-Ray subsegment (`namespace: aws`, named DynamoDB, the table as the
/// resource) under the request's segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_lambda_turns_are_stored_in_dynamodb_and_traced() {
    let moto = Moto::start_serialized();
    let model = bedrock_offline::spawn(
        bedrock_offline::OfflineConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut env = binary_rig::base_env(StoreKind::Dynamo, Some(&moto.endpoint));
    env.retain(|(k, _)| k != "AWS_REGION");
    env.push(("AWS_REGION".into(), "us-east-2".into()));
    let out = binary_rig::create_table(&env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon = xray::Daemon::bind();
    let (endpoint, daemon_addr) = (model.endpoint_url(), daemon.address());
    let lambda_env = [
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint.as_str()),
        ("AWS_XRAY_DAEMON_ADDRESS", daemon_addr.as_str()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("CHATBOT_STATE_TABLE", TABLE),
    ];
    let emulator = Emulator::start(env!("CARGO_BIN_EXE_bootstrap"), &lambda_env).await;
    let turn = |body: Value| {
        let event = http_api_v2(
            "POST",
            "/api/chat",
            &[("content-type", "application/json")],
            Some(&body.to_string()),
        );
        let trace = lambda_emulator::events::xray_trace_header(true);
        let emulator = &emulator;
        async move {
            let inv = emulator
                .invoke_with(
                    event,
                    InvokeOptions {
                        trace_id: Some(trace.clone()),
                        ..InvokeOptions::default()
                    },
                )
                .await;
            (inv.http_response().unwrap().json().unwrap(), trace)
        }
    };
    let (first, _) = turn(json!({"message": "hello lambda"})).await;
    let id = first["conversationId"].as_str().unwrap().to_owned();
    let (second, trace) = turn(json!({"message": "again", "conversationId": id})).await;
    assert!(
        second["reply"].as_str().unwrap().contains("your message 2"),
        "{second}"
    );
    assert!(dec(&second["cost"]["totalUsd"]) > rust_decimal::Decimal::ZERO);

    let root = trace
        .split(';')
        .find_map(|p| p.strip_prefix("Root="))
        .unwrap()
        .to_owned();
    let nodes = xray::check_trace(&daemon.collect(Duration::from_millis(300)), &root).unwrap();
    let segment = nodes.iter().find(|n| n["type"] != "subsegment").unwrap();
    let store_calls: Vec<&Value> = nodes.iter().filter(|n| n["name"] == "DynamoDB").collect();
    let operations: Vec<&str> = store_calls
        .iter()
        .map(|n| n["aws"]["operation"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        operations,
        ["UpdateItem", "Query", "TransactWriteItems"],
        "take the conversation, load it, store the turn: {store_calls:?}"
    );
    for call in &store_calls {
        assert_eq!(call["namespace"], "aws", "{call}");
        assert_eq!(call["aws"]["table_name"], TABLE, "{call}");
        assert_eq!(call["aws"]["region"], "us-east-2", "{call}");
        assert_eq!(call["parent_id"], segment["id"]);
    }
}
