//! Realistic invocation events (payload format 2.0) and X-Ray trace headers.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub const HTTP_API_ID: &str = "abc123";
pub const HTTP_API_DOMAIN: &str = "abc123.execute-api.us-east-2.amazonaws.com";
pub const FUNCTION_URL_ID: &str = "q6tbzvqk3a4mzaxu2gpm7v5fme0tgzcx";
pub const FUNCTION_URL_DOMAIN: &str =
    "q6tbzvqk3a4mzaxu2gpm7v5fme0tgzcx.lambda-url.us-east-2.on.aws";
pub const SOURCE_IP: &str = "198.51.100.7";
pub const USER_AGENT: &str = "chatbot-integration-test/1.0";

/// An API Gateway HTTP API event (payload 2.0, `$default` route and stage). `path` may carry a
/// query string; header names are lowercased, repeats joined with commas, and `cookie` headers
/// moved to `cookies`, as API Gateway does.
pub fn http_api_v2(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Value {
    let context = json!({
        "accountId": "123456789012",
        "apiId": HTTP_API_ID,
        "domainName": HTTP_API_DOMAIN,
        "domainPrefix": HTTP_API_ID,
        "requestId": api_gateway_request_id(),
    });
    build_event(method, path, headers, body, HTTP_API_DOMAIN, context, &[])
}

/// A Lambda Function URL event (auth type NONE, so no authorizer and account `anonymous`).
pub fn function_url(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Value {
    let context = json!({
        "accountId": "anonymous",
        "apiId": FUNCTION_URL_ID,
        "domainName": FUNCTION_URL_DOMAIN,
        "domainPrefix": FUNCTION_URL_ID,
        "requestId": uuid::Uuid::new_v4().to_string(),
    });
    let tls = [
        ("x-amzn-tls-cipher-suite", "TLS_AES_128_GCM_SHA256"),
        ("x-amzn-tls-version", "TLSv1.3"),
    ];
    build_event(
        method,
        path,
        headers,
        body,
        FUNCTION_URL_DOMAIN,
        context,
        &tls,
    )
}

/// A fresh X-Ray trace header value: `Root=1-<8 hex epoch s>-<24 hex>;Parent=<16 hex>;Sampled=0|1`.
pub fn xray_trace_header(sampled: bool) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let parent = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!(
        "Root=1-{:08x}-{};Parent={parent};Sampled={}",
        now_ms() / 1000,
        &random[..24],
        u8::from(sampled)
    )
}

fn build_event(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    host: &str,
    mut context: Value,
    extra_defaults: &[(&str, &str)],
) -> Value {
    let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
    let method = method.to_ascii_uppercase();
    let trace = xray_trace_header(false);
    let root = trace.split(';').next().unwrap_or_default();
    let content_length = body.map(|b| b.len().to_string());

    let mut defaults: Vec<(&str, &str)> = vec![
        ("accept", "*/*"),
        ("host", host),
        ("user-agent", USER_AGENT),
        ("x-amzn-trace-id", root),
        ("x-forwarded-for", SOURCE_IP),
        ("x-forwarded-port", "443"),
        ("x-forwarded-proto", "https"),
    ];
    if let Some(length) = &content_length {
        defaults.push(("content-length", length));
    }
    defaults.extend_from_slice(extra_defaults);

    let mut given = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| Value::from(c.trim())));
            continue;
        }
        let joined = match given.get(&name).and_then(Value::as_str) {
            Some(earlier) => format!("{earlier},{value}"),
            None => (*value).to_owned(),
        };
        given.insert(name, Value::from(joined));
    }
    let mut all_headers = Map::new();
    for (name, value) in defaults {
        all_headers.insert(name.to_owned(), Value::from(value));
    }
    all_headers.extend(given);
    let user_agent = all_headers
        .get("user-agent")
        .cloned()
        .unwrap_or_else(|| Value::from(USER_AGENT));

    let now = now_ms();
    if let Value::Object(ctx) = &mut context {
        ctx.insert(
            "http".into(),
            json!({
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": user_agent,
            }),
        );
        ctx.insert("routeKey".into(), Value::from("$default"));
        ctx.insert("stage".into(), Value::from("$default"));
        ctx.insert("time".into(), Value::from(clf_time(now)));
        ctx.insert("timeEpoch".into(), Value::from(now));
    }

    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": all_headers,
        "requestContext": context,
        "isBase64Encoded": false,
    });
    let fields = event.as_object_mut().expect("event is an object");
    if !cookies.is_empty() {
        fields.insert("cookies".into(), Value::from(cookies));
    }
    if !raw_query.is_empty() {
        fields.insert("queryStringParameters".into(), query_parameters(raw_query));
    }
    if let Some(body) = body {
        fields.insert("body".into(), Value::from(body));
    }
    event
}

/// Decoded query parameters; API Gateway joins repeated names with commas.
fn query_parameters(raw: &str) -> Value {
    let mut params = Map::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (percent_decode(name), percent_decode(value));
        let joined = match params.get(&name).and_then(Value::as_str) {
            Some(earlier) => format!("{earlier},{value}"),
            None => value,
        };
        params.insert(name, Value::from(joined));
    }
    Value::Object(params)
}

/// Form-style percent decoding (`+` is a space). Hand-written: no URL crate among the
/// dependencies, and test events need only this.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// API Gateway request ids look like `JKJaXmPLvHcESHA=`.
fn api_gateway_request_id() -> String {
    let random = uuid::Uuid::new_v4();
    let encoded = aws_smithy_types::base64::encode(&random.as_bytes()[..10]);
    format!("{}=", &encoded[..15])
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `12/Mar/2020:19:03:58 +0000`, the format of `requestContext.time`.
fn clf_time(epoch_ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day) = utc_date(epoch_ms);
    let secs = epoch_ms / 1000 % 86_400;
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[month as usize - 1],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// UTC (year, month 1-12, day 1-31) of an epoch time. Hand-written (H. Hinnant's
/// civil-from-days algorithm): no date crate among the dependencies.
pub(super) fn utc_date(epoch_ms: u64) -> (i64, u32, u32) {
    let days = i64::try_from(epoch_ms / 86_400_000).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are small and positive by construction.
    (year, month as u32, day as u32)
}
