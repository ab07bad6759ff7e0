// The chat page: wires the DOM to the API. See api.js (HTTP/SSE), history.js (storage and
// trimming) and render.js (safe DOM building).
import { ChatError, STREAM_ENDPOINT, fetchHealth, limitsFrom, postChat, postChatStream } from "./api.js";
import {
  buildRequestMessages,
  charCount,
  clearConversation,
  loadConversation,
  newConversationId,
  newMessageId,
  saveConversation,
} from "./history.js";
import { createMessageElement, updateAssistantElement } from "./render.js";

const $ = (id) => document.getElementById(id);
const ui = {
  messages: $("messages"),
  form: $("composer-form"),
  input: $("input"),
  send: $("send"),
  stop: $("stop"),
  newChat: $("new-chat"),
  charCount: $("char-count"),
  historyNote: $("history-note"),
  error: $("error"),
  errorText: $("error-text"),
  errorRef: $("error-ref"),
  retry: $("retry"),
  errorDismiss: $("error-dismiss"),
  modelName: $("model-name"),
};

let limits = null; // from /api/health (loadLimits); the page has no limits of its own
const emptyConversation = () => ({ conversationId: newConversationId(), messages: [], dropped: 0, droppedIds: [] });
let state = loadConversation() ?? emptyConversation();
let inFlight = null; // { controller, generation } while a reply is on its way
let generation = 0; // bumped by "New chat" so a late-finishing request leaves the new chat alone

const save = () => saveConversation(state);

// ---- rendering -------------------------------------------------------------------------

function elementOf(message) {
  return ui.messages.querySelector(`[data-id="${CSS.escape(message.id)}"]`);
}

/** Keep the view pinned to the newest text, unless the user scrolled up to read. */
function withAutoScroll(change, force = false) {
  const box = ui.messages;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  change();
  if (force || atBottom) box.scrollTop = box.scrollHeight;
}

