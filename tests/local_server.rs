//! What crosses a socket on the local host: the README's run command (the real binary) serving
//! the page and the API, and a client hanging up mid-stream.

mod evidence;
mod service_rig;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bedrock_offline::OfflineConfig;
use futures_util::StreamExt;
use service_rig::{chat_body, config, service};

/// The README's run command is `cargo run --release`: the same binary with no arguments. Here it
/// runs with its defaults except the port (an ephemeral one), as a user would start it.
#[tokio::test]
async fn the_run_command_prints_a_url_that_serves_page_and_api() {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatbot"))
        .env("CHATBOT_LISTEN", "127.0.0.1:0")
        .env("CHATBOT_OFFLINE_TTFT_MS", "0")
        .env("CHATBOT_OFFLINE_TOKENS_PER_SEC", "0")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chatbot");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let url = stderr
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("http://127.0.0.1:"))
                .map(str::to_owned)
        })
        .expect("a URL in the banner");
    eprintln!("server printed {url} after {:?}", started.elapsed());

    let http = reqwest::Client::new();
    let health: serde_json::Value = http
        .get(format!("{url}/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let page = http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<textarea") && html.contains("app.js"),
        "the chat page"
    );
    let t = Instant::now();
    let chat = http
        .post(format!("{url}/api/chat"))
        .header("content-type", "application/json")
        .body(chat_body("hello from the test"))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
    let v: serde_json::Value = chat.json().await.unwrap();
    eprintln!(
        "chat round trip against the offline model: {:?}",
        t.elapsed()
    );
    assert!(v["reply"].as_str().unwrap().contains("hello from the test"));

    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Not a terminal: JSON lines — the startup line, then per request one summary and one EMF doc.
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(lines.iter().any(|l| l["message"] == "server started"));
    let summaries = lines
        .iter()
        .filter(|l| l["message"] == "request completed")
        .count();
    let emf = lines.iter().filter(|l| l.get("_aws").is_some()).count();
    assert_eq!(
        (summaries, emf),
        (2, 2),
        "health + chat; static files are not API requests"
    );
}

/// The client goes away mid-stream: the Bedrock stream is dropped promptly, and the request
/// still leaves its evidence, marked as a client abort.
#[tokio::test]
async fn a_client_hanging_up_cancels_the_model_stream() {
    let offline = OfflineConfig {
        tokens_per_sec: 20.0,
        ..OfflineConfig::default()
    };
    let svc = service(config(), offline).await;
    let stats = svc.offline.as_ref().unwrap().stats();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = svc.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let res = reqwest::Client::new()
        .post(format!("http://{addr}/api/chat/stream"))
        .header("content-type", "application/json")
        .body(chat_body("a long story please"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    assert_eq!(stats.active_streams(), 1);
    drop(body);
    let hung_up = Instant::now();

    let mut waited = Duration::ZERO;
    while stats.active_streams() > 0 && waited < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    assert_eq!(
        stats.active_streams(),
        0,
        "the Bedrock stream was not dropped"
    );
    assert_eq!(stats.cancelled_streams(), 1);
    eprintln!(
        "model stream dropped {:?} after the client hung up",
        hung_up.elapsed()
    );

    let docs = svc.wait_emf(1).await;
    let d = &docs[0];
    evidence::emf::validate(d).unwrap();
    assert_eq!(d["clientAborted"], true);
    assert_eq!(d["Errors"], 0);
    assert!(d["TimeToFirstToken"].as_f64().is_some());
    // Tokens billed before the abort were never reported: estimated, and flagged.
    assert_eq!(d["costEstimated"], true, "{d}");
    assert!(d["CostUSD"].as_f64().unwrap() > 0.0, "{d}");
}
