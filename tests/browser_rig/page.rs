//! The chat page as a test drives it: its stable hooks (ids, classes, data attributes) read
//! through WebDriver, and bounded waits on JavaScript predicates.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde::Deserialize;
use serde_json::Value;

/// One message as the page shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    pub role: String,
    pub text: String,
    pub state: Option<String>,
    pub request_id: Option<String>,
    pub footer: Option<Footer>,
}

/// A reply's usage footer: its data attributes and its visible text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Footer {
    pub input_tokens: String,
    pub output_tokens: String,
    pub cost_usd: String,
    pub latency_ms: String,
    pub ttft_ms: String,
    pub text: String,
}

const MESSAGES_JS: &str = r#"
return Array.from(document.querySelectorAll('#messages .message')).map((el) => {
  const f = el.querySelector('.usage');
  return {
    role: el.classList.contains('user') ? 'user' : el.classList.contains('assistant') ? 'assistant' : 'other',
    text: el.querySelector('.message-text').textContent,
    state: el.dataset.state ?? null,
    requestId: el.dataset.requestId ?? null,
    footer: f && {
      inputTokens: f.dataset.inputTokens,
      outputTokens: f.dataset.outputTokens,
      costUsd: f.dataset.costUsd,
      latencyMs: f.dataset.latencyMs,
      ttftMs: f.dataset.ttftMs,
      text: f.textContent,
    },
  };
});
"#;

/// What a timeout message shows about the page.
const DESCRIBE_JS: &str = r#"
const all = document.querySelectorAll('#messages .message.assistant');
const last = all[all.length - 1];
const err = document.getElementById('error');
return JSON.stringify({
  ready: document.body.dataset.ready ?? null,
  messages: document.querySelectorAll('#messages .message').length,
  lastState: last?.dataset.state ?? null,
  lastText: last?.querySelector('.message-text').textContent.slice(0, 120) ?? null,
  error: err.hidden ? null : { code: err.dataset.code, text: err.textContent.trim() },
});
"#;

pub struct Page {
    client: Client,
    url: String,
}

impl Page {
    pub fn new(client: Client, url: &str) -> Self {
        Self {
            client,
            url: url.to_owned(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Run a script (a function body: `return …`).
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Poll the JavaScript expression `expr` every 50 ms until it is truthy; return its value.
    pub async fn wait_for(&self, what: &str, expr: &str, timeout: Duration) -> Value {
        let script = format!("return ({expr});");
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(&script).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what} ({expr}); page: {}",
                    self.describe().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn describe(&self) -> String {
        match self.client.execute(DESCRIBE_JS, Vec::new()).await {
            Ok(Value::String(s)) => s,
            other => format!("{other:?}"),
        }
    }

    async fn wait_ready(&self) {
        self.wait_for(
            "the page to be ready",
            "document.body.dataset.ready === 'true'",
            Duration::from_secs(10),
        )
        .await;
    }

    pub async fn open(&self) {
        self.client.goto(&self.url).await.expect("open the page");
        self.wait_ready().await;
    }

    pub async fn reload(&self) {
        self.client.refresh().await.expect("reload");
        self.wait_ready().await;
    }

    pub async fn messages(&self) -> Vec<Shown> {
        serde_json::from_value(self.js(MESSAGES_JS).await).expect("messages as expected")
    }

    pub async fn last_reply(&self) -> Shown {
        self.messages()
            .await
            .into_iter()
            .rfind(|m| m.role == "assistant")
            .expect("an assistant message")
    }

    async fn type_message(&self, text: &str) {
        let input = self.client.find(Locator::Id("input")).await.unwrap();
        input.send_keys(text).await.expect("type into #input");
    }

    /// Type `text` and press Enter.
    pub async fn send_with_enter(&self, text: &str) {
        self.type_message(&format!(
            "{text}{}",
            char::from(fantoccini::key::Key::Enter)
        ))
        .await;
    }

    /// Type `text` and click Send.
    pub async fn send_with_click(&self, text: &str) {
        self.type_message(text).await;
        self.click("send").await;
    }

    pub async fn click(&self, id: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click #{id}: {e}"));
    }

    pub async fn displayed(&self, id: &str) -> bool {
        let el = self.client.find(Locator::Id(id)).await.unwrap();
        el.is_displayed().await.unwrap()
    }

    pub async fn enabled(&self, id: &str) -> bool {
        let el = self.client.find(Locator::Id(id)).await.unwrap();
        el.is_enabled().await.unwrap()
    }

    /// Wait until there are `n` assistant messages and the last one is no longer streaming.
    pub async fn wait_reply_finished(&self, n: usize, timeout: Duration) -> Shown {
        let expr = format!(
            "(() => {{ const a = document.querySelectorAll('#messages .message.assistant'); \
             return a.length === {n} && a[{n} - 1].dataset.state !== 'streaming'; }})()"
        );
        self.wait_for(&format!("reply {n} to finish"), &expr, timeout)
            .await;
        self.last_reply().await
    }

    /// The id of the conversation the server keeps for this browser, as the page stored it in
    /// `localStorage` (conversation memory), or None.
    pub async fn kept_conversation_id(&self) -> Option<String> {
        self.js("return localStorage.getItem('chatbot.memory.conversationId');")
            .await
            .as_str()
            .map(str::to_owned)
    }

    /// The note above the composer (dropped history, an expired or deleted conversation), or
    /// None when hidden.
    pub async fn note(&self) -> Option<String> {
        self.js(
            "const n = document.getElementById('history-note');              return n.hidden ? null : n.textContent;",
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// Click "New chat" and wait for an empty conversation.
    pub async fn new_chat(&self) {
        self.click("new-chat").await;
        self.wait_for(
            "an empty conversation",
            "document.querySelectorAll('#messages .message').length === 0",
            Duration::from_secs(5),
        )
        .await;
    }
}
