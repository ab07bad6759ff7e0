//! The chat page in real headless Chromium against the real local host and offline model:
//! streaming growth, the usage footer against the API's numbers, Stop, the friendly throttle
//! error with Retry, no XSS, reload, and a screenshot artifact (`test-artifacts/chat.png`).
//! The server keeps conversations (memory is on by default), so every step runs with it: a
//! reload restores the conversation from the server, New chat and Delete, a conversation that
//! expired, and a stopped reply that is not stored.
//!
//! One test runs the steps in order on one ChromeDriver and one browser session: starting
//! Chromium is the slow part, and the steps are independent behind "New chat". A panic in a
//! step still closes the browser before the test fails, so no Chromium outlives it.

mod browser_rig;
mod service_rig;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use browser_rig::driver::ChromeDriver;
use browser_rig::page::{Footer, Page, Shown};
use browser_rig::server::{ChatServer, TOKENS_PER_SEC};
use futures_util::FutureExt;
use serde::Deserialize;
use serde_json::Value;
use service_rig::sse_events;

/// Generous: a streamed reply takes ~1.5 s at 40 tokens/s, but the machine may be busy.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);
const WHOLE_TEST_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_page_in_headless_chromium() {
    let started = Instant::now();
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("create test-artifacts/");
    let server = ChatServer::start().await;
    let driver = ChromeDriver::start(&artifacts.join("chromedriver.log"));
    let (client, profile) = driver.session().await;
    let page = Page::new(client.clone(), &server.url);

    let outcome = AssertUnwindSafe(tokio::time::timeout(
        WHOLE_TEST_TIMEOUT,
        steps(&page, &server, &artifacts),
    ))
    .catch_unwind()
    .await;
    // End the browser whatever happened, then report.
    let _ = client.close().await;
    drop((profile, driver));
    match outcome {
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(Err(_)) => panic!("the browser steps took longer than {WHOLE_TEST_TIMEOUT:?}"),
        Ok(Ok(())) => eprintln!("[browser] all steps passed in {:?}", started.elapsed()),
    }
}

async fn steps(page: &Page, server: &ChatServer, artifacts: &Path) {
    let t = Instant::now();
    page.open().await;
    eprintln!("[browser] page ready after {:?}", t.elapsed());

    timed(
        "reply grows while streaming",
        the_reply_grows_while_streaming(page),
    )
    .await;
    timed(
        "footer equals the API",
        footer_shows_the_apis_numbers(page, server),
    )
    .await;
    timed("screenshot", screenshot_of_two_exchanges(page, artifacts)).await;
    timed(
        "reload keeps the conversation",
        reload_keeps_the_conversation(page),
    )
    .await;
    let first = timed(
        "memory: reload restores from the server",
        reload_restores_the_conversation_from_the_server(page, server),
    )
    .await;
    let second = timed(
        "memory: new chat starts a new conversation",
        new_chat_starts_a_new_conversation(page, server, &first),
    )
    .await;
    timed(
        "memory: delete forgets it on the server",
        delete_forgets_the_conversation(page, server, &second),
    )
    .await;
    timed(
        "memory: an expired conversation",
        an_expired_conversation_is_said_and_left(page, server),
    )
    .await;
    page.new_chat().await;
    timed("markup shown as text", markup_is_shown_as_text(page)).await;
    page.new_chat().await;
    timed(
        "throttle → friendly error → retry",
        throttle_shows_friendly_error(page),
    )
    .await;
    page.new_chat().await;
    timed(
        "stop aborts the model stream",
        stop_aborts_the_model_stream(page, server),
    )
    .await;
    timed(
        "memory: a stopped reply is not stored",
        a_stopped_reply_is_not_stored(page, server),
    )
    .await;
    timed(
        "a used-up budget is a plain notice",
        budget_refusal_is_a_plain_notice(page),
    )
    .await;
    timed(
        "a guardrail block is a notice in the reply",
        a_guardrail_block_is_a_notice(page),
    )
    .await;
}

async fn timed<T>(name: &str, step: impl Future<Output = T>) -> T {
    let t = Instant::now();
    let out = step.await;
    eprintln!("[browser] {name}: ok in {:?}", t.elapsed());
    out
}

// ---- 1. streaming -------------------------------------------------------------------------

