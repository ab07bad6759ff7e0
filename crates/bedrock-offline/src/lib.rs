//! The offline model: a small HTTP server speaking the Amazon Bedrock Runtime wire protocol
//! (Converse and ConverseStream, restJson1) closely enough that the unmodified
//! `aws-sdk-bedrockruntime` client, given `endpoint_url("http://127.0.0.1:PORT")` and any
//! static credentials, works against it. It is the default "model" for local use, tests and
//! load tests: no AWS account, no network, deterministic replies.
//!
//! Self-contained on purpose (external crates only): any project's tests can use it as a Bedrock
//! Runtime stand-in (moto has none). `README.md` next to this crate shows an SDK client
//! pointed at it; `examples/converse.rs` runs that.
//!
//! # Wire protocol
//! - `POST /model/{modelId}/converse` → JSON `{output.message, stopReason, usage, metrics}` with
//!   an `x-amzn-RequestId` header. Any model id is served, raw (`us.amazon.nova-micro-v1:0`) or
//!   percent-encoded (`…v1%3A0`, what the SDK sends). Auth headers (SigV4) are ignored.
//! - `POST /model/{modelId}/converse-stream` → `application/vnd.amazon.eventstream`, frames sent
//!   one by one as they are generated: `messageStart` (at once), one `contentBlockDelta` per
//!   token (first after the time to first token), then `contentBlockStop`, `messageStop`,
//!   `metadata` (usage, `latencyMs`).
//! - Errors before the body: Bedrock's status code, `x-amzn-errortype: <Name>` and
//!   `{"message": …}`. Errors during a stream: an `exception` frame whose `:exception-type` is
//!   one of the five ConverseStream models (`internalServerException`,
//!   `modelStreamErrorException`, `serviceUnavailableException`, `throttlingException`,
//!   `validationException`). An invalid body (bad JSON, no messages, first message not `user`,
//!   roles not alternating, blank or non-text blocks, `maxTokens` < 1, `temperature`/`topP`
//!   outside 0–1) is a 400 ValidationException.
//!
//! # Replies and the token model
//! The reply is a deterministic function of the model id and the last user message: it says it
//! is the offline model's canned answer (no AWS call made), quotes the last user message (at
//! most 200 characters, `#fault=` directives removed), says which user message of the
//! conversation it answers when there is more than one (so a test sees the history arrived),
//! and says how to reach real Bedrock (`--backend bedrock`); about 40–80 words.
//!
//! **A token is one whitespace-separated word.** `inputTokens` = words of the system prompt plus
//! words of every message text. `outputTokens` = words emitted. Each `contentBlockDelta` carries
//! one word with the space that follows it (the last word has none), so the deltas concatenate
//! to exactly the buffered reply text. `maxTokens` cuts the reply after that many words and
//! sets `stopReason` to `max_tokens` (else `end_turn`). `stopSequences` are validated but not
//! applied. `totalTokens` = input + output.
//!
//! # Latency
//! Token `i` (0-based) is due `ttft + i / tokens_per_sec` after the request arrived; a buffered
//! Converse answers when the last token would have been streamed. See [`OfflineConfig`]:
//! `OfflineConfig::default()` is zero latency (tests), the CLI defaults are 250 ms and
//! 40 tokens/s (humans).
//!
//! # Faults
//! Random: `--offline-throttle-percent` (429 ThrottlingException) and `--offline-error-percent`
//! (500 InternalServerException or 503 ServiceUnavailableException), drawn per attempt,
//! reproducible with `--offline-seed`. `--offline-hang` makes every request hang.
//!
//! Per request: if the **last user message** contains `#fault=<kind>`, that fault is injected on
//! every attempt; with `#fault=<kind>:<N>` only the first N attempts of the identical request
//! (same model id and body bytes, kept in a bounded map) fail and later ones succeed, so SDK
//! retries can be tested deterministically; with `#fault=<kind>@<text>` (combinable with `:N`)
//! only requests whose model id contains `<text>` fail, so one model of several can be made to
//! fail (a primary, but not its fallback). An unknown kind is a ValidationException. Kinds:
//!
//! | kind | effect |
//! |---|---|
//! | `throttle` | 429 ThrottlingException |
//! | `not-ready` | 429 ModelNotReadyException |
//! | `quota` | 400 ServiceQuotaExceededException (not modelled by Converse: the SDK reports it as an unhandled error with that code) |
//! | `validation` | 400 ValidationException |
//! | `access-denied` | 403 AccessDeniedException |
//! | `not-found` | 404 ResourceNotFoundException |
//! | `model-timeout` | 408 ModelTimeoutException |
//! | `model-error` | 424 ModelErrorException |
//! | `error` | 500 InternalServerException |
//! | `unavailable` | 503 ServiceUnavailableException |
//! | `hang` | never answers (until the server shuts down) |
//! | `slow` | 1 token per second |
//! | `midstream` | stream: 3 deltas, then an `internalServerException` frame; converse: 500 |
//! | `midstream-throttle` | same with `throttlingException`; converse: 429 |
//! | `midstream-unavailable` | same with `serviceUnavailableException`; converse: 503 |
//! | `midstream-model-error` | same with `modelStreamErrorException`; converse: 424 ModelErrorException |
//! | `midstream-validation` | same with `validationException`; converse: 400 |
//! | `reset` | connection dropped mid-body (converse: half the JSON; stream: after 3 deltas) |
//! | `malformed` | converse: 200 with truncated JSON; stream: a frame with a bad CRC after 3 deltas |
//!
//! # Counters
//! [`OfflineStats`] counts requests, active streams (a gauge, decremented when a stream ends or
//! the client drops it) and streams cancelled by the client.

mod cache;
mod config;
mod errors;
mod eventstream;
mod faults;
mod guardrail;
mod pace;
mod reply;
mod request;
mod server;
mod service;
mod stats;
mod stream;
mod tier;
mod tokens;

pub use config::{
    CLI_DEFAULT_CACHE_MIN_TOKENS, CLI_DEFAULT_TOKENS_PER_SEC, CLI_DEFAULT_TTFT_MS,
    DEFAULT_CACHE_MIN_TOKENS, DEFAULT_GUARDRAIL_BLOCKED_MESSAGE, OfflineConfig,
};
pub use errors::ErrorType;
pub use faults::FaultKind;
pub use faults::KINDS as FAULT_KINDS;
pub use guardrail::{ASYNC_SCAN_LAG_TOKENS, CHARS_PER_TEXT_UNIT, text_units};
pub use server::{OfflineServer, run, spawn};
pub use stats::OfflineStats;
