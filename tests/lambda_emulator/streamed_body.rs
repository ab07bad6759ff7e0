//! Splits a streaming function response (`Lambda-Runtime-Function-Response-Mode: streaming`)
//! into its JSON prelude, the body chunks as they arrived, and a mid-stream error if any.
//!
//! Wire format: prelude JSON, 8 NUL bytes, then body bytes. A failing stream reports
//! `Lambda-Runtime-Function-Error-Type` / `-Error-Body` (base64) either as real HTTP trailers
//! or — as lambda_runtime 1.5 does — as a final body chunk holding those header lines.

use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use super::invocation::Outcome;

const SEPARATOR: [u8; 8] = [0; 8];
const ERROR_TYPE: &str = "Lambda-Runtime-Function-Error-Type";
const ERROR_BODY: &str = "Lambda-Runtime-Function-Error-Body";

#[derive(Default)]
pub struct StreamedBody {
    head: Vec<u8>,
    prelude: Option<Value>,
    chunks: Vec<(Instant, Bytes)>,
    error: Option<(String, String)>,
}

impl StreamedBody {
    /// One data frame of the request body, received at `at`.
    pub fn push(&mut self, at: Instant, data: Bytes) {
        if self.prelude.is_some() {
            if let Some(error) = in_band_error(&data) {
                self.error = Some(error);
            }
            self.chunks.push((at, data));
            return;
        }
        // The prelude may be split over frames, or share one with the separator and body.
        self.head.extend_from_slice(&data);
        if let Some(pos) = self
            .head
            .windows(SEPARATOR.len())
            .position(|w| w == SEPARATOR)
        {
            let prelude = &self.head[..pos];
            self.prelude = Some(
                serde_json::from_slice(prelude)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(prelude).into())),
            );
            let rest = Bytes::copy_from_slice(&self.head[pos + SEPARATOR.len()..]);
            self.head.clear();
            if !rest.is_empty() {
                self.push(at, rest);
            }
        }
    }

    /// HTTP trailers sent after the body.
    pub fn trailers(&mut self, trailers: &HeaderMap) {
        if let Some(error_type) = trailers.get(ERROR_TYPE) {
            let body = trailers
                .get(ERROR_BODY)
                .map(|v| decode_error_body(&String::from_utf8_lossy(v.as_bytes())))
                .unwrap_or_default();
            self.error = Some((String::from_utf8_lossy(error_type.as_bytes()).into(), body));
        }
    }

    /// The body broke off (connection reset, bad chunk encoding).
    pub fn transport_error(&mut self, message: String) {
        self.error = Some(("Emulator.BodyReadError".into(), message));
    }

    pub fn finish(mut self) -> Outcome {
        if self.prelude.is_none() && self.error.is_none() {
            self.error = Some((
                "Emulator.MissingPrelude".into(),
                format!(
                    "no 8-NUL prelude separator in {} body bytes: {}",
                    self.head.len(),
                    String::from_utf8_lossy(&self.head)
                ),
            ));
        }
        Outcome::Streamed {
            prelude: self.prelude.unwrap_or(Value::Null),
            chunks: self.chunks,
            error: self.error,
        }
    }
}

/// lambda_runtime 1.5 writes a mid-stream error as a body chunk of trailer-style lines.
fn in_band_error(data: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(data).ok()?;
    if !text.starts_with(ERROR_TYPE) {
        return None;
    }
    let mut error_type = None;
    let mut body = String::new();
    for line in text.split("\r\n") {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case(ERROR_TYPE) {
                error_type = Some(value.trim().to_owned());
            } else if name.eq_ignore_ascii_case(ERROR_BODY) {
                body = decode_error_body(value.trim());
            }
        }
    }
    Some((error_type?, body))
}

/// The error body is base64 on the wire; keep it verbatim if it is not.
fn decode_error_body(raw: &str) -> String {
    aws_smithy_types::base64::decode(raw)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| raw.to_owned())
}