/// Records every state the newest reply goes through (a MutationObserver on `#messages`), and
/// tees the raw bytes of each streamed response, so the test can parse the API's events itself.
const RECORD_JS: &str = r#"
window.__samples = [];
const box = document.getElementById('messages');
new MutationObserver(() => {
  const all = box.querySelectorAll('.message.assistant');
  const el = all[all.length - 1];
  if (el) window.__samples.push({
    t: performance.now(),
    state: el.dataset.state ?? '',
    len: el.querySelector('.message-text').textContent.length,
  });
}).observe(box, { subtree: true, childList: true, characterData: true, attributes: true });
window.__sse = [];
const realFetch = window.fetch;
window.fetch = async (...args) => {
  const res = await realFetch(...args);
  if (String(args[0]).includes('/api/chat/stream')) {
    const slot = { status: res.status, body: null };
    window.__sse.push(slot);
    res.clone().text().then((t) => { slot.body = t; }, (e) => { slot.body = 'read failed: ' + e; });
  }
  return res;
};
return true;
"#;

#[derive(Debug, Deserialize)]
struct Sample {
    t: f64,
    state: String,
    len: usize,
}

async fn the_reply_grows_while_streaming(page: &Page) {
    page.js(RECORD_JS).await;
    let question = "Hi! How do streamed replies work here?";
    page.send_with_enter(question).await;
    let reply = page.wait_reply_finished(1, REPLY_TIMEOUT).await;
    assert_eq!(reply.state.as_deref(), Some("done"), "{reply:?}");
    assert!(
        reply.text.contains(&format!("You said: \"{question}\".")),
        "the offline model echoes the question: {}",
        reply.text
    );

    let samples: Vec<Sample> =
        serde_json::from_value(page.js("return window.__samples;").await).unwrap();
    let mut growing: Vec<usize> = samples
        .iter()
        .filter(|s| s.state == "streaming" && s.len > 0)
        .map(|s| s.len)
        .collect();
    growing.dedup();
    assert!(
        growing.windows(2).all(|w| w[0] < w[1]),
        "streamed text only grows: {growing:?}"
    );
    // The last delta may be painted before `done` arrives: count only the partial texts.
    let final_len = reply.text.encode_utf16().count(); // JS counts UTF-16 units
    let partial = growing.iter().filter(|&&l| l < final_len).count();
    assert!(
        partial >= 3,
        "at least three growing states before the final text, saw {growing:?} (final {final_len})"
    );

    // Acceptance 1: the first words were on screen well before the reply was complete. The
    // model spends (words - 1) / 40 s between its first and last token; demand a fraction.
    let first_text = samples
        .iter()
        .find(|s| s.state == "streaming" && s.len > 0)
        .unwrap()
        .t;
    let done = samples
        .iter()
        .find(|s| s.state == "done")
        .expect("a done state")
        .t;
    let words = reply.text.split_whitespace().count();
    let generation_ms = (words - 1) as f64 / TOKENS_PER_SEC * 1000.0;
    assert!(
        done - first_text >= generation_ms * 0.4,
        "first words shown {:.0} ms before the end; the model took ~{generation_ms:.0} ms",
        done - first_text
    );
    eprintln!(
        "[browser]   {} DOM states, {partial} partial texts; first words {:.0} ms before done \
         ({words} words)",
        samples.len(),
        done - first_text
    );
}

// ---- 2. usage footer ----------------------------------------------------------------------

