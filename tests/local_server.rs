//! What crosses a socket on the local host: the README's run command (the real binary) serving
//! the page and the API, a client hanging up mid-stream, and the Host check that keeps a
//! loopback server out of reach of DNS rebinding.

mod evidence;
mod service_rig;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bedrock_offline::OfflineConfig;
use chatbot_service::hosts::local::{LocalLimits, frontend_dir, with_frontend};
use futures_util::StreamExt;
use serde_json::Value;
use service_rig::local::LocalServer;
use service_rig::{chat_body, config, service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// One request over a fresh connection, as raw HTTP/1 (so the `Host` header is exactly what the
/// test says, or absent); returns the status, the head and the body.
async fn raw_get(server: &LocalServer, path: &str, host: Option<&str>) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = match host {
        Some(host) => format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        // HTTP/1.0 may leave `Host` out; hyper accepts it.
        None => format!("GET {path} HTTP/1.0\r\n\r\n"),
    };
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("answered and closed")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// DNS rebinding: a page on a name its owner re-points at 127.0.0.1 would be same-origin with
/// a loopback server in the victim's browser. Bound to loopback (the default), the local host
/// serves only requests that name a loopback host, with any port; any other name — or none —
/// gets 421 `misdirected_request`, page paths included, and the refusal leaves its evidence.
#[tokio::test]
async fn on_loopback_only_loopback_host_names_are_served() {
    let svc = service(config(), OfflineConfig::default()).await;
    let frontend = frontend_dir(None).expect("the page in the source tree");
    let server = LocalServer::start(with_frontend(svc.router.clone(), frontend)).await;
    let port = server.addr.port();

    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "LocalHost".to_owned(),
    ] {
        let (status, head, body) = raw_get(&server, "/api/health", Some(&host)).await;
        assert_eq!(status, 200, "{host}: {body}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(head.contains("cache-control: no-store"), "{head}");
        let (status, _, page) = raw_get(&server, "/", Some(&host)).await;
        assert_eq!(status, 200, "{host}");
        assert!(page.contains("<textarea"), "the page for {host}");
    }

    let refused = [
        ("/api/health", Some(format!("evil.example:{port}"))),
        ("/", Some("evil.example".to_owned())),
        ("/app.js", Some(format!("127.0.0.1.evil.example:{port}"))),
        ("/api/health", Some(format!("192.168.1.20:{port}"))),
        ("/api/health", None),
    ];
    let mut ids = Vec::new();
    for (path, host) in &refused {
        let (status, head, body) = raw_get(&server, path, host.as_deref()).await;
        assert_eq!(status, 421, "{host:?} {path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(v["error"]["code"], "misdirected_request", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("localhost"),
            "{v}"
        );
        let id = v["error"]["requestId"].as_str().unwrap().to_owned();
        assert!(head.contains(&format!("x-request-id: {id}")), "{head}");
        ids.push(id);
    }
    assert!(server.stop(Duration::from_secs(3)).await.is_some());

    // Every refusal reached the API router: one EMF document each, a client error (the health
    // checks above left theirs too; page files leave none).
    let docs = svc.emf_docs();
    assert_eq!(docs.len(), 4 + refused.len(), "{docs:?}");
    for id in &ids {
        let d = docs.iter().find(|d| d["requestId"] == id.as_str()).unwrap();
        evidence::emf::validate(d).unwrap();
        assert_eq!(d["statusCode"], 421, "{d}");
        assert_eq!(d["errorCode"], "misdirected_request", "{d}");
        assert_eq!(d["Errors"], 0, "a client's mistake, not the service's: {d}");
    }
}

/// Bound to every interface (an explicit choice to serve a network), the server is reached
/// under names it cannot know, so there is no Host check.
#[tokio::test]
async fn bound_beyond_loopback_any_host_name_is_served() {
    let svc = service(config(), OfflineConfig::default()).await;
    let server =
        LocalServer::start_with("0.0.0.0:0", svc.router.clone(), LocalLimits::default()).await;
    for host in [Some("chat.example.lan:3000"), Some("192.168.1.20"), None] {
        let (status, _, body) = raw_get(&server, "/api/health", host).await;
        assert_eq!(status, 200, "{host:?}: {body}");
    }
    assert!(server.stop(Duration::from_secs(3)).await.is_some());
}
