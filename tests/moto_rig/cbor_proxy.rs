//! A loopback relay between the AWS SDK and moto for CloudWatch's wire protocol.
//!
//! aws-sdk-cloudwatch speaks Smithy RPC v2 CBOR (`POST /service/GraniteServiceVersion20100801/
//! operation/<Op>`, `application/cbor`); moto 5.2 implements CloudWatch over the Query and JSON
//! protocols only and has no plan for CBOR (getmoto/moto#9195). This relay re-encodes each CBOR
//! request as the equivalent AWS JSON 1.0 request (same operation, same members, with the query-
//! compatibility header), sends it to moto, and re-encodes moto's JSON reply (or error) as CBOR.
//! The SDK, its serializers and moto's CloudWatch model are all real; only the encoding is
//! translated. Other requests (CloudWatch Logs, AWS JSON 1.1, DynamoDB's JSON 1.0) pass through
//! unchanged. Every operation relayed is logged ([`CborProxy::operations`]), so a test can count
//! the round trips a request made.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use ciborium::Value as Cbor;
use serde_json::Value as Json;

const CBOR_PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";
const JSON_TARGET: &str = "GraniteServiceVersion20100801";
/// CBOR tag 1: epoch-based date/time (how RPC v2 CBOR carries timestamps).
const TAG_EPOCH: u64 = 1;

/// CloudWatch members that are timestamps (JSON: epoch seconds; CBOR: tag 1).
fn is_timestamp(key: &str) -> bool {
    key == "Timestamps" || key.ends_with("Timestamp") || key == "LastModified"
}

/// CloudWatch members that are doubles (CBOR must carry a float, even for `1`).
const DOUBLES: &[&str] = &[
    "Values",
    "Value",
    "Threshold",
    "SampleCount",
    "Sum",
    "Average",
    "Minimum",
    "Maximum",
    "Counts",
];

struct Shared {
    moto: String,
    http: reqwest::Client,
    operations: std::sync::Mutex<Vec<String>>,
}

/// The relay; dropping it stops it.
pub struct CborProxy {
    pub endpoint: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CborProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CborProxy {
    pub async fn start(moto_endpoint: &str) -> CborProxy {
        let shared = Arc::new(Shared {
            moto: moto_endpoint.trim_end_matches('/').to_owned(),
            // Loopback only: never through an HTTP(S)_PROXY from the environment.
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("HTTP client"),
            operations: std::sync::Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(relay).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let endpoint = format!("http://{}", listener.local_addr().expect("relay address"));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("relay server");
        });
        CborProxy {
            endpoint,
            shared,
            task,
        }
    }

    /// The operations relayed so far, in order (`UpdateItem`, `GetMetricData`, …).
    pub fn operations(&self) -> Vec<String> {
        self.shared.operations.lock().unwrap().clone()
    }
}

async fn relay(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .expect("request body");
    let path = parts.uri.path().to_owned();
    let operation = path
        .strip_prefix(CBOR_PREFIX)
        .map(str::to_owned)
        .or_else(|| {
            let target = parts.headers.get("x-amz-target")?.to_str().ok()?;
            Some(target.rsplit('.').next()?.to_owned())
        });
    s.operations
        .lock()
        .unwrap()
        .push(operation.unwrap_or_else(|| path.clone()));
    match path.strip_prefix(CBOR_PREFIX) {
        Some(op) => cbor_call(&s, op, &parts.headers, bytes).await,
        None => {
            let url = format!(
                "{}{}",
                s.moto,
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
            );
            let mut headers = parts.headers.clone();
            headers.remove("host");
            headers.remove("content-length");
            let reply = s
                .http
                .request(parts.method, url)
                .headers(headers)
                .body(bytes)
                .send()
                .await
                .expect("moto reachable");
            let status = reply.status();
            let headers = reply.headers().clone();
            let body = reply.bytes().await.expect("moto body");
            let mut out = Response::new(Body::from(body));
            *out.status_mut() = status;
            for name in ["content-type", "x-amzn-requestid", "x-amzn-errortype"] {
                if let Some(v) = headers.get(name) {
                    out.headers_mut().insert(name, v.clone());
                }
            }
            out
        }
    }
}

async fn cbor_call(s: &Shared, op: &str, headers: &HeaderMap, body: Bytes) -> Response {
    let input: Cbor = if body.is_empty() {
        Cbor::Map(Vec::new())
    } else {
        ciborium::de::from_reader(&body[..]).expect("CBOR request body")
    };
    let mut request = s
        .http
        .post(format!("{}/", s.moto))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("{JSON_TARGET}.{op}"))
        .header("x-amzn-query-mode", "true")
        .body(to_json(input).to_string());
    // moto finds the service and region in the credential scope of the signature.
    if let Some(auth) = headers.get("authorization") {
        request = request.header("authorization", auth.clone());
    }
    let reply = request.send().await.expect("moto reachable");
    let status = reply.status();
    let query_error = reply.headers().get("x-amzn-query-error").cloned();
    let text = reply.bytes().await.expect("moto body");
    let json: Json =
        serde_json::from_slice(&text).unwrap_or_else(|_| Json::Object(Default::default()));
    let mut encoded = Vec::new();
    ciborium::ser::into_writer(&to_cbor(None, &json), &mut encoded).expect("encode CBOR");
    let mut out = Response::new(Body::from(encoded));
    *out.status_mut() = StatusCode::from_u16(status.as_u16()).expect("status");
    let h = out.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/cbor"));
    h.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    if let Some(v) = query_error {
        h.insert("x-amzn-query-error", v);
    }
    out
}

/// A CBOR request member as JSON: timestamps (tag 1) become epoch seconds, as AWS JSON wants.
fn to_json(v: Cbor) -> Json {
    match v {
        Cbor::Integer(i) => {
            let n = i128::from(i);
            i64::try_from(n)
                .map(Json::from)
                .unwrap_or_else(|_| Json::from(n as f64))
        }
        Cbor::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Cbor::Text(t) => Json::String(t),
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Null => Json::Null,
        Cbor::Tag(_, inner) => to_json(*inner),
        Cbor::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Cbor::Map(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(k, v)| match k {
                    Cbor::Text(k) => (k, to_json(v)),
                    other => panic!("non-text CBOR map key {other:?}"),
                })
                .collect(),
        ),
        Cbor::Bytes(_) => panic!("blob members are not relayed (no CloudWatch call here has one)"),
        other => panic!("unexpected CBOR value {other:?}"),
    }
}

/// A JSON reply member as CBOR, typed by its member name (JSON numbers carry no type).
fn to_cbor(key: Option<&str>, v: &Json) -> Cbor {
    match v {
        Json::Number(n) => {
            let f = n.as_f64().unwrap_or_default();
            match key {
                Some(k) if is_timestamp(k) => Cbor::Tag(TAG_EPOCH, Box::new(Cbor::Float(f))),
                Some(k) if DOUBLES.contains(&k) => Cbor::Float(f),
                _ => match n.as_i64() {
                    Some(i) => Cbor::Integer(i.into()),
                    None => Cbor::Float(f),
                },
            }
        }
        Json::String(s) => Cbor::Text(s.clone()),
        Json::Bool(b) => Cbor::Bool(*b),
        Json::Null => Cbor::Null,
        // Array items are typed by the array's member name (`Values`, `Timestamps`).
        Json::Array(items) => Cbor::Array(items.iter().map(|i| to_cbor(key, i)).collect()),
        Json::Object(map) => Cbor::Map(
            map.iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), to_cbor(Some(k), v)))
                .collect(),
        ),
    }
}
