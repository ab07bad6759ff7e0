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
//! - `POST /model/{modelId}/converse` → JSON `{output.message, stopReason, usage, metrics}`
//!   (plus `trace`, `serviceTier`, `performanceConfig` when they apply, see below) with
//!   an `x-amzn-RequestId` header. Any model id is served, raw (`us.amazon.nova-micro-v1:0`) or
//!   percent-encoded (`…v1%3A0`, what the SDK sends). Auth headers (SigV4) are ignored.
//! - `POST /model/{modelId}/converse-stream` → `application/vnd.amazon.eventstream`, frames sent
//!   one by one as they are generated: `messageStart` (at once), one `contentBlockDelta` per
//!   token (first after the time to first token), then `contentBlockStop`, `messageStop`,
//!   `metadata` (`usage`, `metrics.latencyMs`, and `trace`, `serviceTier`, `performanceConfig`
//!   when they apply).
//! - Errors before the body: Bedrock's status code, `x-amzn-errortype: <Name>` and
//!   `{"message": …}`. Errors during a stream: an `exception` frame whose `:exception-type` is
//!   one of the five ConverseStream models (`internalServerException`,
//!   `modelStreamErrorException`, `serviceUnavailableException`, `throttlingException`,
//!   `validationException`). An invalid body (bad JSON, no messages, first message not `user`,
//!   roles not alternating, blank text, content blocks other than `text` and `cachePoint`, a
//!   message with no text block, more than 4 cache points, `maxTokens` < 1,
//!   `temperature`/`topP` outside 0–1, an unknown `serviceTier.type`,
//!   `performanceConfig.latency`, `cachePoint.type`/`ttl`, `guardrailConfig.trace` or
//!   `streamProcessingMode`, an empty or malformed `guardrailIdentifier`, a `guardrailVersion`
//!   other than `DRAFT` or 1–99999999) is a 400 ValidationException.
//!
//! # Replies and the token model
//! The reply is a deterministic function of the model id and the last user message: it says it
//! is the offline model's canned answer (no AWS call made), quotes the last user message (at
//! most 200 characters, `#fault=` and `#served-…=` directives removed), says which user message of the
//! conversation it answers when there is more than one (so a test sees the history arrived),
//! and says how to reach real Bedrock (`--backend bedrock`); about 40–80 words.
//!
//! **A token is one whitespace-separated word.** `inputTokens` = words of the system prompt plus
//! words of every message text. `outputTokens` = words emitted. Each `contentBlockDelta` carries
//! one word with the space that follows it (the last word has none), so the deltas concatenate
//! to exactly the buffered reply text. `maxTokens` cuts the reply after that many words and
//! sets `stopReason` to `max_tokens` (else `end_turn`). `stopSequences` are validated but not
//! applied. `totalTokens` = `inputTokens` + `cacheReadInputTokens` + `cacheWriteInputTokens` +
//! `outputTokens` (the cache terms are 0 without cache points).
//!
//! # Latency
//! Token `i` (0-based) is due `ttft + i / tokens_per_sec` after the request arrived; a buffered
//! Converse answers when the last token would have been streamed. See [`OfflineConfig`]:
//! `OfflineConfig::default()` is zero latency (tests), the CLI defaults are 250 ms and
//! 40 tokens/s (humans).
//!
//! **`metrics.latencyMs` is the model's own time**: from when the offline model had the whole
//! request body to when its last token was produced — for Converse, when the answer was ready
//! (before the JSON is written); for ConverseStream, when the last `contentBlockDelta` (or the
//! guardrail's message replacing it) was handed to the connection, not when `metadata` was.
//! It leaves out connection set-up, the request upload and everything on the client, so a
//! client's own overhead is its measured time minus `latencyMs` (never negative). With an input
//! intervention it is the (near-zero) guardrail time.
//!
//! # Prompt caching
//! `{"cachePoint": {"type": "default"}}` (optional `"ttl": "5m" | "1h"`) is accepted in
//! `system[]` and in `messages[].content[]`, at most 4 per request. A cache point's *prefix* is
//! every text block before it: the system blocks, then the messages in order (roles and block
//! boundaries are part of it; cache points themselves are not). A prefix is *eligible* when it
//! holds at least `cache_min_tokens` tokens (`--offline-cache-min-tokens`, env
//! `CHATBOT_OFFLINE_CACHE_MIN_TOKENS`; CLI default 1,000 like Nova, [`OfflineConfig::default`]
//! 20); a smaller checkpoint silently caches nothing. Entries are keyed by model id and a hash
//! of the exact prefix, live 5 minutes (1 hour with `ttl: "1h"`) and every hit restarts that
//! time; at most 4,096 are kept in memory (expired first, then the soonest to expire, go).
//! Per request:
//! - `cacheReadInputTokens` = tokens of the longest eligible prefix found in the cache;
//! - `cacheWriteInputTokens` = tokens of the **last** eligible prefix minus the read tokens
//!   (all of it on a first request, 0 on a repeat);
//! - `inputTokens` = all input tokens − read − write (what was neither read nor written);
//! - then every eligible prefix of the request is stored or refreshed.
//!
//! With one cache point that is: the first request writes the prefix, a repeat within the TTL
//! reads it. With a cache point after the system prompt and one at the end of a growing
//! conversation, turn 2 reads turn 1's prefix and writes only the new part. Both cache fields
//! are present (0 when nothing applied) whenever the request holds a cache point, and absent
//! otherwise; `cacheDetails` is never sent. [`OfflineStats`] counts requests that wrote
//! (`cache_writes`) and that read (`cache_reads`).
//!
//! # Service tier and latency mode
//! `serviceTier: {"type": "priority" | "default" | "flex" | "reserved"}` and
//! `performanceConfig: {"latency": "standard" | "optimized"}` are accepted and reported as what
//! was **served**: Converse top-level `serviceTier` / `performanceConfig`, ConverseStream
//! `metadata.serviceTier` / `metadata.performanceConfig`. They are absent when the request had
//! none. Directives in the last user message report something else (to test pricing by what
//! was served): `#served-tier=<type>` and `#served-latency=<mode>` (e.g. `optimized` falling
//! back to `standard`); they also make the member appear when the request had none. An unknown
//! value is a ValidationException. Tier and mode do not change the pace.
//!
//! # Guardrails
//! A request with `guardrailConfig` (`guardrailIdentifier`: an ID of lowercase letters and
//! digits or a guardrail ARN, whose last segment is then the ID; `guardrailVersion`; `trace`
//! `disabled` (default) | `enabled` | `enabled_full`; ConverseStream also
//! `streamProcessingMode` `sync` (default) | `async`) is checked by a simulated guardrail with a
//! word policy and a content policy. Blocked words are configured with
//! `--offline-guardrail-blocked-words` (input and output) and
//! `--offline-guardrail-blocked-output-words` (output only), comma-separated, both empty by
//! default (the guardrail then never intervenes but still reports its assessments). Words match
//! case-insensitively as whole words: text is compared as runs of letters and digits, so
//! `kraken` matches `Kraken,` but not `krakens`; a multi-word entry matches those words in
//! sequence. Without `guardrailConfig` no check is made.
//!
//! - **Input intervention** (a blocked word in any text block, system included): the model is
//!   not invoked. `stopReason` `guardrail_intervened`, the reply is the blocked-input message
//!   (`--offline-guardrail-blocked-input-message`, default "Sorry, the model cannot answer this
//!   question."), usage all 0 (cache fields 0 if there were cache points; the cache is not
//!   touched). The stream is `messageStart`, one delta with the message, `contentBlockStop`,
//!   `messageStop`, `metadata`, all at once. `#fault=` mid-stream kinds do not apply.
//! - **Output intervention** (the reply would contain a blocked word of either list — e.g. the
//!   user message quotes an output-only word, which the reply echoes; in a fresh one-message
//!   conversation the quote starts at reply word 15, 0-based): `stopReason`
//!   `guardrail_intervened`, the model's input and output tokens are billed.
//!   - Converse: the whole reply was generated, then replaced by the blocked-output message
//!     (`--offline-guardrail-blocked-output-message`, same default); `outputTokens` = all the
//!     reply's words.
//!   - ConverseStream `sync`: with `k` the 0-based word completing the blocked word, deltas
//!     `0..k` are sent (nothing from the blocked word on), then one delta with the message at
//!     the time of word `k`; `outputTokens` = `k + 1`.
//!   - ConverseStream `async` (the scan lags generation by [`ASYNC_SCAN_LAG_TOKENS`] = 2):
//!     deltas `0..=last` with `last = min(k + 2, n − 1)` are sent — the blocked word reaches the
//!     client — then the message; `outputTokens` = `last + 1`.
//!   - A `#fault=` mid-stream kind (`midstream*`, `reset`, `malformed`) takes precedence.
//!   - `maxTokens` applies first: a reply cut before the blocked word passes.
//! - **Trace** (only with `trace` `enabled` or `enabled_full`): `trace.guardrail` has
//!   `inputAssessment: {ID: assessment}`, `outputAssessments: {ID: [assessment]}` (one entry,
//!   absent after an input intervention), `actionReason` ("Guardrail blocked." or
//!   "No action."), and with `enabled_full` after an output intervention `modelOutput`: [the
//!   withheld model text]. An assessment has `wordPolicy.customWords: [{match: <entry as
//!   configured>, action: "BLOCKED", detected: true}]` when it blocked,
//!   `appliedGuardrailDetails` (id, version, ARN if one was sent, origin `REQUEST`, ownership
//!   `SELF`) and `invocationMetrics {guardrailProcessingLatency: 0, usage, guardrailCoverage:
//!   {textCharacters: {guarded: C, total: C}}}`.
//! - **Text units** (deterministic): `C` = characters (Unicode scalar values) assessed; units =
//!   `ceil(C / 1000)` ([`text_units`]), reported as both `wordPolicyUnits` and
//!   `contentPolicyUnits`; `topicPolicyUnits`, `sensitiveInformationPolicyUnits`,
//!   `sensitiveInformationPolicyFreeUnits`, `contextualGroundingPolicyUnits` are 0.
//!   - input: `C` = the characters of every text block (system and all messages), summed with
//!     no separators;
//!   - output, Converse: `C` = characters of the whole reply text;
//!   - output, ConverseStream: `C` = characters of the text generated up to the intervention
//!     (words `0..=last` joined by single spaces), or of the whole reply when nothing was
//!     blocked.
//!
//!   A pricing test can therefore bill `ceil(C_in/1000) + ceil(C_out/1000)` content-filter
//!   units per request (word filters are free on Bedrock).
//!
//! [`OfflineStats`] counts `guardrail_input_blocks` and `guardrail_output_blocks`.
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
//! fail (a primary, but not its fallback); with `~<ms>` (after the kind and any `:N`, e.g.
//! `#fault=throttle:2~700@nova-micro`) an error kind is answered only after that many
//! milliseconds — a model slow to fail, for deadline tests. An unknown kind is a
//! ValidationException. Kinds:
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
//! | `stall` | stream: 3 deltas, then silence with the connection open (until the client gives up); converse: never answers |
//!
//! # Counters
//! [`OfflineStats`] counts requests, active streams (a gauge, decremented when a stream ends or
//! the client drops it), streams cancelled by the client, cache writes and reads, and guardrail
//! interventions.

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