async fn footer_shows_the_apis_numbers(page: &Page, server: &ChatServer) {
    let reply = page.last_reply().await;
    let footer = reply
        .footer
        .clone()
        .expect("a finished reply has a usage footer");
    let request_id = reply.request_id.clone().expect("data-request-id");

    // The API's own events, from the raw bytes on the wire.
    let raw = page
        .wait_for(
            "the teed stream body",
            "window.__sse.length === 1 && window.__sse[0].body",
            Duration::from_secs(5),
        )
        .await;
    let events = sse_events(raw.as_str().unwrap());
    assert_eq!(events[0].0, "meta");
    assert_eq!(events[0].1["requestId"], request_id.as_str());
    let (name, done) = events.last().unwrap();
    assert_eq!(name, "done", "{events:?}");
    let attr = |s: &str| -> f64 { s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}")) };
    let api = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert_eq!(
        attr(&footer.input_tokens),
        api(&done["usage"]["inputTokens"])
    );
    assert_eq!(
        attr(&footer.output_tokens),
        api(&done["usage"]["outputTokens"])
    );
    assert_eq!(attr(&footer.cost_usd), api(&done["cost"]["totalUsd"]));
    assert_eq!(attr(&footer.latency_ms), api(&done["latencyMs"]["total"]));
    assert_eq!(attr(&footer.ttft_ms), api(&done["latencyMs"]["firstToken"]));
    assert_eq!(
        attr(&footer.output_tokens),
        reply.text.split_whitespace().count() as f64,
        "the offline model makes one token per word"
    );

    // The same request's EMF document, which never passed through the browser.
    let emf = server.emf_for(&request_id).await;
    assert_eq!(attr(&footer.input_tokens), api(&emf["InputTokens"]));
    assert_eq!(attr(&footer.output_tokens), api(&emf["OutputTokens"]));
    assert_eq!(attr(&footer.cost_usd), api(&emf["CostUSD"]));
    // EMF keeps fractions of a millisecond; the API rounds down.
    assert!((api(&emf["TimeToFirstToken"]) - attr(&footer.ttft_ms)).abs() < 1.0);
    // EMF's latency runs to the end of the body, just after `done`.
    assert!(api(&emf["Latency"]) >= attr(&footer.latency_ms));
    // The page stops reading at `done`; that must not count as the user hanging up.
    assert!(emf.get("clientAborted").is_none(), "{emf}");

    check_footer_text(&footer);
}

/// The visible footer, e.g. "23 in · 57 out tokens · $0.000056 · 1.52 s · first token 230 ms",
/// shows the attributes' numbers (cost to two significant digits, times rounded).
fn check_footer_text(f: &Footer) {
    let parts: Vec<&str> = f.text.split(" · ").collect();
    assert_eq!(parts.len(), 5, "{:?}", f.text);
    assert_eq!(parts[0], format!("{} in", thousands(&f.input_tokens)));
    assert_eq!(
        parts[1],
        format!("{} out tokens", thousands(&f.output_tokens))
    );
    let cost: f64 = f.cost_usd.parse().unwrap();
    let shown: f64 = parts[2]
        .strip_prefix('$')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a dollar amount: {:?}", parts[2]));
    assert!(
        cost > 0.0 && (shown - cost).abs() <= cost * 0.05,
        "{shown} vs {cost}"
    );
    assert_close_ms(parts[3], f.latency_ms.parse().unwrap());
    let ttft = parts[4]
        .strip_prefix("first token ")
        .unwrap_or_else(|| panic!("{:?}", parts[4]));
    assert_close_ms(ttft, f.ttft_ms.parse().unwrap());
}

/// "850 ms" or "1.52 s" shows `ms` to its precision.
fn assert_close_ms(shown: &str, ms: f64) {
    let (value, unit) = shown.split_once(' ').unwrap_or_else(|| panic!("{shown:?}"));
    let decimals = value.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
    let (v, step) = match unit {
        "ms" => (value.parse::<f64>().unwrap(), 1.0),
        "s" => (value.parse::<f64>().unwrap() * 1000.0, 1000.0),
        _ => panic!("unknown unit in {shown:?}"),
    };
    let tolerance = step * 10f64.powi(-decimals) / 2.0 + 1e-6;
    assert!((v - ms).abs() <= tolerance, "{shown:?} shows {ms} ms");
}

fn thousands(n: &str) -> String {
    let digits: Vec<char> = n.chars().collect();
    let mut out = String::new();
    for (i, c) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(*c);
    }
    out
}

// ---- 7. screenshot ------------------------------------------------------------------------

async fn screenshot_of_two_exchanges(page: &Page, artifacts: &Path) {
    page.send_with_click("And what does each reply cost?").await;
    let reply = page.wait_reply_finished(2, REPLY_TIMEOUT).await;
    assert_eq!(reply.state.as_deref(), Some("done"));
    assert_eq!(page.messages().await.len(), 4);
    // The caret and focus ring would only add noise to the picture.
    page.js("document.activeElement?.blur(); return true;")
        .await;
    let png = page.client().screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(width >= 1000 && height >= 600, "{width}x{height}");
    let path = artifacts.join("chat.png");
    std::fs::write(&path, &png).expect("write the screenshot");
    eprintln!(
        "[browser]   {} ({width}x{height}, {} bytes)",
        path.display(),
        png.len()
    );
}

