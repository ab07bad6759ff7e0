//! `chatbot cost-report` and `chatbot cost-estimate` as a user runs them: the compiled binary as a
//! subprocess, against a moto server on loopback seeded through the real AWS SDK with the
//! metrics and summary log lines the function emits (and, for `--reconcile`, Bedrock's own
//! token metrics). The estimate's log-bytes default is checked against the real service's
//! output, in process.

mod evidence;
mod moto_rig;
mod service_rig;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use moto_rig::cli::{TEST_AWS, chatbot};
use moto_rig::moto::MotoStack;
use moto_rig::seed::{self, Req};

const SERVICE: &str = "chatbot-test";
const MICRO: &str = "us.amazon.nova-micro-v1:0";
const LITE: &str = "us.amazon.nova-lite-v1:0";
const HAIKU: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const PRO: &str = "us.amazon.nova-pro-v1:0";
/// A model the price table does not know: its requests' cost is unknown.
const UNPRICED: &str = "meta.llama-new-v1:0";
const LOG_GROUP: &str = "/aws/lambda/chatbot-test-api";
const MIN: i64 = 60;
const HOUR: i64 = 3_600;

fn rfc3339(secs: i64) -> String {
    DateTime::from_secs(secs).fmt(Format::DateTime).unwrap()
}

/// The start of a 4-hour window that ended an hour ago (recent: read with 60 s periods).
fn recent_window_start() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now / HOUR * HOUR - 5 * HOUR
}

/// Variants as an A/B test would assign them: Nova Micro is `control`, the others `challenger`.
fn req(at: i64, model: Option<&'static str>, input: u64, output: u64, cost: f64) -> Req {
    let variant = model.map(|m| if m == MICRO { "control" } else { "challenger" });
    Req {
        at,
        model,
        variant,
        input,
        output,
        cost,
        error: false,
        cost_unknown: false,
    }
}

/// The recent data set. In the window [s, s + 4 h):
/// - Nova Micro: 3 requests × (800 in, 200 out, $0.000056) → 2,400 / 600 tokens, $0.000168
/// - Nova Lite: (1,200 in, 300 out, $0.000144) + (1,000 in, 500 out, $0.00018, an error)
///   → 2,200 / 800 tokens, $0.000324, 1 error
/// - Claude 3.5 Haiku: 1 × (800 in, 200 out, $0.00144)
/// - 2 requests that reached no model (rejected input): $0.0000012 each (API + Lambda)
///
/// Totals: 8 requests, 1 error, 5,400 + 1,600 tokens, $0.0019344.
/// Outside it (must not count): a dear request before and after the window, and another
/// service's request inside it.
fn recent_requests(s: i64) -> Vec<(&'static str, Req)> {
    let mut lite_error = req(s + 200 * MIN, Some(LITE), 1_000, 500, 0.00018);
    lite_error.error = true;
    vec![
        (SERVICE, req(s + 10 * MIN, Some(MICRO), 800, 200, 0.000056)),
        (SERVICE, req(s + 20 * MIN, Some(LITE), 1_200, 300, 0.000144)),
        (SERVICE, req(s + 30 * MIN, Some(HAIKU), 800, 200, 0.00144)),
        (SERVICE, req(s + 40 * MIN, None, 0, 0, 0.0000012)),
        (SERVICE, req(s + 50 * MIN, None, 0, 0, 0.0000012)),
        (SERVICE, req(s + 70 * MIN, Some(MICRO), 800, 200, 0.000056)),
        (SERVICE, req(s + 130 * MIN, Some(MICRO), 800, 200, 0.000056)),
        (SERVICE, lite_error),
        (SERVICE, req(s - 10 * MIN, Some(MICRO), 800, 200, 1.0)),
        (
            SERVICE,
            req(s + 4 * HOUR + 5 * MIN, Some(MICRO), 800, 200, 1.0),
        ),
        (
            "chatbot-other",
            req(s + 15 * MIN, Some(MICRO), 800, 200, 5.0),
        ),
    ]
}

/// 2025-03-01T22:00Z .. 2025-03-02T02:00Z, across midnight UTC and months old (1 h periods).
const OLD_START: i64 = 1_740_866_400;

fn old_requests() -> Vec<Req> {
    vec![
        req(OLD_START + 30 * MIN, Some(MICRO), 800, 200, 0.000056), // 2025-03-01 22:30
        req(OLD_START + 119 * MIN, Some(LITE), 1_200, 300, 0.000144), // 2025-03-01 23:59
        req(OLD_START + 195 * MIN, Some(HAIKU), 800, 200, 0.00144), // 2025-03-02 01:15
    ]
}

async fn seed_metrics(moto: &MotoStack, s: i64) {
    let config = seed::config(moto.endpoint()).await;
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    for (service, r) in recent_requests(s) {
        seed::put_request(&cw, service, &r).await;
    }
    for r in old_requests() {
        seed::put_request(&cw, SERVICE, &r).await;
    }
}

fn report(moto: &MotoStack, extra: &[&str]) -> moto_rig::cli::Output {
    let mut args = vec![
        "cost-report",
        "--service",
        SERVICE,
        "--endpoint-url",
        moto.endpoint(),
    ];
    args.extend_from_slice(extra);
    chatbot(&args, TEST_AWS)
}

