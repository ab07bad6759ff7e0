//! The README's run command — the real `chatbot` binary as a child process, on the offline
//! model — with its state in the in-process store or in DynamoDB (moto, through the real SDK;
//! the table made by `chatbot create-table`). Its stdout (summary lines, EMF documents) is
//! captured line by line. Clients can come from different loopback addresses (127.0.0.x), which
//! the server sees as different clients.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::lambda_emulator::child::ChildProcess;
use crate::moto_rig::moto::Moto;

pub const TABLE: &str = "chatbot-state";
pub const HASH_KEY: &str = "test-hash-key-0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    InProcess,
    Dynamo,
}

/// A JSON number as an exact decimal.
pub fn dec(v: &Value) -> Decimal {
    let text = v.to_string();
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .unwrap_or_else(|e| panic!("not a decimal: {v} ({e})"))
}

pub struct Server {
    pub child: ChildProcess,
    pub url: String,
    pub moto: Option<Moto>,
}

/// The server's environment: zero-latency offline model, short model deadlines, and for
/// DynamoDB the SDK pointed at `dynamo_endpoint`.
pub fn base_env(kind: StoreKind, dynamo_endpoint: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("CHATBOT_LISTEN", "127.0.0.1:0"),
        ("CHATBOT_OFFLINE_TTFT_MS", "0"),
        ("CHATBOT_OFFLINE_TOKENS_PER_SEC", "0"),
        ("CHATBOT_ATTEMPT_TIMEOUT_MS", "1000"),
        ("CHATBOT_MODEL_TIMEOUT_MS", "1500"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if kind == StoreKind::Dynamo {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("CHATBOT_STATE_TABLE", TABLE),
            ("CHATBOT_HASH_KEY", HASH_KEY),
            (
                "AWS_ENDPOINT_URL_DYNAMODB",
                dynamo_endpoint.expect("an endpoint"),
            ),
        ] {
            env.push((k.into(), v.into()));
        }
    }
    env
}

/// `chatbot create-table --table TABLE` with `env`.
pub fn create_table(env: &[(String, String)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chatbot"))
        .args(["create-table", "--table", TABLE])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run chatbot create-table")
}

impl Server {
    /// The README's run command with `extra` settings, on a fresh store.
    pub async fn start(kind: StoreKind, extra: &[(&str, &str)]) -> Server {
        let moto = (kind == StoreKind::Dynamo).then(Moto::start_serialized);
        let mut env = base_env(kind, moto.as_ref().map(|m| m.endpoint.as_str()));
        if kind == StoreKind::Dynamo {
            let out = create_table(&env);
            assert!(
                out.status.success(),
                "create-table: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self::spawn(env, moto).await
    }

    pub async fn spawn(env: Vec<(String, String)>, moto: Option<Moto>) -> Server {
        let child = ChildProcess::spawn(std::path::Path::new(env!("CARGO_BIN_EXE_chatbot")), &env)
            .expect("spawn chatbot");
        let line = child
            .stderr()
            .wait_for(
                |l| l.text.contains("http://127.0.0.1:"),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no URL printed; stderr: {:?}",
                    child
                        .stderr()
                        .snapshot()
                        .iter()
                        .map(|l| l.text.clone())
                        .collect::<Vec<_>>()
                )
            });
        let url = line
            .text
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap()
            .to_owned();
        Server { child, url, moto }
    }

    /// An HTTP client whose connections come from 127.0.0.`source`.
    pub fn client(&self, source: u8) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)))
            .build()
            .unwrap()
    }

    /// The EMF documents of the chat requests printed so far.
    pub fn chat_docs(&self) -> Vec<Value> {
        self.child
            .stdout()
            .snapshot()
            .into_iter()
            .filter_map(|l| l.json)
            .filter(|v| v.get("_aws").is_some() && v["route"] != "/api/health")
            .collect()
    }

    pub async fn wait_chat_docs(&self, n: usize) -> Vec<Value> {
        for _ in 0..500 {
            let docs = self.chat_docs();
            if docs.len() >= n {
                for d in &docs {
                    crate::evidence::emf::validate(d).unwrap();
                }
                return docs;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} EMF documents, got {}", self.chat_docs().len());
    }

    /// The request's summary line (written as its response body ends: wait for it).
    pub async fn summary(&self, request_id: &str) -> Value {
        self.child
            .stdout()
            .wait_for(
                |l| {
                    l.json.as_ref().is_some_and(|v| {
                        v["message"] == "request completed" && v["requestId"] == request_id
                    })
                },
                Duration::from_secs(10),
            )
            .await
            .and_then(|l| l.json)
            .unwrap_or_else(|| panic!("no summary line for {request_id}"))
    }

    /// A DynamoDB client on this server's moto (DynamoDB servers only).
    pub fn dynamodb(&self) -> Option<aws_sdk_dynamodb::Client> {
        let moto = self.moto.as_ref()?;
        let conf = aws_sdk_dynamodb::Config::builder()
            .http_client(chatbot_service::aws::https_client())
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(&moto.endpoint)
            .build();
        Some(aws_sdk_dynamodb::Client::from_conf(conf))
    }
}

pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Answer {
    /// The request id, from a reply or an error body.
    pub fn request_id(&self) -> String {
        self.body["requestId"]
            .as_str()
            .or(self.body["error"]["requestId"].as_str())
            .expect("a request id")
            .to_owned()
    }
}

/// `POST /api/chat` with `body`.
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Answer {
    let res = client
        .post(format!("{url}/api/chat"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    Answer {
        status,
        retry_after,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// `POST /api/chat` with one user message (the stateless form).
pub async fn chat(client: &reqwest::Client, url: &str, text: &str) -> Answer {
    post(
        client,
        url,
        &json!({"messages": [{"role": "user", "content": text}]}),
    )
    .await
}

/// One test body run against each store: `both_stores!(body: in_process_name, dynamodb_name)`.
#[macro_export]
macro_rules! both_stores {
    ($body:ident: $in_process:ident, $dynamo:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $in_process() {
            $body($crate::binary_rig::StoreKind::InProcess).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $dynamo() {
            $body($crate::binary_rig::StoreKind::Dynamo).await
        }
    };
}