// ---- 6. reload ----------------------------------------------------------------------------

async fn reload_keeps_the_conversation(page: &Page) {
    let before = page.messages().await;
    let roles: Vec<&str> = before.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert!(
        before
            .iter()
            .all(|m| m.role == "user" || m.footer.is_some())
    );
    page.reload().await;
    let after = page.messages().await;
    assert_eq!(
        after, before,
        "the same messages, states and footers after a reload"
    );
}

// ---- 5. no XSS ----------------------------------------------------------------------------

const PAYLOAD: &str = r#"<img src=x onerror="document.body.dataset.pwned=1">"#;

async fn markup_is_shown_as_text(page: &Page) {
    // Control: in this browser the payload runs when parsed as HTML, so the checks below
    // would see it if the page ever rendered a message as HTML.
    page.js(&format!(
        "window.__control = document.createElement('div'); \
         window.__control.innerHTML = {}; return true;",
        serde_json::to_string(&PAYLOAD.replace("pwned", "control")).unwrap()
    ))
    .await;
    page.wait_for(
        "the control payload to run",
        "document.body.dataset.control === '1'",
        Duration::from_secs(5),
    )
    .await;
    page.js("delete document.body.dataset.control; delete window.__control; return true;")
        .await;

    page.send_with_enter(PAYLOAD).await;
    let reply = page.wait_reply_finished(1, REPLY_TIMEOUT).await;
    assert_eq!(reply.state.as_deref(), Some("done"));
    check_shown_as_text(page).await;
    // Rendered again after a reload (from the server's copy of the conversation).
    page.reload().await;
    check_shown_as_text(page).await;
}

async fn check_shown_as_text(page: &Page) {
    let messages = page.messages().await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].text, PAYLOAD, "the user's message, verbatim");
    assert!(
        messages[1].text.contains(PAYLOAD),
        "the model's echo, verbatim: {}",
        messages[1].text
    );
    // An image that fails to load fires onerror quickly; give it the chance.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = page
        .js(
            "return { imgs: document.querySelectorAll('#messages img').length, \
             images: document.images.length, pwned: document.body.dataset.pwned ?? null };",
        )
        .await;
    assert_eq!(v["imgs"], 0, "{v}");
    assert_eq!(v["images"], 0, "{v}");
    assert_eq!(v["pwned"], Value::Null, "{v}");
}

// ---- 4. throttle --------------------------------------------------------------------------

async fn throttle_shows_friendly_error(page: &Page) {
    // Every attempt the service makes (3) is throttled; the next identical request succeeds.
    let question = "Is anyone there? #fault=throttle:3";
    page.send_with_enter(question).await;
    let code = page
        .wait_for(
            "the error banner",
            "!document.getElementById('error').hidden && document.getElementById('error').dataset.code",
            REPLY_TIMEOUT,
        )
        .await;
    assert_eq!(code, "rate_limited");
    assert!(page.displayed("error").await, "#error is visible");
    let text = page
        .js("return document.getElementById('error-text').textContent;")
        .await;
    assert_eq!(
        text,
        "The model is busy (rate limited). Wait a moment and retry."
    );
    assert!(page.displayed("retry").await && page.enabled("retry").await);
    let failed = page.last_reply().await;
    assert_eq!(failed.state.as_deref(), Some("error"));
    assert_eq!(failed.footer, None);
    assert!(page.enabled("input").await, "the input is usable again");

    page.click("retry").await;
    let reply = page.wait_reply_finished(1, REPLY_TIMEOUT).await;
    assert_eq!(reply.state.as_deref(), Some("done"), "{reply:?}");
    assert!(reply.text.contains("Is anyone there?"), "{}", reply.text);
    assert!(!page.displayed("error").await, "the banner is gone");
    assert_eq!(
        page.messages().await.len(),
        2,
        "the failed reply was replaced"
    );
}