fn ok_json(out: &moto_rig::cli::Output) -> Value {
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// The cells of the table line whose first column is `key` (keys may hold one space).
fn table_row(table: &str, key: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no row {key:?} in\n{table}"));
    line[key.len()..]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn report_figures_equal_the_seeded_sums() {
    let moto = MotoStack::start().await;
    let s = recent_window_start();
    seed_metrics(&moto, s).await;
    let (start, end) = (rfc3339(s), rfc3339(s + 4 * HOUR));
    let window = ["--start", start.as_str(), "--end", end.as_str()];

    // JSON, by model: every figure exact.
    let out = report(&moto, &[&window[..], &["--format", "json"]].concat());
    let doc = ok_json(&out);
    assert_eq!(doc["groupBy"], "model");
    assert_eq!(doc["windowSeconds"], 4 * HOUR);
    assert_eq!(doc["periodSeconds"], 60);
    let rows = doc["rows"].as_array().unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [HAIKU, LITE, MICRO, "(no model)"], "dearest first");
    let expect = |row: &Value, figures: [&str; 9]| {
        let [
            requests,
            errors,
            input,
            output,
            cost,
            per_req,
            per_1k,
            projection,
            unknown,
        ] = figures;
        let num = |v: &Value| v.as_u64().map(|n| n.to_string());
        let text = |v: &Value| {
            v.as_str()
                .map(str::to_owned)
                .or(v.is_null().then(String::new))
        };
        assert_eq!(num(&row["requests"]).unwrap(), requests, "{row}");
        assert_eq!(num(&row["errors"]).unwrap(), errors, "{row}");
        assert_eq!(num(&row["inputTokens"]).unwrap(), input, "{row}");
        assert_eq!(num(&row["outputTokens"]).unwrap(), output, "{row}");
        assert_eq!(text(&row["costUsd"]).unwrap(), cost, "{row}");
        assert_eq!(text(&row["usdPerRequest"]).unwrap(), per_req, "{row}");
        assert_eq!(text(&row["usdPer1kTokens"]).unwrap(), per_1k, "{row}");
        // 4 hours of data: 30 days is 180 windows.
        assert_eq!(text(&row["projected30dUsd"]).unwrap(), projection, "{row}");
        // "-": not counted (no --log-group).
        match unknown {
            "-" => assert!(row["costUnknownRequests"].is_null(), "{row}"),
            n => assert_eq!(num(&row["costUnknownRequests"]).unwrap(), n, "{row}"),
        }
    };
    // Haiku: 1 request, $0.00144; per 1K tokens 0.00144 × 1000 / 1000; × 180 = 0.2592.
    expect(
        &rows[0],
        [
            "1", "0", "800", "200", "0.00144", "0.00144", "0.00144", "0.2592", "-",
        ],
    );
    // Lite: $0.000144 + $0.00018 = $0.000324; / 2 = 0.000162; × 1000 / 3000 = 0.000108.
    expect(
        &rows[1],
        [
            "2", "1", "2200", "800", "0.000324", "0.000162", "0.000108", "0.05832", "-",
        ],
    );
    // Micro: 3 × $0.000056.
    expect(
        &rows[2],
        [
            "3", "0", "2400", "600", "0.000168", "0.000056", "0.000056", "0.03024", "-",
        ],
    );
    // No model: the service total minus the models: 2 × $0.0000012, no tokens.
    expect(
        &rows[3],
        [
            "2",
            "0",
            "0",
            "0",
            "0.0000024",
            "0.0000012",
            "",
            "0.000432",
            "-",
        ],
    );
    // Total: $0.0019344 / 8 = 0.0002418; × 1000 / 7000 = 0.000276342857… → 10 places.
    expect(
        &doc["total"],
        [
            "8",
            "1",
            "5400",
            "1600",
            "0.0019344",
            "0.0002418",
            "0.0002763429",
            "0.348192",
            "-",
        ],
    );
    // 3 [Service] series (requests = Latency's sample count, errors, cost) + 3 model × variant
    // pairs × 5 (the same and the tokens). Progress went to stderr (piped here: plain lines),
    // never into the JSON.
    assert!(
        out.stderr
            .contains("cost-report: reading 18 metric series from CloudWatch"),
        "{}",
        out.stderr
    );

    // The table: the same figures rounded for reading, and a totals row.
    let out = report(&moto, &[&window[..], &["--quiet"]].concat());
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "", "--quiet prints nothing on stderr");
    let table = &out.stdout;
    assert!(
        table.starts_with(&format!(
            "Cost report: service {SERVICE}, namespace ServerlessChatbot, {start} to {end} (4 h), by model\n"
        )),
        "{table}"
    );
    assert_eq!(
        table_row(table, HAIKU),
        [
            "1",
            "0",
            "800",
            "200",
            "0.001440",
            "0.00144000",
            "0.00144000",
            "0.259200"
        ]
    );
    assert_eq!(
        table_row(table, "(no model)"),
        [
            "2",
            "0",
            "0",
            "0",
            "0.000002",
            "0.00000120",
            "-",
            "0.000432"
        ]
    );
    assert_eq!(
        table_row(table, "TOTAL"),
        [
            "8",
            "1",
            "5,400",
            "1,600",
            "0.001934",
            "0.00024180",
            "0.00027634",
            "0.348192"
        ]
    );
    assert!(
        table.contains("Requests with an unknown cost (a model missing from the pricing table): count not available; pass --log-group"),
        "{table}"
    );

    // By variant: challenger = Lite + Haiku, control = Micro, the rest unassigned.
    let doc = ok_json(&report(
        &moto,
        &[
            &window[..],
            &["--by", "variant", "--format", "json", "--quiet"],
        ]
        .concat(),
    ));
    assert_eq!(doc["groupBy"], "variant");
    let rows = doc["rows"].as_array().unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["challenger", "control", "(no variant)"]);
    // $0.00144 + $0.000324 = $0.001764 over 3 requests; 3,000 + 1,000 tokens.
    expect(
        &rows[0],
        [
            "3", "1", "3000", "1000", "0.001764", "0.000588", "0.000441", "0.31752", "-",
        ],
    );
    expect(
        &rows[1],
        [
            "3", "0", "2400", "600", "0.000168", "0.000056", "0.000056", "0.03024", "-",
        ],
    );
    assert_eq!(doc["total"]["costUsd"], "0.0019344");

    // CSV by hour: four UTC hours, exact figures.
    let out = report(
        &moto,
        &[&window[..], &["--by", "hour", "--format", "csv", "--quiet"]].concat(),
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "hour,requests,errors,input_tokens,output_tokens,cost_usd,usd_per_request,usd_per_1k_tokens,projected_30d_usd,cost_unknown_requests"
    );
    let hour = |h: i64| {
        let full = rfc3339(s + h * HOUR);
        format!("{}Z", &full[..16])
    };
    // Hour 0: Micro + Lite + Haiku + 2 unmodelled = 0.000056 + 0.000144 + 0.00144 + 0.0000024
    // = 0.0016424 over 3,600 s: × 720 = 1.182528; tokens 2,800 + 700.
    assert_eq!(
        lines[1],
        format!(
            "{},5,0,2800,700,0.0016424,0.00032848,0.0004692571,1.182528,",
            hour(0)
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "{},1,0,800,200,0.000056,0.000056,0.000056,0.04032,",
            hour(1)
        )
    );
    assert_eq!(
        lines[3],
        format!(
            "{},1,0,800,200,0.000056,0.000056,0.000056,0.04032,",
            hour(2)
        )
    );
    assert_eq!(
        lines[4],
        format!("{},1,1,1000,500,0.00018,0.00018,0.00012,0.1296,", hour(3))
    );
    assert_eq!(
        lines[5],
        "TOTAL,8,1,5400,1600,0.0019344,0.0002418,0.0002763429,0.348192,"
    );
    assert_eq!(lines.len(), 7, "{}", out.stdout); // and the final CRLF

    // By day, months ago, across midnight UTC: 1-hour periods, two partial days.
    let out = report(
        &moto,
        &[
            "--start",
            "2025-03-01T22:00:00Z",
            "--end",
            "2025-03-02T02:00:00Z",
            "--by",
            "day",
            "--format",
            "json",
            "--quiet",
        ],
    );
    let doc = ok_json(&out);
    assert_eq!(doc["periodSeconds"], 3_600);
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{doc}");
    // 2025-03-01: $0.000056 + $0.000144 in the 2 hours it has in the window: × 360.
    assert_eq!(rows[0]["key"], "2025-03-01");
    assert_eq!(rows[0]["requests"], 2);
    assert_eq!(rows[0]["costUsd"], "0.0002");
    assert_eq!(rows[0]["projected30dUsd"], "0.072");
    assert_eq!(rows[1]["key"], "2025-03-02");
    assert_eq!(rows[1]["costUsd"], "0.00144");
    assert_eq!(rows[1]["projected30dUsd"], "0.5184");
    assert_eq!(doc["total"]["costUsd"], "0.00164");
    assert_eq!(doc["total"]["projected30dUsd"], "0.2952");
}