function renderAll() {
  ui.messages.replaceChildren(...state.messages.map(createMessageElement));
  showHistoryNote(state.dropped);
  markDropped(state.droppedIds);
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function showHistoryNote(dropped) {
  ui.historyNote.hidden = dropped <= 0;
  ui.historyNote.textContent =
    dropped > 0 ? `Older messages are not sent to the model: ${dropped} dropped to fit the limit.` : "";
}

function markDropped(ids) {
  const dropped = new Set(ids);
  for (const el of ui.messages.children) el.classList.toggle("not-sent", dropped.has(el.dataset.id));
}

// Re-rendering the reply on every delta would redo the work many times per frame: batch
// deltas into one render per animation frame.
let pendingRender = null;
function scheduleRender(message) {
  if (pendingRender) return;
  pendingRender = requestAnimationFrame(() => {
    pendingRender = null;
    const el = elementOf(message);
    if (el) withAutoScroll(() => updateAssistantElement(el, message));
  });
}

function renderNow(message) {
  if (pendingRender) cancelAnimationFrame(pendingRender);
  pendingRender = null;
  const el = elementOf(message);
  if (el) withAutoScroll(() => updateAssistantElement(el, message));
}

// ---- input state -----------------------------------------------------------------------

function updateComposer() {
  const busy = inFlight !== null;
  const text = ui.input.value;
  const count = charCount(text);
  const max = limits?.maxMessageChars ?? Infinity; // unknown until /api/health answered
  ui.charCount.textContent = limits ? `${count} / ${max}` : `${count}`;
  ui.charCount.classList.toggle("near", count > max * 0.9 && count <= max);
  ui.charCount.classList.toggle("over", count > max);
  ui.input.setAttribute("aria-invalid", String(count > max));
  ui.input.disabled = busy;
  ui.send.disabled = busy || text.trim() === "" || count > max;
  ui.stop.hidden = !busy;
  ui.stop.disabled = !busy;
}

// ---- errors ----------------------------------------------------------------------------

function errorMessage(err) {
  const server = err.message ? ` ${sentence(err.message)}` : "";
  switch (err.code) {
    case "rate_limited":
      return "The model is busy (rate limited). Wait a moment and retry.";
    case "model_timeout":
      return "The model took too long to answer.";
    case "network":
      return err.message === "interrupted"
        ? "The connection to the chat service broke off. Check your connection."
        : "Can't reach the chat service. Check your connection.";
    case "model_unavailable":
      return `The model is not available right now.${server}`;
    case "model_error":
      return `The model returned an error.${server}`;
    case "invalid_request":
      return `The chat service did not accept the request.${server}`;
    case "budget_exhausted":
      // The server says which budget and when it resets; retrying now would not help.
      return `${sentence(err.message) || "The daily budget is used up."} The chat is paused until then.`;
    case "budget_unavailable":
      return "The chat service can't check its spending right now. Retry in a moment.";
    case "forbidden":
      return "This page must be opened from the chat's own address.";
    default:
      return "Something went wrong in the chat service. Please retry.";
  }
}

const sentence = (s) => {
  const t = String(s).trim();
  return t === "" ? "" : /[.!?]$/.test(t) ? t : `${t}.`;
};

/** Refusals by policy (a used-up budget) are notices, not failures: shown plainly, no retry. */
const NOTICES = new Set(["budget_exhausted"]);

function showError(err) {
  const notice = NOTICES.has(err.code);
  ui.error.dataset.code = err.code;
  ui.error.classList.toggle("notice", notice);
  ui.error.setAttribute("role", notice ? "status" : "alert");
  ui.retry.hidden = notice;
  ui.errorText.textContent = errorMessage(err);
  ui.errorRef.textContent = err.requestId ? `Request ID ${err.requestId}` : "";
  ui.error.hidden = false;
}

function hideError() {
  ui.error.hidden = true;
  delete ui.error.dataset.code;
}

// ---- sending ---------------------------------------------------------------------------

/** The limits are known (or were read now); false, with the error shown, when the service does
 * not answer /api/health: nothing is sent without knowing what it accepts. */
async function ensureLimits() {
  if (limits) return true;
  try {
    await loadLimits();
    updateComposer();
    return true;
  } catch (err) {
    showError(err instanceof ChatError ? err : new ChatError("network", String(err?.message ?? err)));
    return false;
  }
}

async function sendInput() {
  if (inFlight || !(await ensureLimits())) return;
  const text = ui.input.value.trim();
  if (inFlight || text === "" || charCount(ui.input.value) > limits.maxMessageChars) return;
  const message = { id: newMessageId(), role: "user", content: text };
  state.messages.push(message);
  withAutoScroll(() => ui.messages.append(createMessageElement(message)), true);
  ui.input.value = "";
  runTurn();
}

/** Ask for a reply to the last (user) message and show it as it arrives. */
async function runTurn() {
  hideError();
  const request = buildRequestMessages(state.messages, limits, state.conversationId);
  state.dropped = request.dropped;
  state.droppedIds = request.droppedIds;
  showHistoryNote(state.dropped);
  markDropped(state.droppedIds);

  const reply = { id: newMessageId(), role: "assistant", content: "", state: "streaming", usage: null, requestId: null };
  state.messages.push(reply);
  withAutoScroll(() => ui.messages.append(createMessageElement(reply)), true);

  const controller = new AbortController();
  const myGeneration = generation;
  inFlight = { controller };
  updateComposer();
  save();

  const body = { messages: request.messages, conversationId: state.conversationId };
  try {
    if (STREAM_ENDPOINT) await streamReply(body, reply, controller.signal);
    else await bufferedReply(body, reply, controller.signal);
    reply.state = "done";
  } catch (err) {
    if (myGeneration !== generation) return; // "New chat" already cleared this one
    if (controller.signal.aborted) {
      reply.state = "stopped"; // partial text kept
    } else {
      const chatError = err instanceof ChatError ? err : new ChatError("internal", String(err?.message ?? err));
      if (!(err instanceof ChatError)) console.error(err);
      reply.state = "error";
      reply.requestId ??= chatError.requestId;
      showError(chatError);
    }
  } finally {
    if (myGeneration === generation) {
      inFlight = null;
      renderNow(reply);
      updateComposer();
      save();
      // The textarea lost focus when it was disabled; give it back unless the user moved on.
      if (document.activeElement === document.body || document.activeElement === ui.stop) ui.input.focus();
    }
  }
}

async function streamReply(body, reply, signal) {
  const started = performance.now();
  let lastSave = started;
  for await (const { event, data } of postChatStream(body, signal)) {
    if (event === "meta") {
      reply.requestId = data.requestId ?? null;
      if (data.model) ui.modelName.textContent = data.model;
    } else if (event === "delta") {
      reply.content += typeof data.text === "string" ? data.text : "";
      scheduleRender(reply);
      // Save now and then, so a reload mid-stream keeps what already arrived.
      if (performance.now() - lastSave > 1000) {
        lastSave = performance.now();
        save();
      }
    } else if (event === "done") {
      reply.usage = usageFrom(data, reply.requestId, ui.modelName.textContent, true);
      return; // the server ends the stream after done; don't wait for the close
    } else if (event === "error") {
      throw new ChatError(String(data.code ?? "internal"), String(data.message ?? ""), {
        requestId: data.requestId ?? reply.requestId,
      });
    }
  }
  // The stream closed without done or error: the connection was cut.
  throw new ChatError("network", "interrupted", { requestId: reply.requestId });
}

async function bufferedReply(body, reply, signal) {
  const data = await postChat(body, signal);
  reply.requestId = data.requestId ?? null;
  reply.content = typeof data.reply === "string" ? data.reply : "";
  if (data.model) ui.modelName.textContent = data.model;
  reply.usage = usageFrom(data, reply.requestId, data.model, false);
}

/** The numbers kept for a reply's footer (and saved with the conversation). */
function usageFrom(data, requestId, model, streamed) {
  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const cost = data.cost && typeof data.cost === "object" ? data.cost : null;
  return {
    inputTokens: num(data.usage?.inputTokens),
    outputTokens: num(data.usage?.outputTokens),
    totalTokens: num(data.usage?.totalTokens),
    costUsd: num(cost?.totalUsd),
    cost: cost && {
      modelUsd: num(cost.modelUsd),
      computeUsd: num(cost.computeUsd),
      apiUsd: num(cost.apiUsd),
    },
    latencyMs: num(data.latencyMs?.total),
    modelMs: num(data.latencyMs?.model),
    ttftMs: streamed ? num(data.latencyMs?.firstToken) : null,
    stopReason: typeof data.stopReason === "string" ? data.stopReason : null,
    model: model || null,
    requestId,
  };
}

function stop() {
  inFlight?.controller.abort();
}

/** Retry: drop the failed reply and ask again for the last user message. */
async function retry() {
  if (inFlight || !(await ensureLimits())) return;
  let i = state.messages.length - 1;
  while (i >= 0 && state.messages[i].role !== "user") i--;
  if (i < 0) return hideError();
  for (const m of state.messages.splice(i + 1)) elementOf(m)?.remove();
  runTurn();
}

function newChat() {
  generation++;
  inFlight?.controller.abort();
  inFlight = null;
  hideError();
  state = emptyConversation();
  clearConversation();
  renderAll();
  ui.input.value = "";
  updateComposer();
  ui.input.focus();
}

// ---- events ----------------------------------------------------------------------------

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  sendInput();
});
ui.input.addEventListener("keydown", (e) => {
  // Enter sends; Shift+Enter is a newline; never send while an IME is composing text.
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    sendInput();
  }
});
ui.input.addEventListener("input", updateComposer);
ui.stop.addEventListener("click", stop);
ui.retry.addEventListener("click", retry);
ui.errorDismiss.addEventListener("click", () => {
  hideError();
  ui.input.focus();
});
ui.newChat.addEventListener("click", newChat);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && inFlight) stop(); // Escape stops a reply from anywhere
});

// ---- start-up --------------------------------------------------------------------------

renderAll();
updateComposer();

async function loadLimits() {
  const health = await fetchHealth();
  limits = limitsFrom(health);
  if (typeof health?.model === "string") ui.modelName.textContent = health.model;
}

async function start() {
  try {
    await loadLimits();
  } catch (err) {
    // Sending asks again; until then the composer counts characters without a limit.
    console.warn("health check failed; the limits are read again on send", err);
  }
  updateComposer();
  document.body.dataset.ready = "true";
}
start();