/// A service whose daily budget is smaller than any request's worst case: the page says so in
/// the server's words, as a notice (not an error, no Retry).
async fn budget_refusal_is_a_plain_notice(page: &Page) {
    let mut config = chatbot_service::config::ServiceConfig::defaults();
    config.daily_budget_usd = Some("0.00000001".into());
    let spent = ChatServer::start_with(config).await;
    let page = Page::new(page.client().clone(), &spent.url);
    page.open().await;
    page.send_with_enter("Anyone?").await;
    let code = page
        .wait_for(
            "the notice",
            "!document.getElementById('error').hidden && document.getElementById('error').dataset.code",
            REPLY_TIMEOUT,
        )
        .await;
    assert_eq!(code, "budget_exhausted");
    let text = page
        .js("return document.getElementById('error-text').textContent;")
        .await;
    assert_eq!(
        text,
        "This service has used up its daily budget; try again after midnight UTC. The chat is paused until then."
    );
    let (class, role) = (
        page.js("return document.getElementById('error').className;")
            .await,
        page.js("return document.getElementById('error').getAttribute('role');")
            .await,
    );
    assert_eq!(class, "error-banner notice");
    assert_eq!(role, "status", "announced politely, not as an alert");
    assert!(
        !page.displayed("retry").await,
        "no Retry: it would not help"
    );
    assert!(page.enabled("input").await);
}

/// With a guardrail, a blocked turn is a `200` whose reply is the guardrail's message: the page
/// shows it in the reply, set apart and explained, with no error banner and no Retry, and (with
/// memory) never as kept — the server does not store it.
async fn a_guardrail_block_is_a_notice(page: &Page) {
    const BLOCKED_MESSAGE: &str = "Sorry, the model cannot answer this question.";
    let mut config = chatbot_service::config::ServiceConfig::defaults();
    config.guardrail_id = Some("pageguard1".into());
    let offline = bedrock_offline::OfflineConfig {
        guardrail_blocked_words: vec!["kraken".into()],
        guardrail_blocked_output_words: vec!["squid".into()],
        ..Default::default()
    };
    let guarded = ChatServer::start_with_offline(config, offline).await;
    let page = Page::new(page.client().clone(), &guarded.url);
    page.open().await;
    let reply_js = |what: &str| {
        format!(
            "const a = document.querySelectorAll('#messages .message.assistant'); \
             const el = a[a.length - 1]; return {what};"
        )
    };

    // The input: the model never runs.
    page.send_with_enter("Tell me about the kraken").await;
    let reply = page.wait_reply_finished(1, REPLY_TIMEOUT).await;
    assert_eq!(reply.state.as_deref(), Some("done"));
    assert_eq!(reply.text, BLOCKED_MESSAGE);
    assert_eq!(
        page.js(&reply_js("el.dataset.guardrail")).await,
        "input_blocked"
    );
    assert_eq!(
        page.js(&reply_js("el.querySelector('.message-status').textContent"))
            .await,
        "The content filter blocked this message; it was not sent to the model. \
         Not saved: the model won't see this exchange."
    );
    assert!(!page.displayed("error").await, "a notice, not an error");
    assert_eq!(page.js(&reply_js("el.dataset.stored")).await, "false");
    assert_eq!(
        page.kept_conversation_id().await,
        None,
        "a blocked first turn starts no conversation"
    );
    // Set apart from the model's words.
    let style = page
        .js(&reply_js(
            "getComputedStyle(el.querySelector('.message-text')).fontStyle",
        ))
        .await;
    assert_eq!(style, "italic");
    // Its cost is still shown: blocked input bills the guardrail's text units.
    let footer = reply.footer.expect("a footer");
    assert_eq!(footer.output_tokens, "0");
    assert!(footer.cost_usd.parse::<f64>().unwrap() > 0.0, "{footer:?}");

    // The output: cut off where the blocked word appears.
    page.send_with_enter("Please say squid for me").await;
    let reply = page.wait_reply_finished(2, REPLY_TIMEOUT).await;
    assert_eq!(reply.state.as_deref(), Some("done"));
    assert!(reply.text.ends_with(BLOCKED_MESSAGE), "{}", reply.text);
    assert!(!reply.text.contains("squid"), "{}", reply.text);
    assert_eq!(
        page.js(&reply_js("el.dataset.guardrail")).await,
        "output_blocked"
    );
    assert!(!page.displayed("error").await);

    // An ordinary reply afterwards is not marked.
    page.send_with_enter("Hello there").await;
    page.wait_reply_finished(3, REPLY_TIMEOUT).await;
    assert_eq!(
        page.js(&reply_js("el.dataset.guardrail ?? null")).await,
        Value::Null
    );
    assert!(
        page.kept_conversation_id().await.is_some(),
        "a stored turn keeps one"
    );
}