/// A summary log line as the function writes it (serde_json writes small doubles as `5.6e-5`).
fn summary_line(at_ms: i64, id: &str, model: &str, input: u64, output: u64, cost: f64) -> String {
    summary_with(
        at_ms,
        id,
        model,
        serde_json::json!({"inputTokens": input, "outputTokens": output, "costUsd": cost}),
    )
}

/// A summary line with `extra` fields (cost, tokens, `costUnknown`, cache tokens, …).
fn summary_with(at_ms: i64, id: &str, model: &str, extra: Value) -> String {
    let ts = DateTime::from_millis(at_ms).fmt(Format::DateTime).unwrap();
    let mut line = serde_json::json!({
        "timestamp": ts,
        "level": "INFO",
        "message": "request completed",
        "route": "/api/chat",
        "status": 200,
        "modelId": model,
        "variant": if model == MICRO { "control" } else { "challenger" },
        "service": SERVICE,
        "requestId": id,
        "xrayTraceId": format!("1-6880a1b2-{:0>24}", id.len()),
    });
    for (k, v) in extra.as_object().unwrap() {
        line[k] = v.clone();
    }
    line.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn top_lists_the_dearest_requests_from_logs_insights() {
    let moto = MotoStack::start().await;
    let s = recent_window_start();
    let config = seed::config(moto.endpoint()).await;
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    seed::put_request(&cw, SERVICE, &req(s + MIN, Some(MICRO), 800, 200, 0.000056)).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let ms = |secs: i64| secs * 1000;
    seed::put_logs(
        &logs,
        "/aws/lambda/chatbot-test-api",
        &[
            // Before the window: dear, but not in it.
            (
                ms(s - HOUR),
                summary_line(ms(s - HOUR), "req-old", HAIKU, 9_000, 9_000, 9.0),
            ),
            (ms(s + MIN), "START RequestId: 42 Version: $LATEST".into()),
            (
                ms(s + MIN),
                r#"{"message":"server started","costUsd":7}"#.into(),
            ),
            (
                ms(s + 2 * MIN),
                summary_line(ms(s + 2 * MIN), "req-micro", MICRO, 800, 200, 0.000056),
            ),
            (
                ms(s + 3 * MIN),
                summary_line(ms(s + 3 * MIN), "req-haiku", HAIKU, 800, 200, 0.00144),
            ),
            (
                ms(s + 4 * MIN),
                summary_line(ms(s + 4 * MIN), "req-lite", LITE, 1_200, 300, 0.000144),
            ),
        ],
    )
    .await;
    seed::put_logs(
        &logs,
        "/aws/lambda/chatbot-test-stream",
        &[(
            ms(s + 5 * MIN),
            summary_line(ms(s + 5 * MIN), "req-lite-2", LITE, 1_000, 500, 0.00018),
        )],
    )
    .await;
    let (start, end) = (rfc3339(s), rfc3339(s + 4 * HOUR));
    let args = [
        "--start",
        start.as_str(),
        "--end",
        end.as_str(),
        "--top",
        "10",
        "--log-group",
        "/aws/lambda/chatbot-test-api",
        "--log-group",
        "/aws/lambda/chatbot-test-stream",
    ];

    let out = report(&moto, &[&args[..], &["--format", "json"]].concat());
    let doc = ok_json(&out);
    let top = doc["top"].as_array().unwrap();
    let got: Vec<(&str, &str)> = top
        .iter()
        .map(|t| {
            (
                t["requestId"].as_str().unwrap(),
                t["costUsd"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("req-haiku", "0.00144"),
            ("req-lite-2", "0.00018"),
            ("req-lite", "0.000144"),
            ("req-micro", "0.000056"),
        ]
    );
    assert_eq!(top[0]["modelId"], HAIKU);
    assert_eq!(top[0]["inputTokens"], 800);
    assert_eq!(top[0]["xrayTraceId"], "1-6880a1b2-000000000000000000000009");
    assert_eq!(top[0]["time"], rfc3339(s + 3 * MIN));
    assert!(
        out.stderr
            .contains("cost-report: Logs Insights query Complete"),
        "progress while polling: {}",
        out.stderr
    );

    // The table has a second section with the same requests.
    let out = report(&moto, &[&args[..], &["--quiet"]].concat());
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("Most expensive requests (Logs Insights, 4 found):"),
        "{}",
        out.stdout
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("req-haiku"))
        .expect("haiku row");
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells[cells.len() - 3..],
        ["800", "200", "0.00144000"],
        "{line}"
    );

    // A log group that does not exist: a clear error, exit 1.
    let out = report(
        &moto,
        &[
            "--start",
            start.as_str(),
            "--end",
            end.as_str(),
            "--top",
            "3",
            "--log-group",
            "/aws/lambda/nope",
            "--quiet",
        ],
    );
    assert_eq!(out.code(), Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("StartQuery: not found"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_window_says_no_data_and_exits_3() {
    let moto = MotoStack::start().await;
    let s = recent_window_start();
    let config = seed::config(moto.endpoint()).await;
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    seed::put_request(
        &cw,
        "chatbot-prod",
        &req(s + MIN, Some(MICRO), 800, 200, 0.000056),
    )
    .await;
    let out = report(&moto, &["--since", "24h", "--format", "json"]);
    assert_eq!(out.code(), Some(3), "{}", out.stderr);
    assert_eq!(out.stdout, "", "nothing on stdout");
    assert!(
        out.stderr.contains(&format!(
            "no data: no Latency metric for Service={SERVICE} in namespace ServerlessChatbot"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Services with metrics in this namespace: chatbot-prod"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_unknown_requests_are_counted_from_the_summary_lines() {
    let moto = MotoStack::start().await;
    let s = recent_window_start();
    let config = seed::config(moto.endpoint()).await;
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    // Two priced Nova Micro requests, one on a model with no price (no CostUSD metric).
    let mut unpriced = req(s + 70 * MIN, Some(UNPRICED), 500, 100, 0.0);
    unpriced.cost_unknown = true;
    for r in [
        req(s + 10 * MIN, Some(MICRO), 800, 200, 0.000056),
        req(s + 20 * MIN, Some(MICRO), 800, 200, 0.000056),
        unpriced,
    ] {
        seed::put_request(&cw, SERVICE, &r).await;
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let ms = |secs: i64| secs * 1000;
    let unknown = |at: i64, id: &str| {
        (
            ms(at),
            summary_with(
                ms(at),
                id,
                UNPRICED,
                serde_json::json!({"inputTokens": 500, "outputTokens": 100, "costUnknown": true}),
            ),
        )
    };
    seed::put_logs(
        &logs,
        LOG_GROUP,
        &[
            // Before the window: not counted.
            unknown(s - HOUR, "req-old"),
            (
                ms(s + 10 * MIN),
                summary_line(ms(s + 10 * MIN), "req-1", MICRO, 800, 200, 0.000056),
            ),
            (
                ms(s + 20 * MIN),
                summary_line(ms(s + 20 * MIN), "req-2", MICRO, 800, 200, 0.000056),
            ),
            unknown(s + 70 * MIN, "req-3"),
            // The same request's EMF document, in the same log group: not a summary line.
            (
                ms(s + 70 * MIN),
                serde_json::json!({
                    "_aws": {"Timestamp": ms(s + 70 * MIN), "CloudWatchMetrics": []},
                    "Service": SERVICE, "Model": UNPRICED, "Variant": "challenger",
                    "requestId": "req-3", "costUnknown": true,
                })
                .to_string(),
            ),
        ],
    )
    .await;
    let (start, end) = (rfc3339(s), rfc3339(s + 4 * HOUR));
    let window = ["--start", start.as_str(), "--end", end.as_str()];
    let with_logs = [&window[..], &["--log-group", LOG_GROUP, "--quiet"]].concat();

    let doc = ok_json(&report(
        &moto,
        &[&with_logs[..], &["--format", "json"]].concat(),
    ));
    let rows = doc["rows"].as_array().unwrap();
    let got: Vec<(&str, u64, &str, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap(),
                r["requests"].as_u64().unwrap(),
                r["costUsd"].as_str().unwrap(),
                r["costUnknownRequests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(MICRO, 2, "0.000112", 0), (UNPRICED, 1, "0", 1)],
        "{doc}"
    );
    assert_eq!(doc["total"]["requests"], 3);
    assert_eq!(doc["total"]["inputTokens"], 2_100);
    assert_eq!(doc["total"]["costUnknownRequests"], 1);
    // Per request: over the priced requests only (none for the unpriced model).
    assert!(rows[1]["usdPerRequest"].is_null(), "{doc}");
    assert_eq!(doc["total"]["usdPerRequest"], "0.000056");

    // The table warns; per hour, the request lands in its hour.
    let out = report(&moto, &with_logs);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("Warning: 1 request(s) used a model missing from the pricing table"),
        "{}",
        out.stdout
    );
    let out = report(
        &moto,
        &[&with_logs[..], &["--by", "hour", "--format", "csv"]].concat(),
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let unknown_per_hour: Vec<&str> = out
        .stdout
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.rsplit(',').next().unwrap())
        .collect();
    assert_eq!(
        unknown_per_hour,
        ["0", "1", "0", "0", "1"],
        "{}",
        out.stdout
    );

    // Without --log-group the count is not available (null), and the table says so.
    let doc = ok_json(&report(
        &moto,
        &[&window[..], &["--format", "json", "--quiet"]].concat(),
    ));
    assert!(doc["total"]["costUnknownRequests"].is_null(), "{doc}");
}

/// Our metrics and Bedrock's for the reconcile tests, in the window [s, s + 4 h):
/// - Nova Micro: ours 2,400 in / 600 out; Bedrock the same, and 1,000 cache-read / 500
///   cache-write tokens, which our summary lines also report (600 + 400 read, 500 write);
/// - Nova Lite: ours 2,200 / 800, Bedrock 2,000 / 800: input +10 %;
/// - Nova Pro: ours 10,000 / 2,000 over two variants; Bedrock 7,000 / 1,500 standard and
///   3,000 / 500 on the priority tier (`+priority`), folded: the same;
/// - Titan embeddings: Bedrock only (another caller in the account).
///
/// Outside the window (must not count): a large Bedrock count before it.
async fn seed_reconcile(moto: &MotoStack, s: i64) {
    let config = seed::config(moto.endpoint()).await;
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    let mut pro_b = req(s + 50 * MIN, Some(PRO), 4_000, 1_000, 0.0064);
    pro_b.variant = Some("control");
    for r in [
        req(s + 10 * MIN, Some(MICRO), 800, 200, 0.000056),
        req(s + 70 * MIN, Some(MICRO), 800, 200, 0.000056),
        req(s + 130 * MIN, Some(MICRO), 800, 200, 0.000056),
        req(s + 20 * MIN, Some(LITE), 1_200, 300, 0.000144),
        req(s + 200 * MIN, Some(LITE), 1_000, 500, 0.00018),
        req(s + 40 * MIN, Some(PRO), 6_000, 1_000, 0.008),
        pro_b,
        req(s + 45 * MIN, None, 0, 0, 0.0000012),
    ] {
        seed::put_request(&cw, SERVICE, &r).await;
    }
    let (input, output) = ("InputTokenCount", "OutputTokenCount");
    let (read, write) = ("CacheReadInputTokenCount", "CacheWriteInputTokenCount");
    // (model id, time, token counts)
    type Published<'a> = (&'a str, i64, &'a [(&'a str, u64)]);
    let bedrock: [Published; 8] = [
        (
            MICRO,
            s + 10 * MIN,
            &[(input, 800), (output, 200), (read, 600), (write, 500)],
        ),
        (
            MICRO,
            s + 70 * MIN,
            &[(input, 1_600), (output, 400), (read, 400)],
        ),
        (LITE, s + 20 * MIN, &[(input, 1_000), (output, 300)]),
        (LITE, s + 200 * MIN, &[(input, 1_000), (output, 500)]),
        (PRO, s + 40 * MIN, &[(input, 7_000), (output, 1_500)]),
        (
            "us.amazon.nova-pro-v1:0+priority",
            s + 50 * MIN,
            &[(input, 3_000), (output, 500)],
        ),
        (
            "amazon.titan-embed-text-v2:0",
            s + 60 * MIN,
            &[(input, 5_000)],
        ),
        (MICRO, s - 10 * MIN, &[(input, 99_999), (output, 99_999)]),
    ];
    for (model, at, tokens) in bedrock {
        seed::put_bedrock(&cw, model, at, tokens).await;
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let ms = |secs: i64| secs * 1000;
    let cached = |at: i64, id: &str, fields: Value| {
        let mut extra =
            serde_json::json!({"inputTokens": 800, "outputTokens": 200, "costUsd": 0.000056});
        for (k, v) in fields.as_object().unwrap() {
            extra[k] = v.clone();
        }
        (ms(at), summary_with(ms(at), id, MICRO, extra))
    };
    seed::put_logs(
        &logs,
        LOG_GROUP,
        &[
            cached(
                s + 10 * MIN,
                "req-1",
                serde_json::json!({"cacheReadInputTokens": 600, "cacheWriteInputTokens": 500}),
            ),
            cached(
                s + 70 * MIN,
                "req-2",
                serde_json::json!({"cacheReadInputTokens": 400}),
            ),
            cached(s + 130 * MIN, "req-3", serde_json::json!({})),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_reports_token_drift_against_aws_bedrock() {
    let moto = MotoStack::start().await;
    let s = recent_window_start();
    seed_reconcile(&moto, s).await;
    let (start, end) = (rfc3339(s), rfc3339(s + 4 * HOUR));
    let window = [
        "--start",
        start.as_str(),
        "--end",
        end.as_str(),
        "--reconcile",
    ];

    // JSON, without the logs: Lite's input drifts +10 % > 2 %: printed, then exit 4.
    let out = report(&moto, &[&window[..], &["--format", "json"]].concat());
    assert_eq!(out.code(), Some(4), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("chatbot: token drift above 2%: us.amazon.nova-lite-v1:0 input +10.00%"),
        "{}",
        out.stderr
    );
    let doc: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(doc["maxDriftPct"], 2.0);
    assert_eq!(doc["bedrockNamespace"], "AWS/Bedrock");
    assert_eq!(doc["cacheCompared"], false);
    let models = doc["models"].as_array().unwrap();
    let names: Vec<(&str, &str)> = models
        .iter()
        .map(|m| (m["model"].as_str().unwrap(), m["side"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("amazon.titan-embed-text-v2:0", "aws"),
            (LITE, "both"),
            (MICRO, "both"),
            (PRO, "both"),
        ]
    );
    let tokens = |model: &str, kind: &str| {
        models
            .iter()
            .find(|m| m["model"] == model)
            .map(|m| m["tokens"][kind].clone())
            .unwrap()
    };
    let lite = tokens(LITE, "input");
    assert_eq!(lite["ours"], 2_200);
    assert_eq!(lite["aws"], 2_000);
    assert_eq!(lite["driftPct"], 10.0);
    assert_eq!(lite["exceeded"], true);
    assert_eq!(tokens(LITE, "output")["driftPct"], 0.0);
    let micro = tokens(MICRO, "input");
    assert_eq!(
        (micro["ours"].as_u64(), micro["aws"].as_u64()),
        (Some(2_400), Some(2_400))
    );
    assert_eq!(tokens(MICRO, "cacheRead")["status"], "not compared");
    assert!(tokens(MICRO, "cacheRead")["ours"].is_null());
    assert_eq!(tokens(MICRO, "cacheRead")["aws"], 1_000);
    // Pro: the priority tier folded into its model.
    let pro = models.iter().find(|m| m["model"] == PRO).unwrap();
    assert_eq!(
        pro["bedrockModelIds"],
        serde_json::json!([PRO, "us.amazon.nova-pro-v1:0+priority"])
    );
    assert_eq!(tokens(PRO, "input")["aws"], 10_000);
    assert_eq!(tokens(PRO, "input")["driftPct"], 0.0);
    assert_eq!(tokens(PRO, "output")["ours"], 2_000);
    assert_eq!(
        tokens("amazon.titan-embed-text-v2:0", "input")["status"],
        "only AWS/Bedrock"
    );
    assert_eq!(
        doc["exceeded"],
        serde_json::json!([{"model": LITE, "tokens": "input", "driftPct": 10.0}])
    );

    // The table, with the logs: cache tokens compared too.
    let out = report(
        &moto,
        &[&window[..], &["--log-group", LOG_GROUP, "--quiet"]].concat(),
    );
    assert_eq!(out.code(), Some(4), "{}", out.stderr);
    let line = |model: &str, kind: &str| -> Vec<String> {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{model} ")) && l.contains(&format!(" {kind} ")))
            .unwrap_or_else(|| panic!("no {model} {kind} in\n{}", out.stdout))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        line(LITE, "input"),
        [LITE, "input", "2,200", "2,000", "+10.00%", "DRIFT"]
    );
    assert_eq!(
        line(MICRO, "read"),
        [MICRO, "cache", "read", "1,000", "1,000", "0.00%", "ok"]
    );
    assert_eq!(
        line(MICRO, "write"),
        [MICRO, "cache", "write", "500", "500", "0.00%", "ok"]
    );
    assert!(
        out.stdout
            .contains("On one side only (listed, not compared): amazon.titan-embed-text-v2:0."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("1 comparison(s) above 2%: exit status 4."),
        "{}",
        out.stdout
    );

    // Within a 15 % threshold: exit 0.
    let out = report(
        &moto,
        &[
            &window[..],
            &["--log-group", LOG_GROUP, "--max-drift", "15", "--quiet"],
        ]
        .concat(),
    );
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("Every comparison is within 15%."),
        "{}",
        out.stdout
    );
    assert_eq!(out.stderr, "");

    // --max-drift needs --reconcile; --reconcile does not take --top.
    let out = report(&moto, &["--max-drift", "5"]);
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    let out = report(
        &moto,
        &["--reconcile", "--top", "3", "--log-group", LOG_GROUP],
    );
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_within_the_threshold_exits_0() {
    let moto = MotoStack::start().await;
    let s = recent_window_start();
    let config = seed::config(moto.endpoint()).await;
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    seed::put_request(&cw, SERVICE, &req(s + MIN, Some(MICRO), 800, 200, 0.000056)).await;
    // Bedrock counted 1 % more input (a request the function never saw, say): within 2 %.
    seed::put_bedrock(
        &cw,
        MICRO,
        s + MIN,
        &[("InputTokenCount", 808), ("OutputTokenCount", 200)],
    )
    .await;
    let (start, end) = (rfc3339(s), rfc3339(s + HOUR));
    let out = report(
        &moto,
        &[
            "--start",
            start.as_str(),
            "--end",
            end.as_str(),
            "--reconcile",
            "--format",
            "csv",
            "--quiet",
        ],
    );
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.split("\r\n").collect();
    assert_eq!(lines[0], "model,tokens,ours,aws,drift_pct,status");
    // (800 − 808) / 808 × 100 = −0.990099…
    assert_eq!(lines[1], format!("{MICRO},input,800,808,-0.9901,ok"));
    assert_eq!(lines[2], format!("{MICRO},output,200,200,0,ok"));
    assert_eq!(lines[3], format!("{MICRO},cacheRead,,0,,not compared"));
}

#[test]
fn missing_credentials_or_region_are_named_before_any_call() {
    // Nothing listens on port 9; the check must fail before any request is tried.
    let args = [
        "cost-report",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--since",
        "1h",
    ];
    let out = chatbot(&args, &[("AWS_REGION", "us-east-1")]);
    assert_eq!(out.code(), Some(1), "{}", out.stdout);
    assert!(
        out.stderr.contains("chatbot: no AWS credentials found"),
        "{}",
        out.stderr
    );
    assert!(out.elapsed.as_secs() < 20, "took {:?}", out.elapsed);
    assert_eq!(out.stdout, "");

    let out = chatbot(
        &args,
        &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")],
    );
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains("chatbot: no AWS region"),
        "{}",
        out.stderr
    );

    let out = chatbot(&["cost-report", "--since", "3y"], TEST_AWS);
    assert_eq!(out.code(), Some(2), "a usage error");
    assert!(out.stderr.contains("invalid duration"), "{}", out.stderr);
}

#[test]
fn help_shows_real_examples() {
    let out = chatbot(&["cost-report", "--help"], &[]);
    assert_eq!(out.code(), Some(0));
    for needle in [
        "chatbot cost-report --service chatbot-dev --since 7d",
        "--top 5 --log-group /aws/lambda/chatbot-dev-api",
        "TOTAL",
        "USD/REQUEST",
        "--reconcile",
        "4 --reconcile found a drift above --max-drift",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} in\n{}", out.stdout);
    }
    let out = chatbot(&["--help"], &[]);
    assert!(out.stdout.contains("cost-report"), "{}", out.stdout);
    assert!(out.stdout.contains("cost-estimate"), "{}", out.stdout);
}

#[test]
fn cost_estimate_prices_the_seed_scenario() {
    let out = chatbot(
        &[
            "cost-estimate",
            "--model",
            MICRO,
            "--model",
            LITE,
            "--avg-duration-ms",
            "1000",
            "--format",
            "json",
        ],
        &[],
    );
    let doc = ok_json(&out);
    assert_eq!(doc["freeTierApplied"], false);
    assert_eq!(doc["usage"]["inputTokens"], 8_000_000);
    assert_eq!(doc["usage"]["gbSeconds"], "1250");
    let lite = &doc["models"][1];
    assert_eq!(lite["model"], LITE);
    // 8,000,000 × 0.00006 / 1K = 0.48; 2,000,000 × 0.00024 / 1K = 0.48
    assert_eq!(lite["bedrockInputUsd"], "0.48");
    assert_eq!(lite["bedrockOutputUsd"], "0.48");
    // 1,250 GB-s × 0.0000133334; 10,000 × 0.0000002; 10,000 × 0.000001
    assert_eq!(lite["lambdaComputeUsd"], "0.01666675");
    assert_eq!(lite["lambdaRequestsUsd"], "0.002");
    assert_eq!(lite["apiGatewayUsd"], "0.01");
    assert_eq!(lite["requestCostsUsd"], "0.98866675");
    assert_eq!(doc["models"][0]["requestCostsUsd"], "0.58866675");
    // The deploy's observability, the same for each model: 13 custom metrics (one model ×
    // variant pair) × 0.30 + 14 alarm metrics × 0.10 + 1 dashboard × 3 + 10,000 requests ×
    // LOG_BYTES_PER_REQUEST of logs (0.50 / GB in, 0.03 / GB-month kept 14 of 30 days) + 10,000
    // traces × 5 / 1M.
    let bytes = chatbot_cost::observability::LOG_BYTES_PER_REQUEST;
    let gb = Decimal::from(10_000 * bytes) / Decimal::from(1u64 << 30);
    let logs = gb * Decimal::from_str("0.50").unwrap()
        + gb * Decimal::from(14) / Decimal::from(30) * Decimal::from_str("0.03").unwrap();
    let expected = (Decimal::from_str("8.35").unwrap() + logs).round_dp(10);
    assert_eq!(
        doc["models"][0]["observabilityUsd"],
        expected.normalize().to_string()
    );
    assert_eq!(doc["usage"]["customMetrics"], 13);
    assert_eq!(doc["usage"]["alarmMetrics"], 14);
    assert_eq!(doc["usage"]["xrayTraces"], "10000");
    assert_eq!(
        doc["observability"]["totalUsd"],
        expected.normalize().to_string()
    );
    let lines: Vec<(&str, &str)> = doc["observability"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["line"].as_str().unwrap(), l["usd"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines[..3],
        [
            ("customMetrics", "3.9"),
            ("alarms", "1.4"),
            ("dashboards", "3")
        ]
    );
    assert_eq!(lines[5], ("xrayTraces", "0.05"));
    assert_eq!(
        lite["totalUsd"],
        (Decimal::from_str("0.98866675").unwrap() + expected)
            .normalize()
            .to_string()
    );
    // Each further model × variant pair: 5 more metrics.
    let out = chatbot(
        &["cost-estimate", "--variants", "3", "--format", "json"],
        &[],
    );
    assert_eq!(ok_json(&out)["usage"]["customMetrics"], 23);

    let out = chatbot(&["cost-estimate"], &[]);
    assert_eq!(out.code(), Some(0));
    assert!(
        out.stdout.contains("Free tier not applied"),
        "{}",
        out.stdout
    );

    let out = chatbot(&["cost-estimate", "--model", "meta.llama9"], &[]);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains("no price for model \"meta.llama9\""),
        "{}",
        out.stderr
    );
}

/// The estimate's default log volume per request is what the service really writes: one EMF
/// document and one summary line for a typical chat request (the real service in process, on
/// the offline model, with its JSON log lines captured as in Lambda), configured as deployed:
/// a stage's service name, Lambda's memory size (compute cost), the service's daily budget.
#[tokio::test(flavor = "multi_thread")]
async fn log_bytes_default_matches_a_real_request() {
    let ev = evidence::capture::evidence();
    let mut config = service_rig::config();
    config.service_name = "chatbot-dev".into();
    config.lambda_memory_mb = Some(128);
    config.daily_budget_usd = Some("5".into());
    let svc = service_rig::service(config, bedrock_offline::OfflineConfig::default()).await;
    let mut measured = Vec::new();
    for text in [
        "What does it cost to run a chatbot on AWS Lambda?",
        "Summarise the difference between Nova Micro and Nova Lite in two sentences.",
    ] {
        let r = svc.chat(text).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let id = r.request_id().to_owned();
        let emf = svc
            .wait_emf(measured.len() + 1)
            .await
            .into_iter()
            .find(|d| d["requestId"] == id)
            .expect("the request's EMF document");
        let summary = ev.summaries(&id).pop().expect("the request's summary line");
        // One line each, newline included: the bytes CloudWatch Logs ingests.
        let bytes = serde_json::to_string(&emf).unwrap().len()
            + 1
            + serde_json::to_string(&summary).unwrap().len()
            + 1;
        println!("request {id}: EMF document + summary line = {bytes} bytes");
        measured.push(bytes as f64);
    }
    let mean = measured.iter().sum::<f64>() / measured.len() as f64;
    let default = chatbot_cost::observability::LOG_BYTES_PER_REQUEST as f64;
    assert!(
        (default - mean).abs() <= 0.15 * mean,
        "LOG_BYTES_PER_REQUEST = {default} is not within 15 % of the measured {mean} bytes"
    );
}
