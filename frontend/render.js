// Building message DOM. Everything from the user or the model goes in through textContent;
// no HTML string is ever parsed, so a reply like "<img src=x onerror=…>" is shown as text.

const FENCE = /^\s*```/;

/** Split text into plain and fenced-code blocks. An unclosed fence (common mid-stream) runs
 * to the end. A tiny purpose-built splitter: a markdown library would be far more than the
 * one construct rendered here, and more to audit for HTML injection. */
export function splitBlocks(text) {
  const blocks = [];
  let plain = [];
  let code = null; // { lang, lines } while inside a fence
  for (const line of text.split("\n")) {
    if (code) {
      if (FENCE.test(line) && line.trim() === "```") {
        blocks.push({ type: "code", lang: code.lang, text: code.lines.join("\n") });
        code = null;
      } else {
        code.lines.push(line);
      }
    } else if (FENCE.test(line)) {
      if (plain.length) blocks.push({ type: "text", text: plain.join("\n") });
      plain = [];
      code = { lang: line.trim().slice(3).trim(), lines: [] };
    } else {
      plain.push(line);
    }
  }
  if (code) blocks.push({ type: "code", lang: code.lang, text: code.lines.join("\n") });
  else if (plain.length) blocks.push({ type: "text", text: plain.join("\n") });
  // Blank lines around a fence are layout, not content.
  return blocks
    .map((b) => (b.type === "text" ? { ...b, text: b.text.replace(/^\n+|\n+$/g, "") } : b))
    .filter((b) => b.type === "code" || b.text !== "");
}

/** Replace `container`'s content with `text` rendered as paragraphs and code blocks. */
export function renderText(container, text) {
  const nodes = splitBlocks(text.replace(/\r\n?/g, "\n")).map((block) => {
    if (block.type === "code") {
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      if (block.lang) code.dataset.lang = block.lang.slice(0, 40);
      code.textContent = block.text;
      pre.append(code);
      return pre;
    }
    const p = document.createElement("p");
    p.className = "text-block"; // white-space: pre-wrap keeps the line breaks
    p.textContent = block.text;
    return p;
  });
  container.replaceChildren(...nodes);
}

/** A message element: `.message.user|assistant` holding `.message-text`. */
export function createMessageElement(message) {
  const el = document.createElement("article");
  el.className = `message ${message.role}`;
  el.dataset.id = message.id;
  const who = document.createElement("h2");
  who.className = "visually-hidden";
  who.textContent = message.role === "user" ? "You said" : "Assistant replied";
  const text = document.createElement("div");
  text.className = "message-text";
  el.append(who, text);
  if (message.role === "user") {
    renderText(text, message.content);
    markStored(el, message);
  } else {
    updateAssistantElement(el, message);
  }
  return el;
}

/** Conversation memory: `data-stored="false"` on a message the server does not keep (a stopped
 * or failed turn, or one of a conversation that expired), so the page never shows it as kept. */
export function markStored(el, message) {
  if (typeof message.stored === "boolean") el.dataset.stored = String(message.stored);
  else delete el.dataset.stored;
}

/** Sync an assistant element with its message: text, state, and the footer once finished. */
export function updateAssistantElement(el, message) {
  const text = el.querySelector(".message-text");
  el.dataset.state = message.state;
  markStored(el, message);
  // The guardrail's message in place of a reply: a notice, styled apart, never an error.
  const guardrail = message.state === "done" ? message.usage?.guardrail ?? null : null;
  if (guardrail) el.dataset.guardrail = guardrail;
  else delete el.dataset.guardrail;
  if (message.requestId) el.dataset.requestId = message.requestId;
  renderText(text, message.content);

  // Only the streaming reply is a live region, and aria-busy holds announcements until it
  // ends, so a screen reader reads the reply once instead of token by token (the log's own
  // announcement covers the message being added).
  if (message.state === "streaming") {
    text.setAttribute("aria-live", "polite");
    text.setAttribute("aria-busy", "true");
  } else {
    text.removeAttribute("aria-busy");
  }

  el.querySelector(".usage")?.remove();
  el.querySelector(".message-status")?.remove();
  if (message.state === "done" && message.usage) {
    el.append(usageFooter(message.usage));
  }
  const status = document.createElement("p");
  status.className = "message-status";
  status.textContent = statusText(message);
  if (status.textContent) el.append(status);
}

function statusText(message) {
  // A reply the server did not keep says so: the model will not see it in the next turn.
  const notKept = message.stored === false;
  switch (message.state) {
    case "streaming":
      return message.content ? "" : "Thinking…";
    case "stopped": {
      const stopped = message.content ? "Stopped." : "Stopped before any reply.";
      return notKept ? `${stopped} Not saved: the model won't see this exchange.` : stopped;
    }
    case "error":
      return message.content ? "The reply broke off." : "No reply.";
    case "done":
      if (message.usage?.guardrail) return guardrailNote(message.usage.guardrail, notKept);
      return notKept ? "No longer kept on the server: the model doesn't see this exchange." : "";
    default:
      return notKept ? "No longer kept on the server: the model doesn't see this exchange." : "";
  }
}

/** What the content filter did, in words (`input_blocked` / `output_blocked`). */
function guardrailNote(action, notKept) {
  const what =
    action === "input_blocked"
      ? "The content filter blocked this message; it was not sent to the model."
      : "The content filter withheld the model's reply.";
  return notKept ? `${what} Not saved: the model won't see this exchange.` : what;
}

function usageFooter(usage) {
  const footer = document.createElement("footer");
  footer.className = "usage";
  footer.dataset.inputTokens = numberAttr(usage.inputTokens);
  footer.dataset.outputTokens = numberAttr(usage.outputTokens);
  footer.dataset.costUsd = numberAttr(usage.costUsd);
  footer.dataset.latencyMs = numberAttr(usage.latencyMs);
  footer.dataset.ttftMs = numberAttr(usage.ttftMs);

  const parts = [
    `${formatCount(usage.inputTokens)} in · ${formatCount(usage.outputTokens)} out tokens`,
    usage.costUsd == null ? "cost unknown" : formatUsd(usage.costUsd),
    formatMs(usage.latencyMs),
  ];
  if (usage.ttftMs != null) parts.push(`first token ${formatMs(usage.ttftMs)}`);
  footer.textContent = parts.join(" · ");

  // The breakdown, for whoever hovers: where the cost and time went.
  const detail = [];
  if (usage.cost) {
    detail.push(
      `model ${formatUsd(usage.cost.modelUsd)}, compute ${formatUsd(usage.cost.computeUsd)}, API ${formatUsd(usage.cost.apiUsd)}`,
    );
  }
  if (usage.modelMs != null) detail.push(`model time ${formatMs(usage.modelMs)}`);
  if (usage.model) detail.push(usage.model);
  if (usage.requestId) detail.push(`request ${usage.requestId}`);
  if (detail.length) footer.title = detail.join("; ");
  return footer;
}

const numberAttr = (n) => (typeof n === "number" && Number.isFinite(n) ? String(n) : "");

const formatCount = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "?");

/** Dollars with two significant digits for tiny amounts: $0.000056, $0.012, $1.50. */
export function formatUsd(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "?";
  if (n === 0) return "$0";
  if (n >= 1) return `$${n.toFixed(2)}`;
  if (n < 1e-9) return "<$0.000000001";
  const decimals = Math.max(2, 1 - Math.floor(Math.log10(n)));
  return `$${n.toFixed(decimals)}`;
}

/** "850 ms" below a second, "1.2 s" above. */
export function formatMs(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "?";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}