// ---- 3. stop ------------------------------------------------------------------------------

async fn stop_aborts_the_model_stream(page: &Page, server: &ChatServer) {
    let stats = server.offline_stats();
    assert_eq!(
        stats.active_streams(),
        0,
        "no stream left from earlier steps"
    );
    let cancelled_before = stats.cancelled_streams();

    // 1 token per second: plenty of time to stop mid-reply.
    page.send_with_enter("Tell me slowly #fault=slow").await;
    let seen = page
        .wait_for(
            "two words of the slow reply",
            "(() => { const a = document.querySelectorAll('#messages .message.assistant'); \
             const t = a[a.length - 1].querySelector('.message-text').textContent; \
             return t.trim().split(/\\s+/).length >= 2 ? t : null; })()",
            REPLY_TIMEOUT,
        )
        .await;
    let seen = seen.as_str().unwrap().to_owned();
    assert_eq!(stats.active_streams(), 1, "the model is streaming");
    page.click("stop").await;

    let reply = page.wait_reply_finished(1, Duration::from_secs(5)).await;
    assert_eq!(reply.state.as_deref(), Some("stopped"), "{reply:?}");
    assert!(
        reply.text.starts_with(&seen) && reply.text.split_whitespace().count() < 10,
        "the partial text is kept: {:?} (seen {seen:?})",
        reply.text
    );
    assert_eq!(reply.footer, None);
    assert!(page.enabled("input").await, "the input is re-enabled");
    assert!(!page.displayed("stop").await, "Stop is hidden again");

    // The abort reached the model: its stream was dropped before it finished.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.active_streams() != 0 || stats.cancelled_streams() == cancelled_before {
        assert!(
            Instant::now() < deadline,
            "the offline model still streams 5 s after Stop (active {}, cancelled {})",
            stats.active_streams(),
            stats.cancelled_streams()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stats.cancelled_streams(), cancelled_before + 1);
    let request_id = reply.request_id.as_deref().expect("data-request-id");
    let emf = server.emf_for(request_id).await;
    assert_eq!(emf["clientAborted"], true, "{emf}");

    // At 1 token/s a live stream would have added a word by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later: Shown = page.last_reply().await;
    assert_eq!(later.text, reply.text, "nothing arrives after Stop");
    assert_eq!(later.state.as_deref(), Some("stopped"));
}

// ---- 8. conversation memory ---------------------------------------------------------------

/// The offline model says which user message of its input it answers (from the second on): what
/// history the server sent it.
fn answers_message(reply: &Shown, n: usize) -> bool {
    reply
        .text
        .contains(&format!("It is your message {n} in this conversation."))
}

/// (role, text) of the messages the page shows.
fn shown_texts(shown: &[Shown]) -> Vec<(String, String)> {
    shown
        .iter()
        .map(|m| (m.role.clone(), m.text.clone()))
        .collect()
}

/// (role, content) of a conversation as the server's `GET` returns it.
fn stored_texts(conversation: &Value) -> Vec<(String, String)> {
    conversation["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages: {conversation}"))
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The page's `GET /api/conversations/{id}` requests since it loaded (resource timing entries).
async fn conversation_fetches(page: &Page, id: &str) -> u64 {
    page.js(&format!(
        "return performance.getEntriesByType('resource').filter((e) => \
         e.initiatorType === 'fetch' && new URL(e.name).pathname === '/api/conversations/{id}').length;"
    ))
    .await
    .as_u64()
    .unwrap()
}

