//! The offline model driven by the real, unmodified `aws-sdk-bedrockruntime` client over
//! loopback HTTP.

use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime as bedrock;
use bedrock::Client;
use bedrock::config::retry::RetryConfig;
use bedrock::config::timeout::TimeoutConfig;
use bedrock::config::{Credentials, Region};
use bedrock::error::{ProvideErrorMetadata, SdkError};
use bedrock::operation::RequestId;
use bedrock::operation::converse::{ConverseError, ConverseOutput};
use bedrock::operation::converse_stream::ConverseStreamError;
use bedrock::types::error::ConverseStreamOutputError;
use bedrock::types::{
    CachePointBlock, CachePointType, ContentBlock, ContentBlockDelta, ConversationRole,
    ConverseStreamMetadataEvent, ConverseStreamOutput as Event, GuardrailConfiguration,
    GuardrailStreamConfiguration, GuardrailStreamProcessingMode, GuardrailTrace,
    GuardrailWordPolicyAction, InferenceConfiguration, Message, PerformanceConfigLatency,
    PerformanceConfiguration, ServiceTier, ServiceTierType, StopReason, SystemContentBlock,
    TokenUsage,
};
use bedrock_offline::{self as offline, OfflineConfig, OfflineServer};

const MODEL: &str = "us.amazon.nova-micro-v1:0";
const OTHER_MODEL: &str = "amazon.nova-lite-v1:0";

async fn start(config: OfflineConfig) -> OfflineServer {
    offline::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("offline model starts")
}

fn client_with_timeout(server: &OfflineServer, operation_timeout: Duration) -> Client {
    let config = bedrock::Config::builder()
        .http_client(chatbot_service::aws::https_client())
        .behavior_version_latest()
        .region(Region::new("us-east-2"))
        .endpoint_url(server.endpoint_url())
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(operation_timeout)
                .build(),
        )
        .build();
    Client::from_conf(config)
}

fn client(server: &OfflineServer) -> Client {
    client_with_timeout(server, Duration::from_secs(20))
}

fn message(role: ConversationRole, text: &str) -> Message {
    Message::builder()
        .role(role)
        .content(ContentBlock::Text(text.to_owned()))
        .build()
        .unwrap()
}

fn user(text: &str) -> Vec<Message> {
    vec![message(ConversationRole::User, text)]
}

async fn converse(
    client: &Client,
    model: &str,
    messages: Vec<Message>,
    max_tokens: Option<i32>,
) -> Result<ConverseOutput, SdkError<ConverseError, bedrock::config::http::HttpResponse>> {
    let mut req = client
        .converse()
        .model_id(model)
        .set_messages(Some(messages));
    if let Some(m) = max_tokens {
        req = req.inference_config(InferenceConfiguration::builder().max_tokens(m).build());
    }
    req.send().await
}

fn reply_text(out: &ConverseOutput) -> String {
    let msg = out.output().unwrap().as_message().unwrap();
    assert_eq!(msg.role(), &ConversationRole::Assistant);
    msg.content()[0].as_text().unwrap().clone()
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Everything a stream delivered: events until the end, or the error that ended it.
struct Received {
    events: Vec<Event>,
    /// Time of each text delta since the call started.
    delta_times: Vec<Duration>,
    error: Option<SdkError<ConverseStreamOutputError, aws_smithy_types::event_stream::RawMessage>>,
}

impl Received {
    fn text(&self) -> String {
        self.deltas().concat()
    }

    fn deltas(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ContentBlockDelta(d) => match d.delta() {
                    Some(ContentBlockDelta::Text(t)) => Some(t.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn stream_error(&self) -> &ConverseStreamOutputError {
        match self.error.as_ref().expect("stream ended with an error") {
            SdkError::ServiceError(e) => e.err(),
            other => panic!("expected a modelled stream exception, got {other:?}"),
        }
    }
}

/// Receives a stream to its end, timing the deltas from `started`.
async fn drain(
    mut out: bedrock::operation::converse_stream::ConverseStreamOutput,
    started: Instant,
) -> Received {
    let mut received = Received {
        events: Vec::new(),
        delta_times: Vec::new(),
        error: None,
    };
    loop {
        match out.stream.recv().await {
            Ok(Some(event)) => {
                if matches!(event, Event::ContentBlockDelta(_)) {
                    received.delta_times.push(started.elapsed());
                }
                received.events.push(event);
            }
            Ok(None) => break,
            Err(e) => {
                received.error = Some(e);
                break;
            }
        }
    }
    received
}

async fn stream(
    client: &Client,
    model: &str,
    messages: Vec<Message>,
    max_tokens: Option<i32>,
) -> Result<Received, SdkError<ConverseStreamError, bedrock::config::http::HttpResponse>> {
    let started = Instant::now();
    let mut req = client
        .converse_stream()
        .model_id(model)
        .set_messages(Some(messages));
    if let Some(m) = max_tokens {
        req = req.inference_config(InferenceConfiguration::builder().max_tokens(m).build());
    }
    let out = req.send().await?;
    Ok(drain(out, started).await)
}

fn assert_usage(usage: &TokenUsage, input: i32, output: i32) {
    assert_eq!(usage.input_tokens(), input, "inputTokens");
    assert_eq!(usage.output_tokens(), output, "outputTokens");
    assert_eq!(usage.total_tokens(), input + output, "totalTokens");
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn converse_replies_with_documented_token_counts() {
    let server = start(OfflineConfig::default()).await;
    let client = client(&server);

    let out = client
        .converse()
        .model_id(MODEL)
        .system(SystemContentBlock::Text("Be brief.".into()))
        .messages(message(ConversationRole::User, "Hello offline model"))
        .messages(message(ConversationRole::Assistant, "Hi."))
        .messages(message(ConversationRole::User, "What is Rust, in short?"))
        .send()
        .await
        .expect("converse succeeds");
    let text = reply_text(&out);
    assert!(text.contains("canned answer"), "{text}");
    assert!(text.contains("no AWS call was made"), "{text}");
    assert!(text.contains("\"What is Rust, in short?\""), "{text}");
    assert!(text.contains("--backend bedrock"), "{text}");
    assert!(text.contains(MODEL), "{text}");
    assert!((40..=80).contains(&words(&text)), "{} words", words(&text));
    assert_eq!(out.stop_reason(), &StopReason::EndTurn);
    // system 2 + "Hello offline model" 3 + "Hi." 1 + "What is Rust, in short?" 5
    assert_usage(out.usage().unwrap(), 11, words(&text) as i32);
    assert!(out.metrics().is_some());
    assert_eq!(out.request_id().map(str::len), Some(36), "uuid request id");

    // Deterministic: the same request gives the same reply; a second model id is served too.
    let again = converse(&client, MODEL, user("What is Rust?"), None)
        .await
        .unwrap();
    let again2 = converse(&client, MODEL, user("What is Rust?"), None)
        .await
        .unwrap();
    assert_eq!(reply_text(&again), reply_text(&again2));
    let other = converse(&client, OTHER_MODEL, user("What is Rust?"), None)
        .await
        .unwrap();
    assert!(reply_text(&other).contains(OTHER_MODEL));

    // maxTokens cuts the reply after that many words.
    let cut = converse(&client, MODEL, user("What is Rust?"), Some(5))
        .await
        .unwrap();
    let cut_text = reply_text(&cut);
    assert_eq!(words(&cut_text), 5);
    assert_eq!(out.stop_reason(), &StopReason::EndTurn);
    assert_eq!(cut.stop_reason(), &StopReason::MaxTokens);
    let full = reply_text(&again);
    let first5: Vec<&str> = full.split_whitespace().take(5).collect();
    assert_eq!(cut_text, first5.join(" "));
    assert_usage(cut.usage().unwrap(), 3, 5);
    assert_eq!(server.stats().requests(), 5);
    server.shutdown().await;
}

#[tokio::test]
async fn converse_stream_matches_buffered_reply() {
    let server = start(OfflineConfig::default()).await;
    let client = client(&server);
    let messages = vec![
        message(ConversationRole::User, "Tell me about streams"),
        message(ConversationRole::Assistant, "Sure."),
        message(ConversationRole::User, "Go on please"),
    ];

    let buffered = converse(&client, OTHER_MODEL, messages.clone(), None)
        .await
        .unwrap();
    let buffered_text = reply_text(&buffered);
    let got = stream(&client, OTHER_MODEL, messages, None).await.unwrap();
    assert!(got.error.is_none(), "{:?}", got.error);

    let n = words(&buffered_text);
    assert_eq!(got.events.len(), n + 4, "{:?}", got.events);
    match &got.events[0] {
        Event::MessageStart(e) => assert_eq!(e.role(), &ConversationRole::Assistant),
        other => panic!("first event {other:?}"),
    }
    let deltas = got.deltas();
    assert_eq!(deltas.len(), n);
    assert!(
        deltas.iter().all(|d| words(d) == 1),
        "one word per delta: {deltas:?}"
    );
    assert_eq!(got.text(), buffered_text);
    assert!(
        matches!(got.events[n + 1], Event::ContentBlockStop(ref e) if e.content_block_index() == 0)
    );
    match &got.events[n + 2] {
        Event::MessageStop(e) => assert_eq!(e.stop_reason(), &StopReason::EndTurn),
        other => panic!("expected messageStop, got {other:?}"),
    }
    match &got.events[n + 3] {
        Event::Metadata(m) => {
            assert_usage(m.usage().unwrap(), 4 + 1 + 3, n as i32);
            assert_eq!(m.usage(), buffered.usage());
            assert!(m.metrics().is_some());
        }
        other => panic!("expected metadata, got {other:?}"),
    }

    // maxTokens applies to the stream too.
    let cut = stream(&client, MODEL, user("Go on please"), Some(5))
        .await
        .unwrap();
    assert_eq!(cut.deltas().len(), 5);
    assert!(
        cut.events.iter().any(
            |e| matches!(e, Event::MessageStop(s) if s.stop_reason() == &StopReason::MaxTokens)
        )
    );
    let buffered_cut = converse(&client, MODEL, user("Go on please"), Some(5))
        .await
        .unwrap();
    assert_eq!(cut.text(), reply_text(&buffered_cut));

    let stats = server.stats();
    assert_eq!(stats.active_streams(), 0);
    assert_eq!(stats.completed_streams(), 2);
    assert_eq!(stats.cancelled_streams(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn injected_errors_become_typed_converse_errors() {
    let server = start(OfflineConfig::default()).await;
    let client = client(&server);
    type Check = fn(&ConverseError) -> bool;
    let cases: &[(&str, u16, Check)] = &[
        ("throttle", 429, ConverseError::is_throttling_exception),
        (
            "not-ready",
            429,
            ConverseError::is_model_not_ready_exception,
        ),
        ("validation", 400, ConverseError::is_validation_exception),
        (
            "access-denied",
            403,
            ConverseError::is_access_denied_exception,
        ),
        (
            "not-found",
            404,
            ConverseError::is_resource_not_found_exception,
        ),
        (
            "model-timeout",
            408,
            ConverseError::is_model_timeout_exception,
        ),
        ("model-error", 424, ConverseError::is_model_error_exception),
        ("error", 500, ConverseError::is_internal_server_exception),
        (
            "unavailable",
            503,
            ConverseError::is_service_unavailable_exception,
        ),
        (
            "midstream",
            500,
            ConverseError::is_internal_server_exception,
        ),
        (
            "midstream-throttle",
            429,
            ConverseError::is_throttling_exception,
        ),
        (
            "midstream-model-error",
            424,
            ConverseError::is_model_error_exception,
        ),
        // Converse does not model ServiceQuotaExceededException: it arrives unhandled, with its code.
        ("quota", 400, |e| {
            e.code() == Some("ServiceQuotaExceededException")
        }),
    ];
    for (kind, status, check) in cases {
        let err = converse(&client, MODEL, user(&format!("hi #fault={kind}")), None)
            .await
            .expect_err(kind);
        assert_eq!(
            err.raw_response().map(|r| r.status().as_u16()),
            Some(*status),
            "{kind}"
        );
        let err = err.into_service_error();
        assert!(check(&err), "{kind}: {err:?}");
        assert!(
            err.message().unwrap_or_default().contains(kind),
            "{kind}: {err:?}"
        );
    }

    // Errors before a stream starts are typed ConverseStreamError variants.
    let err = stream(&client, MODEL, user("hi #fault=throttle"), None)
        .await
        .err()
        .unwrap();
    assert!(matches!(
        err.into_service_error(),
        ConverseStreamError::ThrottlingException(_)
    ));
    let err = stream(&client, MODEL, user("hi #fault=model-timeout"), None)
        .await
        .err()
        .unwrap();
    assert!(matches!(
        err.into_service_error(),
        ConverseStreamError::ModelTimeoutException(_)
    ));

    // An invalid request is a ValidationException, not a retry.
    let before = server.stats().requests();
    let err = converse(&client, MODEL, user("hi #fault=nonsense"), None)
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_validation_exception());
    let err = converse(
        &client,
        MODEL,
        vec![message(ConversationRole::Assistant, "I start")],
        None,
    )
    .await
    .unwrap_err();
    assert!(err.into_service_error().is_validation_exception());
    assert_eq!(server.stats().requests(), before + 2);
    server.shutdown().await;
}

#[tokio::test]
async fn stream_exceptions_become_typed_stream_errors() {
    let server = start(OfflineConfig::default()).await;
    let client = client(&server);
    type Check = fn(&ConverseStreamOutputError) -> bool;
    let cases: &[(&str, Check)] = &[
        (
            "midstream",
            ConverseStreamOutputError::is_internal_server_exception,
        ),
        (
            "midstream-throttle",
            ConverseStreamOutputError::is_throttling_exception,
        ),
        (
            "midstream-unavailable",
            ConverseStreamOutputError::is_service_unavailable_exception,
        ),
        (
            "midstream-model-error",
            ConverseStreamOutputError::is_model_stream_error_exception,
        ),
        (
            "midstream-validation",
            ConverseStreamOutputError::is_validation_exception,
        ),
    ];
    for (kind, check) in cases {
        let got = stream(&client, MODEL, user(&format!("hi #fault={kind}")), None)
            .await
            .unwrap_or_else(|e| panic!("{kind}: stream did not start: {e:?}"));
        assert!(matches!(got.events[0], Event::MessageStart(_)), "{kind}");
        assert_eq!(got.deltas().len(), 3, "{kind}: a few deltas first");
        let err = got.stream_error();
        assert!(check(err), "{kind}: {err:?}");
        assert!(
            err.message().unwrap_or_default().contains(kind),
            "{kind}: {err:?}"
        );
    }
    assert_eq!(server.stats().active_streams(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn reset_and_malformed_break_the_transport_not_the_model() {
    let server = start(OfflineConfig::default()).await;
    let client = client(&server);
    let stats = server.stats();

    // Stream: three deltas arrive, then the connection drops / a frame fails its CRC.
    for kind in ["reset", "malformed"] {
        let got = stream(&client, MODEL, user(&format!("hi #fault={kind}")), None)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e:?}"));
        assert_eq!(got.deltas().len(), 3, "{kind}");
        assert!(
            !got.events
                .iter()
                .any(|e| matches!(e, Event::MessageStop(_))),
            "{kind}"
        );
        let err = got
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{kind}: stream ended cleanly"));
        let transport = matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        );
        assert!(transport, "{kind}: a transport/decoding error: {err:?}");
    }
    assert_eq!(stats.active_streams(), 0);

    // Converse reset: headers and half a body, then the connection drops. The SDK sees a
    // response error and retries it, so `reset:1` clears within the retries.
    let before = stats.requests();
    let err = converse(&client, MODEL, user("hi #fault=reset"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::ResponseError(_)), "{err:?}");
    assert_eq!(stats.requests() - before, 3);
    converse(&client, MODEL, user("hi #fault=reset:1"), None)
        .await
        .expect("reset clears on retry");

    // Converse malformed: 200 with truncated JSON, an unmodelled error (not retried).
    let before = stats.requests();
    let err = converse(&client, MODEL, user("hi #fault=malformed"), None)
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(200));
    let err = err.into_service_error();
    assert_eq!(err.code(), None, "{err:?}");
    assert!(!err.is_internal_server_exception() && !err.is_validation_exception());
    assert_eq!(stats.requests() - before, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn throttling_that_clears_within_the_retries_succeeds() {
    let server = start(OfflineConfig::default()).await;
    let client = client(&server);
    let stats = server.stats();

    let out = converse(&client, MODEL, user("retry me #fault=throttle:2"), None).await;
    let text = reply_text(&out.expect("third attempt succeeds"));
    assert!(!text.contains("#fault"), "directive is not echoed: {text}");
    assert_eq!(stats.requests(), 3);

    let err = converse(&client, MODEL, user("retry me #fault=throttle:3"), None)
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_throttling_exception());
    assert_eq!(stats.requests(), 6);

    // 5xx are retried too, and the stream operation behaves the same.
    converse(&client, MODEL, user("retry me #fault=unavailable:2"), None)
        .await
        .expect("503 clears within retries");
    let got = stream(&client, MODEL, user("stream me #fault=throttle:2"), None)
        .await
        .expect("stream succeeds on the third attempt");
    assert!(got.error.is_none());
    assert_eq!(stats.requests(), 12);
    server.shutdown().await;
}

#[tokio::test]
async fn random_faults_follow_the_config() {
    let throttled = start(OfflineConfig {
        throttle_percent: 100.0,
        ..OfflineConfig::default()
    })
    .await;
    let err = converse(&client(&throttled), MODEL, user("hi"), None)
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_throttling_exception());
    assert_eq!(
        throttled.stats().requests(),
        3,
        "every attempt was throttled"
    );

    let failing = start(OfflineConfig {
        error_percent: 100.0,
        seed: Some(42),
        ..OfflineConfig::default()
    })
    .await;
    let err = converse(&client(&failing), MODEL, user("hi"), None)
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(
        err.is_internal_server_exception() || err.is_service_unavailable_exception(),
        "{err:?}"
    );
    throttled.shutdown().await;
    failing.shutdown().await;
}

#[tokio::test]
async fn hang_makes_the_sdk_operation_timeout_fire() {
    let server = start(OfflineConfig::default()).await;
    let client = client_with_timeout(&server, Duration::from_millis(300));
    let started = Instant::now();
    let err = converse(&client, MODEL, user("wait #fault=hang"), None)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let err = stream(&client, MODEL, user("wait #fault=hang"), None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");

    // --offline-hang: every request hangs. Shutdown still completes promptly.
    let hanging = start(OfflineConfig {
        hang: true,
        ..OfflineConfig::default()
    })
    .await;
    let err = converse(
        &client_with_timeout(&hanging, Duration::from_millis(300)),
        MODEL,
        user("hi"),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    let started = Instant::now();
    hanging.shutdown().await;
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn latency_config_paces_the_stream() {
    let server = start(OfflineConfig {
        ttft_ms: 200,
        tokens_per_sec: 20.0,
        ..OfflineConfig::default()
    })
    .await;
    let client = client(&server);
    let started = Instant::now();
    let got = stream(&client, MODEL, user("pace me"), None).await.unwrap();
    let took = started.elapsed();
    assert!(got.error.is_none());
    let n = got.delta_times.len();
    let expected = Duration::from_millis(200 + 50 * (n as u64 - 1));

    let first = got.delta_times[0];
    assert!(
        first >= Duration::from_millis(195),
        "first delta at {first:?}"
    );
    assert!(
        first < Duration::from_millis(600),
        "first delta at {first:?}: not streamed?"
    );
    let last = got.delta_times[n - 1];
    assert!(
        last >= expected.mul_f64(0.95),
        "last delta at {last:?}, expected {expected:?}"
    );
    assert!(
        took < expected + Duration::from_millis(700),
        "{took:?} vs {expected:?}"
    );
    // The reply grows visibly: deltas are spread over the whole generation time.
    let middle = got.delta_times[n / 2];
    assert!(
        middle > first + Duration::from_millis(50 * (n as u64 / 2 - 1)),
        "{middle:?}"
    );

    // A buffered call waits as long as the stream takes.
    let started = Instant::now();
    converse(&client, MODEL, user("pace me"), None)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= expected.mul_f64(0.95), "{took:?} vs {expected:?}");
    assert!(
        took < expected + Duration::from_millis(700),
        "{took:?} vs {expected:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn client_dropping_a_stream_is_seen_promptly() {
    let server = start(OfflineConfig {
        tokens_per_sec: 20.0,
        ..OfflineConfig::default()
    })
    .await;
    let stats = server.stats();
    let client = client(&server);
    let mut out = client
        .converse_stream()
        .model_id(MODEL)
        .set_messages(Some(user("I will hang up")))
        .send()
        .await
        .unwrap();
    let mut deltas = 0;
    while deltas < 2 {
        if let Event::ContentBlockDelta(_) = out.stream.recv().await.unwrap().unwrap() {
            deltas += 1;
        }
    }
    assert_eq!(stats.active_streams(), 1);
    drop(out);
    let dropped = Instant::now();
    wait_for("active streams back to 0", || stats.active_streams() == 0).await;
    assert!(
        dropped.elapsed() < Duration::from_secs(1),
        "{:?}",
        dropped.elapsed()
    );
    assert_eq!(stats.cancelled_streams(), 1);
    assert_eq!(stats.completed_streams(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let server = start(OfflineConfig::default()).await;
    let client = client(&server);
    let mut out = client
        .converse_stream()
        .model_id(MODEL)
        .set_messages(Some(user("trickle #fault=slow")))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        out.stream.recv().await.unwrap(),
        Some(Event::MessageStart(_))
    ));
    let stats = server.stats();
    assert_eq!(stats.active_streams(), 1);
    let started = Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The client sees the stream break off rather than finish.
    let mut ended_with_error = false;
    loop {
        match out.stream.recv().await {
            Ok(Some(Event::MessageStop(_))) => panic!("slow stream cannot have finished"),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                ended_with_error = true;
                break;
            }
        }
    }
    assert!(ended_with_error);
    assert_eq!(stats.active_streams(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_many_concurrent_requests() {
    let server = start(OfflineConfig::default()).await;
    let client = client(&server);
    let calls = (0..200).map(|i| {
        let client = client.clone();
        async move {
            if i % 2 == 0 {
                converse(&client, MODEL, user(&format!("request {i}")), None)
                    .await
                    .map(|o| reply_text(&o))
                    .map_err(|e| format!("{e:?}"))
            } else {
                let got = stream(&client, MODEL, user(&format!("request {i}")), None)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                match got.error {
                    None => Ok(got.text()),
                    Some(e) => Err(format!("{e:?}")),
                }
            }
        }
    });
    let results = futures_util::future::join_all(calls).await;
    for (i, r) in results.iter().enumerate() {
        let text = r
            .as_ref()
            .unwrap_or_else(|e| panic!("call {i} failed: {e}"));
        assert!(text.contains(&format!("\"request {i}\"")), "{text}");
    }
    let stats = server.stats();
    assert_eq!(stats.requests(), 200);
    assert_eq!(stats.completed_streams(), 100);
    assert_eq!(stats.active_streams(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn raw_http_with_unencoded_model_id() {
    let server = start(OfflineConfig::default()).await;
    let http = reqwest::Client::new();
    let body = serde_json::json!({
        "messages": [{"role": "user", "content": [{"text": "plain http"}]}],
        "inferenceConfig": {"maxTokens": 3}
    });
    let resp = http
        .post(format!("{}/model/{MODEL}/converse", server.endpoint_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["stopReason"], "max_tokens");
    assert_eq!(v["usage"]["totalTokens"], 2 + 3);

    let resp = http
        .post(format!(
            "{}/model/{MODEL}/converse-stream",
            server.endpoint_url()
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    server.shutdown().await;
}

// ---- Prompt caching, service tiers, latencyMs and guardrails ----

fn cache_point() -> CachePointBlock {
    CachePointBlock::builder()
        .r#type(CachePointType::Default)
        .build()
        .unwrap()
}

/// `n` words of system prompt.
fn long_system(n: usize) -> String {
    vec!["context"; n].join(" ")
}

fn metadata_of(got: &Received) -> &ConverseStreamMetadataEvent {
    assert!(got.error.is_none(), "{:?}", got.error);
    match got.events.last() {
        Some(Event::Metadata(m)) => m,
        other => panic!("expected metadata last, got {other:?}"),
    }
}

fn stream_stop_reason(got: &Received) -> StopReason {
    got.events
        .iter()
        .find_map(|e| match e {
            Event::MessageStop(s) => Some(s.stop_reason().clone()),
            _ => None,
        })
        .expect("messageStop")
}

#[tokio::test]
async fn prompt_cache_writes_then_reads_in_both_apis() {
    let server = start(OfflineConfig::default()).await; // 20-token minimum
    let client = client(&server);
    let system = long_system(30);

    // First call: the 30-token system prefix is written; inputTokens is the rest.
    let out = client
        .converse()
        .model_id(MODEL)
        .system(SystemContentBlock::Text(system.clone()))
        .system(SystemContentBlock::CachePoint(cache_point()))
        .messages(message(ConversationRole::User, "What is cached?"))
        .send()
        .await
        .unwrap();
    let u = out.usage().unwrap();
    let output = u.output_tokens();
    assert_eq!(u.input_tokens(), 3);
    assert_eq!(u.cache_write_input_tokens(), Some(30));
    assert_eq!(u.cache_read_input_tokens(), Some(0));
    assert_eq!(u.total_tokens(), 3 + 30 + output);

    // The same prefix by ConverseStream, within the TTL: read from the cache.
    let got = client
        .converse_stream()
        .model_id(MODEL)
        .system(SystemContentBlock::Text(system.clone()))
        .system(SystemContentBlock::CachePoint(cache_point()))
        .messages(message(ConversationRole::User, "Something else entirely?"))
        .send()
        .await
        .unwrap();
    let got = drain(got, Instant::now()).await;
    let u = metadata_of(&got).usage().unwrap();
    assert_eq!(u.cache_read_input_tokens(), Some(30));
    assert_eq!(u.cache_write_input_tokens(), Some(0));
    assert_eq!(u.input_tokens(), 3);
    assert_eq!(u.total_tokens(), 3 + 30 + u.output_tokens());

    // A cache point in the messages: system + first user turn (30 + 4) is the prefix.
    let turn = |question: &str| {
        client
            .converse()
            .model_id(MODEL)
            .system(SystemContentBlock::Text(system.clone()))
            .messages(
                Message::builder()
                    .role(ConversationRole::User)
                    .content(ContentBlock::Text("A long shared document.".into()))
                    .content(ContentBlock::CachePoint(cache_point()))
                    .content(ContentBlock::Text(question.into()))
                    .build()
                    .unwrap(),
            )
            .send()
    };
    let u = turn("First?").await.unwrap().usage().unwrap().clone();
    assert_eq!(
        (
            u.cache_write_input_tokens(),
            u.cache_read_input_tokens(),
            u.input_tokens()
        ),
        (Some(34), Some(0), 1)
    );
    let u = turn("Second?").await.unwrap().usage().unwrap().clone();
    assert_eq!(
        (
            u.cache_write_input_tokens(),
            u.cache_read_input_tokens(),
            u.input_tokens()
        ),
        (Some(0), Some(34), 1)
    );

    // Below the minimum: accepted, nothing cached, however often.
    for _ in 0..2 {
        let out = client
            .converse()
            .model_id(MODEL)
            .system(SystemContentBlock::Text(long_system(19)))
            .system(SystemContentBlock::CachePoint(cache_point()))
            .messages(message(ConversationRole::User, "Too small?"))
            .send()
            .await
            .unwrap();
        let u = out.usage().unwrap();
        assert_eq!(u.cache_write_input_tokens(), Some(0));
        assert_eq!(u.cache_read_input_tokens(), Some(0));
        assert_eq!(u.input_tokens(), 19 + 2);
    }

    // No cache point: no cache fields at all.
    let out = converse(&client, MODEL, user("No caching here"), None)
        .await
        .unwrap();
    let u = out.usage().unwrap();
    assert_eq!(u.cache_write_input_tokens(), None);
    assert_eq!(u.cache_read_input_tokens(), None);

    let stats = server.stats();
    assert_eq!((stats.cache_writes(), stats.cache_reads()), (2, 2));
    server.shutdown().await;
}

#[tokio::test]
async fn served_tier_and_latency_mode_reach_the_sdk() {
    let server = start(OfflineConfig::default()).await;
    let client = client(&server);
    let tier = ServiceTier::builder()
        .r#type(ServiceTierType::Priority)
        .build()
        .unwrap();
    let optimized = PerformanceConfiguration::builder()
        .latency(PerformanceConfigLatency::Optimized)
        .build();

    let out = client
        .converse()
        .model_id(MODEL)
        .set_messages(Some(user("Fast please")))
        .service_tier(tier.clone())
        .performance_config(optimized.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.service_tier().unwrap().r#type(),
        &ServiceTierType::Priority
    );
    assert_eq!(
        out.performance_config().unwrap().latency(),
        &PerformanceConfigLatency::Optimized
    );

    // Served differently than asked: optimized latency fell back to standard, priority to
    // default. The directives are not echoed.
    let got = client
        .converse_stream()
        .model_id(MODEL)
        .set_messages(Some(user(
            "Fast please #served-latency=standard #served-tier=default",
        )))
        .service_tier(tier)
        .performance_config(optimized)
        .send()
        .await
        .unwrap();
    let got = drain(got, Instant::now()).await;
    assert!(!got.text().contains("#served"), "{}", got.text());
    let meta = metadata_of(&got);
    assert_eq!(
        meta.service_tier().unwrap().r#type(),
        &ServiceTierType::Default
    );
    assert_eq!(
        meta.performance_config().unwrap().latency(),
        &PerformanceConfigLatency::Standard
    );

    // Nothing asked, nothing reported; a directive alone reports it.
    let out = converse(&client, MODEL, user("Plain"), None).await.unwrap();
    assert!(out.service_tier().is_none() && out.performance_config().is_none());
    let out = converse(&client, MODEL, user("Plain #served-tier=flex"), None)
        .await
        .unwrap();
    assert_eq!(out.service_tier().unwrap().r#type(), &ServiceTierType::Flex);
    server.shutdown().await;
}

#[tokio::test]
async fn latency_ms_is_the_models_own_time() {
    let server = start(OfflineConfig {
        ttft_ms: 100,
        tokens_per_sec: 1000.0,
        ..OfflineConfig::default()
    })
    .await;
    let client = client(&server);

    let started = Instant::now();
    let out = converse(&client, MODEL, user("Time me"), None)
        .await
        .unwrap();
    let wall = started.elapsed().as_millis() as i64;
    let n = out.usage().unwrap().output_tokens() as i64;
    let model = out.metrics().unwrap().latency_ms();
    let planned = 100 + (n - 1); // ttft + 1 ms per further token
    assert!(
        planned <= model && model <= wall,
        "{planned} <= {model} <= {wall}"
    );

    let started = Instant::now();
    let got = stream(&client, MODEL, user("Time me"), None).await.unwrap();
    let wall = started.elapsed().as_millis() as i64;
    let model = metadata_of(&got).metrics().unwrap().latency_ms();
    assert!(
        planned <= model && model <= wall,
        "{planned} <= {model} <= {wall}"
    );
    // The last delta arrived no earlier than the model says it finished.
    assert!(got.delta_times.last().unwrap().as_millis() as i64 >= model);
    server.shutdown().await;
}

fn guarded_offline() -> OfflineConfig {
    OfflineConfig {
        guardrail_blocked_words: vec!["kraken".into()],
        guardrail_blocked_output_words: vec!["squid".into()],
        guardrail_blocked_output_message: "The answer was blocked.".into(),
        ..OfflineConfig::default()
    }
}

fn guardrail(trace: GuardrailTrace) -> GuardrailConfiguration {
    GuardrailConfiguration::builder()
        .guardrail_identifier("gr1abc")
        .guardrail_version("1")
        .trace(trace)
        .build()
}

fn stream_guardrail(mode: GuardrailStreamProcessingMode) -> GuardrailStreamConfiguration {
    GuardrailStreamConfiguration::builder()
        .guardrail_identifier("arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1abc")
        .guardrail_version("DRAFT")
        .trace(GuardrailTrace::Enabled)
        .stream_processing_mode(mode)
        .build()
}

#[tokio::test]
async fn guardrail_blocks_input_without_model_tokens() {
    let server = start(guarded_offline()).await;
    let client = client(&server);
    let question = "Where does the Kraken live?";

    let out = client
        .converse()
        .model_id(MODEL)
        .system(SystemContentBlock::Text("Be kind.".into()))
        .set_messages(Some(user(question)))
        .guardrail_config(guardrail(GuardrailTrace::Enabled))
        .send()
        .await
        .unwrap();
    assert_eq!(out.stop_reason(), &StopReason::GuardrailIntervened);
    assert_eq!(reply_text(&out), offline::DEFAULT_GUARDRAIL_BLOCKED_MESSAGE);
    assert_usage(out.usage().unwrap(), 0, 0);
    let g = out.trace().unwrap().guardrail().unwrap();
    assert_eq!(g.action_reason(), Some("Guardrail blocked."));
    assert!(g.output_assessments().is_none());
    let a = &g.input_assessment().unwrap()["gr1abc"];
    let word = &a.word_policy().unwrap().custom_words()[0];
    assert_eq!(word.r#match(), "kraken");
    assert_eq!(word.action(), &GuardrailWordPolicyAction::Blocked);
    assert_eq!(word.detected(), Some(true));
    let metrics = a.invocation_metrics().unwrap();
    let chars = ("Be kind.".len() + question.len()) as i32;
    let coverage = metrics
        .guardrail_coverage()
        .unwrap()
        .text_characters()
        .unwrap();
    assert_eq!(
        (coverage.guarded(), coverage.total()),
        (Some(chars), Some(chars))
    );
    let units = metrics.usage().unwrap();
    assert_eq!(units.word_policy_units(), 1);
    assert_eq!(units.content_policy_units(), 1);
    assert_eq!(units.topic_policy_units(), 0);
    assert_eq!(
        a.applied_guardrail_details().unwrap().guardrail_version(),
        Some("1")
    );

    // The stream: the message as the only delta, no tokens, the trace in metadata.
    let got = client
        .converse_stream()
        .model_id(MODEL)
        .set_messages(Some(user(question)))
        .guardrail_config(stream_guardrail(GuardrailStreamProcessingMode::Sync))
        .send()
        .await
        .unwrap();
    let got = drain(got, Instant::now()).await;
    assert_eq!(got.deltas(), [offline::DEFAULT_GUARDRAIL_BLOCKED_MESSAGE]);
    assert_eq!(stream_stop_reason(&got), StopReason::GuardrailIntervened);
    let meta = metadata_of(&got);
    assert_usage(meta.usage().unwrap(), 0, 0);
    let g = meta.trace().unwrap().guardrail().unwrap();
    let a = &g.input_assessment().unwrap()["gr1abc"];
    assert_eq!(
        a.word_policy().unwrap().custom_words()[0].r#match(),
        "kraken"
    );

    // Trace disabled: the same block, no trace. No guardrailConfig: no guardrail at all.
    let out = client
        .converse()
        .model_id(MODEL)
        .set_messages(Some(user(question)))
        .guardrail_config(guardrail(GuardrailTrace::Disabled))
        .send()
        .await
        .unwrap();
    assert_eq!(out.stop_reason(), &StopReason::GuardrailIntervened);
    assert!(out.trace().is_none());
    let out = converse(&client, MODEL, user(question), None)
        .await
        .unwrap();
    assert_eq!(out.stop_reason(), &StopReason::EndTurn);
    assert_eq!(server.stats().guardrail_input_blocks(), 3);

    // The SDK sends "" for a missing identifier; the service rejects it.
    let err = client
        .converse()
        .model_id(MODEL)
        .set_messages(Some(user("hi")))
        .guardrail_config(GuardrailConfiguration::builder().build())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_validation_exception());
    server.shutdown().await;
}

#[tokio::test]
async fn guardrail_blocks_output_mid_stream() {
    let server = start(guarded_offline()).await;
    let client = client(&server);
    // "squid" is on the output-only list: the input passes, the echoing reply is blocked.
    let question = "Tell me about the squid please";
    let clean = converse(&client, MODEL, user(question), None)
        .await
        .unwrap();
    let full = reply_text(&clean);
    let full_words: Vec<&str> = full.split_whitespace().collect();
    let k = full_words.iter().position(|w| w.contains("squid")).unwrap();
    let input_tokens = 6;

    // Stream, sync: the words before "squid", then the blocked-output message.
    let got = client
        .converse_stream()
        .model_id(MODEL)
        .set_messages(Some(user(question)))
        .guardrail_config(stream_guardrail(GuardrailStreamProcessingMode::Sync))
        .send()
        .await
        .unwrap();
    let got = drain(got, Instant::now()).await;
    let deltas = got.deltas();
    assert_eq!(deltas.len(), k + 1, "{deltas:?}");
    assert_eq!(deltas[..k].concat().trim_end(), full_words[..k].join(" "));
    assert_eq!(deltas[k], "The answer was blocked.");
    assert!(!deltas[..k].concat().contains("squid"));
    assert_eq!(stream_stop_reason(&got), StopReason::GuardrailIntervened);
    let meta = metadata_of(&got);
    // The model's input and the tokens it generated (through "squid") are billed.
    assert_usage(meta.usage().unwrap(), input_tokens, k as i32 + 1);
    let g = meta.trace().unwrap().guardrail().unwrap();
    assert_eq!(g.action_reason(), Some("Guardrail blocked."));
    let out = &g.output_assessments().unwrap()["gr1abc"][0];
    assert_eq!(
        out.word_policy().unwrap().custom_words()[0].r#match(),
        "squid"
    );
    let guarded = full_words[..=k].join(" ").chars().count() as i32;
    let cov = out
        .invocation_metrics()
        .unwrap()
        .guardrail_coverage()
        .unwrap()
        .text_characters()
        .unwrap();
    assert_eq!(cov.guarded(), Some(guarded));
    assert!(
        g.input_assessment().unwrap()["gr1abc"]
            .word_policy()
            .is_none()
    );

    // Stream, async: "squid" and the next ASYNC_SCAN_LAG_TOKENS words get out first.
    let got = client
        .converse_stream()
        .model_id(MODEL)
        .set_messages(Some(user(question)))
        .guardrail_config(stream_guardrail(GuardrailStreamProcessingMode::Async))
        .send()
        .await
        .unwrap();
    let got = drain(got, Instant::now()).await;
    let last = k + offline::ASYNC_SCAN_LAG_TOKENS;
    let deltas = got.deltas();
    assert_eq!(deltas.len(), last + 2, "{deltas:?}");
    assert!(deltas[..=last].concat().contains("squid"));
    assert_eq!(deltas[last + 1], "The answer was blocked.");
    assert_usage(
        metadata_of(&got).usage().unwrap(),
        input_tokens,
        last as i32 + 1,
    );

    // Converse: the whole reply was generated (and billed), then replaced.
    let out = client
        .converse()
        .model_id(MODEL)
        .set_messages(Some(user(question)))
        .guardrail_config(guardrail(GuardrailTrace::EnabledFull))
        .send()
        .await
        .unwrap();
    assert_eq!(out.stop_reason(), &StopReason::GuardrailIntervened);
    assert_eq!(reply_text(&out), "The answer was blocked.");
    assert_usage(out.usage().unwrap(), input_tokens, full_words.len() as i32);
    let g = out.trace().unwrap().guardrail().unwrap();
    assert_eq!(g.model_output(), std::slice::from_ref(&full));
    let out_units = g.output_assessments().unwrap()["gr1abc"][0]
        .invocation_metrics()
        .unwrap()
        .usage()
        .unwrap()
        .content_policy_units();
    assert_eq!(
        out_units as u64,
        offline::text_units(full.chars().count() as u64)
    );
    assert_eq!(server.stats().guardrail_output_blocks(), 3);
    server.shutdown().await;
}