/// (a) The first steps' two exchanges went to the server's memory: the page keeps only the id
/// (`localStorage`). Reloaded without the tab's own copy (as a new tab would be), the page shows
/// what the server's `GET` returns, and the next message continues that conversation.
async fn reload_restores_the_conversation_from_the_server(
    page: &Page,
    server: &ChatServer,
) -> String {
    let id = page
        .kept_conversation_id()
        .await
        .expect("the server's conversation id in localStorage");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "an id the server issued: {id}"
    );
    let (status, conversation) = server.conversation(&id).await;
    assert_eq!(status, 200, "{conversation}");
    assert_eq!(conversation["turns"], 2);
    let stored = stored_texts(&conversation);
    assert_eq!(shown_texts(&page.messages().await), stored);
    assert!(
        answers_message(&page.last_reply().await, 2),
        "the model saw turn 1"
    );

    page.js("sessionStorage.clear(); return true;").await;
    page.reload().await;
    assert_eq!(
        conversation_fetches(page, &id).await,
        1,
        "restored by a GET"
    );
    let restored = page.messages().await;
    assert_eq!(
        shown_texts(&restored),
        stored,
        "exactly the server's messages"
    );
    assert!(
        restored
            .iter()
            .all(|m| m.role == "user" || m.state.as_deref() == Some("done"))
    );
    assert_eq!(page.kept_conversation_id().await.as_deref(), Some(&*id));

    page.send_with_enter("And a third question?").await;
    let reply = page.wait_reply_finished(3, REPLY_TIMEOUT).await;
    assert_eq!(reply.state.as_deref(), Some("done"), "{reply:?}");
    assert!(
        answers_message(&reply, 3),
        "the server sent the history: {}",
        reply.text
    );
    assert_eq!(page.kept_conversation_id().await.as_deref(), Some(&*id));
    let (_, conversation) = server.conversation(&id).await;
    assert_eq!(conversation["turns"], 3);
    assert_eq!(
        shown_texts(&page.messages().await),
        stored_texts(&conversation)
    );
    id
}

/// (b) New chat: an empty view, no id kept; the next message starts a new conversation on the
/// server (its model input holds no earlier turn) while the old one stays there.
async fn new_chat_starts_a_new_conversation(page: &Page, server: &ChatServer, old: &str) -> String {
    page.new_chat().await;
    assert_eq!(page.kept_conversation_id().await, None);
    let focused = page.js("return document.activeElement.id;").await;
    assert_eq!(focused, "input");

    page.send_with_enter("A fresh start").await;
    let reply = page.wait_reply_finished(1, REPLY_TIMEOUT).await;
    assert_eq!(reply.state.as_deref(), Some("done"), "{reply:?}");
    assert!(
        !reply.text.contains("in this conversation"),
        "no history: {}",
        reply.text
    );
    let id = page.kept_conversation_id().await.expect("a new id");
    assert_ne!(id, old);
    let (status, conversation) = server.conversation(&id).await;
    assert_eq!(status, 200);
    assert_eq!(conversation["turns"], 1);
    assert_eq!(
        shown_texts(&page.messages().await),
        stored_texts(&conversation)
    );
    let (status, conversation) = server.conversation(old).await;
    assert_eq!(status, 200, "the old conversation stays until it expires");
    assert_eq!(conversation["turns"], 3);
    id
}

/// (c) Delete asks first (an inline confirmation, focus on Cancel; Cancel keeps everything),
/// then `DELETE`s: the server answers 404 for the id, the view and the kept id are cleared.
async fn delete_forgets_the_conversation(page: &Page, server: &ChatServer, id: &str) {
    assert!(page.displayed("delete-chat").await && page.enabled("delete-chat").await);
    page.click("delete-chat").await;
    assert!(page.displayed("delete-confirm").await);
    let (expanded, focused) = (
        page.js("return document.getElementById('delete-chat').getAttribute('aria-expanded');")
            .await,
        page.js("return document.activeElement.id;").await,
    );
    assert_eq!(
        (expanded.as_str(), focused.as_str()),
        (Some("true"), Some("delete-cancel"))
    );
    page.click("delete-cancel").await;
    assert!(!page.displayed("delete-confirm").await);
    assert_eq!(page.messages().await.len(), 2, "Cancel deletes nothing");
    assert_eq!(server.conversation(id).await.0, 200);

    page.click("delete-chat").await;
    page.click("delete-yes").await;
    page.wait_for(
        "the deleted conversation to be cleared",
        "document.querySelectorAll('#messages .message').length === 0",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        server.conversation(id).await.0,
        404,
        "deleted on the server"
    );
    assert_eq!(page.kept_conversation_id().await, None);
    assert_eq!(
        page.note().await.as_deref(),
        Some("The conversation was deleted from the server.")
    );
    assert!(!page.displayed("delete-confirm").await);
    assert!(!page.enabled("delete-chat").await, "nothing left to delete");
    assert_eq!(page.js("return document.activeElement.id;").await, "input");
}

/// A conversation the server no longer has (it expired, or was deleted elsewhere): sending to it
/// gets the friendly `conversation_not_found` message and Retry starts a new one; on a reload
/// the page says it expired and starts afresh.
async fn an_expired_conversation_is_said_and_left(page: &Page, server: &ChatServer) {
    page.send_with_enter("Soon gone").await;
    page.wait_reply_finished(1, REPLY_TIMEOUT).await;
    let gone = page.kept_conversation_id().await.expect("an id");
    assert_eq!(server.delete_conversation(&gone).await, 204);

    page.send_with_enter("Still there?").await;
    let code = page
        .wait_for(
            "the error banner",
            "!document.getElementById('error').hidden && document.getElementById('error').dataset.code",
            REPLY_TIMEOUT,
        )
        .await;
    assert_eq!(code, "conversation_not_found");
    let text = page
        .js("return document.getElementById('error-text').textContent;")
        .await;
    assert_eq!(
        text,
        "This conversation has expired or was deleted, so the model no longer sees it. Retry to \
         send your message as the start of a new conversation."
    );
    assert_eq!(page.kept_conversation_id().await, None);
    let stored = page
        .js("return Array.from(document.querySelectorAll('#messages .message'), (m) => m.dataset.stored ?? null);")
        .await;
    assert_eq!(
        stored,
        serde_json::json!(["false", "false", "false", "false"])
    );

    page.click("retry").await;
    let reply = page.wait_reply_finished(2, REPLY_TIMEOUT).await;
    assert_eq!(reply.state.as_deref(), Some("done"), "{reply:?}");
    assert!(reply.text.contains("Still there?") && !reply.text.contains("in this conversation"));
    let id = page
        .kept_conversation_id()
        .await
        .expect("a new conversation");
    assert_ne!(id, gone);
    assert_eq!(server.conversation(&id).await.1["turns"], 1);

    // Reloaded with the id of a conversation the server no longer has.
    page.js(&format!(
        "localStorage.setItem('chatbot.memory.conversationId', '{gone}'); return true;"
    ))
    .await;
    page.reload().await;
    assert_eq!(conversation_fetches(page, &gone).await, 1);
    assert_eq!(page.messages().await.len(), 0, "a fresh start");
    assert_eq!(page.kept_conversation_id().await, None);
    assert_eq!(
        page.note().await.as_deref(),
        Some("Your earlier conversation has expired, so this is a new one.")
    );
}

/// Records the JSON bodies the page posts to the chat endpoints.
const RECORD_BODIES_JS: &str = r#"
window.__bodies = [];
const realFetch = window.fetch;
window.fetch = (url, init) => {
  if (String(url).includes('/api/chat') && init?.body) {
    window.__bodies.push(JSON.parse(new TextDecoder().decode(init.body)));
  }
  return realFetch(url, init);
};
return true;
"#;

/// After the Stop step: the stopped reply (the first of a new conversation) is marked as not
/// saved, the server stored nothing, and the next message goes alone: the model sees no
/// history and the server's new conversation holds that one turn only.
async fn a_stopped_reply_is_not_stored(page: &Page, server: &ChatServer) {
    let stopped = page.last_reply().await;
    assert_eq!(stopped.state.as_deref(), Some("stopped"));
    let marks = page
        .js(
            "return Array.from(document.querySelectorAll('#messages .message'), (m) => \
             [m.dataset.stored ?? null, m.querySelector('.message-status')?.textContent ?? null]);",
        )
        .await;
    assert_eq!(
        marks,
        serde_json::json!([
            ["false", null],
            [
                "false",
                "Stopped. Not saved: the model won't see this exchange."
            ]
        ])
    );
    assert_eq!(
        page.kept_conversation_id().await,
        None,
        "nothing was stored"
    );

    page.js(RECORD_BODIES_JS).await;
    page.send_with_enter("Let's try again").await;
    let reply = page.wait_reply_finished(2, REPLY_TIMEOUT).await;
    assert_eq!(reply.state.as_deref(), Some("done"), "{reply:?}");
    let bodies = page.js("return window.__bodies;").await;
    assert_eq!(
        bodies,
        serde_json::json!([{ "message": "Let's try again" }]),
        "only the new message"
    );
    assert!(
        !reply.text.contains("in this conversation"),
        "{}",
        reply.text
    );
    let id = page.kept_conversation_id().await.expect("stored now");
    let (_, conversation) = server.conversation(&id).await;
    let shown = page.messages().await;
    assert_eq!(stored_texts(&conversation), shown_texts(&shown[2..]));
}
