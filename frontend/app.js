// The chat page: wires the DOM to the API. See api.js (HTTP/SSE), history.js (storage and
// trimming) and render.js (safe DOM building).
//
// Two modes, chosen by /api/health: with conversation memory (`memory.enabled`) the server keeps
// the conversation — the page sends only the new message and the server's id (kept in
// localStorage), restores the conversation from the server on load, and can delete it; without
// it the page keeps the history itself (sessionStorage) and sends it, trimmed, with each message.
import {
  ChatError,
  STREAM_ENDPOINT,
  deleteConversation,
  fetchConversation,
  fetchHealth,
  limitsFrom,
  memoryFrom,
  postChat,
  postChatStream,
} from "./api.js";
import {
  buildRequestMessages,
  charCount,
  clearConversation,
  conversationFromServer,
  forgetMemoryId,
  isConversationId,
  loadConversation,
  loadMemoryId,
  newConversationId,
  newMessageId,
  saveConversation,
  saveMemoryId,
} from "./history.js";
import { createMessageElement, markStored, updateAssistantElement } from "./render.js";

const $ = (id) => document.getElementById(id);
const ui = {
  messages: $("messages"),
  form: $("composer-form"),
  input: $("input"),
  send: $("send"),
  stop: $("stop"),
  newChat: $("new-chat"),
  deleteChat: $("delete-chat"),
  deleteConfirm: $("delete-confirm"),
  deleteYes: $("delete-yes"),
  deleteCancel: $("delete-cancel"),
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
let memory = null; // { enabled, ttlHours, maxTurns } from /api/health; null until it answered
const memoryOn = () => memory?.enabled === true;

/** A new conversation. With memory the server names it (its id arrives with the first reply
 * it stored); without, the page does. */
const emptyConversation = (withMemory = memoryOn()) => ({
  memory: withMemory,
  conversationId: withMemory ? null : newConversationId(),
  messages: [],
  dropped: 0, // messages (stateless) or turns (memory) the model did not see in the last turn
  droppedIds: [],
});
let state = loadConversation() ?? emptyConversation(false);
let inFlight = null; // { controller, generation } while a reply is on its way
let generation = 0; // bumped by "New chat" so a late-finishing request leaves the new chat alone
let infoNote = ""; // a one-off note (an expired or deleted conversation) until the next send

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
  showHistoryNote();
  markDropped(state.droppedIds);
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function showHistoryNote() {
  const n = state.dropped;
  let dropped = "";
  if (n > 0 && state.memory) {
    dropped = `The model no longer sees the ${n} earliest ${n === 1 ? "exchange" : "exchanges"} of this conversation, to fit its limits.`;
  } else if (n > 0) {
    dropped = `Older messages are not sent to the model: ${n} dropped to fit the limit.`;
  }
  const text = [infoNote, dropped].filter(Boolean).join(" ");
  ui.historyNote.hidden = text === "";
  ui.historyNote.textContent = text;
}

function setInfoNote(text) {
  infoNote = text;
  showHistoryNote();
}

/** What the empty conversation says (shown by CSS from the attribute: no inline style). */
function showEmptyHint() {
  let hint = "Ask anything. Replies appear as they are written.";
  if (memoryOn()) {
    const hours = memory.ttlHours;
    const plural = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
    const kept =
      hours == null
        ? "for a while"
        : hours < 1
          ? `for ${plural(Math.max(1, Math.round(hours * 60)), "minute")}`
          : hours >= 48 && hours % 24 === 0
            ? `for ${plural(hours / 24, "day")}`
            : `for ${plural(Number(hours.toFixed(1)), "hour")}`;
    hint += ` The conversation is kept on the server ${kept} after your last message.`;
  }
  ui.messages.dataset.emptyHint = hint;
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
  ui.send.disabled = busy || deleting || text.trim() === "" || count > max;
  ui.stop.hidden = !busy;
  ui.stop.disabled = !busy;
  // Delete: only a conversation the server keeps, and not while one of its replies is written.
  ui.deleteChat.hidden = !memoryOn();
  ui.deleteChat.disabled = busy || deleting || !(state.memory && state.conversationId);
  if (ui.deleteChat.disabled && !ui.deleteConfirm.hidden && !deleting) closeDeleteConfirm(false);
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
    case "conversation_busy":
      return "Another reply in this conversation is still being written (perhaps in another tab). Wait for it to finish, then retry.";
    case "conversation_not_found":
      return "This conversation has expired or was deleted, so the model no longer sees it. Retry to send your message as the start of a new conversation.";
    case "conversation_full":
      return "This conversation is full. Start a new chat to go on.";
    case "conversation_unavailable":
      return "The chat service can't reach its saved conversations right now. Retry in a moment.";
    default:
      return "Something went wrong in the chat service. Please retry.";
  }
}

const sentence = (s) => {
  const t = String(s).trim();
  return t === "" ? "" : /[.!?]$/.test(t) ? t : `${t}.`;
};

/** Refusals by policy (a used-up budget, a full conversation) are notices, not failures: shown
 * plainly, no retry. */
const NOTICES = new Set(["budget_exhausted", "conversation_full"]);

let retryAction = null; // what Retry does for the error shown

/** Show `err`; Retry runs `onRetry` (by default: ask again for the last message). */
function showError(err, onRetry = retry) {
  const notice = NOTICES.has(err.code);
  retryAction = notice ? null : onRetry;
  ui.error.dataset.code = err.code;
  ui.error.classList.toggle("notice", notice);
  ui.error.setAttribute("role", notice ? "status" : "alert");
  ui.retry.hidden = retryAction === null;
  ui.errorText.textContent = errorMessage(err);
  ui.errorRef.textContent = err.requestId ? `Request ID ${err.requestId}` : "";
  ui.error.hidden = false;
}

function hideError() {
  ui.error.hidden = true;
  delete ui.error.dataset.code;
  retryAction = null;
}

const asChatError = (err) => (err instanceof ChatError ? err : new ChatError("internal", String(err?.message ?? err)));

// ---- sending ---------------------------------------------------------------------------

/** The limits and the mode are known and the kept conversation restored (or that was done
 * now); false, with the error shown, when the service does not answer /api/health: nothing is
 * sent without knowing what it accepts. */
async function ensureReady() {
  if (!limits) {
    try {
      await loadLimits();
    } catch (err) {
      showError(err instanceof ChatError ? err : new ChatError("network", String(err?.message ?? err)));
      return false;
    }
  }
  await restoreOnce();
  updateComposer();
  return true;
}

async function sendInput() {
  if (inFlight || deleting || !(await ensureReady())) return;
  const text = ui.input.value.trim();
  if (inFlight || deleting || text === "" || charCount(ui.input.value) > limits.maxMessageChars) return;
  const message = { id: newMessageId(), role: "user", content: text };
  if (state.memory) message.stored = null; // on its way: stored with the reply, or not at all
  state.messages.push(message);
  withAutoScroll(() => ui.messages.append(createMessageElement(message)), true);
  ui.input.value = "";
  runTurn();
}

/** Ask for a reply to the last (user) message and show it as it arrives. */
async function runTurn() {
  hideError();
  infoNote = "";
  const user = state.messages[state.messages.length - 1];
  // With memory only the new message goes: the server adds the history it kept (and a turn
  // it did not keep, stopped or failed, is not part of it).
  const turn = state.memory ? { conversationId: null, droppedTurns: null } : null;
  let body;
  if (turn) {
    body = { message: user.content };
    if (state.conversationId) body.conversationId = state.conversationId;
    showHistoryNote();
  } else {
    const request = buildRequestMessages(state.messages, limits, state.conversationId);
    state.dropped = request.dropped;
    state.droppedIds = request.droppedIds;
    showHistoryNote();
    markDropped(state.droppedIds);
    body = { messages: request.messages, conversationId: state.conversationId };
  }

  const reply = { id: newMessageId(), role: "assistant", content: "", state: "streaming", usage: null, requestId: null };
  if (turn) {
    reply.stored = null;
    user.stored = null;
    markStoredNow(user);
  }
  state.messages.push(reply);
  withAutoScroll(() => ui.messages.append(createMessageElement(reply)), true);

  const controller = new AbortController();
  const myGeneration = generation;
  inFlight = { controller };
  updateComposer();
  save();

  try {
    if (STREAM_ENDPOINT) await streamReply(body, reply, controller.signal, turn);
    else await bufferedReply(body, reply, controller.signal, turn);
    reply.state = "done";
    // The server stores a turn before it says done; one the guardrail blocked it never stores.
    if (turn && myGeneration === generation) kept(user, reply, turn, !reply.usage?.guardrail);
  } catch (err) {
    if (myGeneration !== generation) return; // "New chat" already cleared this one
    // With memory a stopped or failed turn is not stored: say so, never pretend it is.
    if (turn) {
      user.stored = reply.stored = false;
      markStoredNow(user);
    }
    if (controller.signal.aborted) {
      reply.state = "stopped"; // partial text kept
    } else {
      const chatError = asChatError(err);
      if (!(err instanceof ChatError)) console.error(err);
      reply.state = "error";
      reply.requestId ??= chatError.requestId;
      if (turn && chatError.code === "conversation_not_found") conversationGone(user);
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

/** Memory: the reply and its message are in the conversation the server keeps, which is now
 * this browser's. */
function kept(user, reply, turn, stored = true) {
  user.stored = reply.stored = stored;
  markStoredNow(user);
  // A turn the server did not store started no conversation: keep the id there was.
  if (stored && isConversationId(turn.conversationId)) {
    state.conversationId = turn.conversationId;
    saveMemoryId(turn.conversationId);
  }
}

/** Memory: the server no longer has this conversation (it expired, or was deleted elsewhere).
 * What is shown stays, marked as not kept; Retry sends `user` as a new conversation's first. */
function conversationGone(user) {
  if (state.conversationId) forgetMemoryId(state.conversationId);
  state.conversationId = null;
  state.dropped = 0;
  state.droppedIds = [];
  for (const m of state.messages) {
    if (m.stored === true) {
      m.stored = false;
      const el = elementOf(m);
      if (el && m.role === "assistant") updateAssistantElement(el, m);
      else markStoredNow(m);
    }
  }
  markDropped([]);
  showHistoryNote();
  user.stored = false;
}

function markStoredNow(message) {
  const el = elementOf(message);
  if (el) markStored(el, message);
}

/** Memory: the server said which conversation this turn is in and how much of it the model
 * sees; dim the exchanges it left out. */
function onTurnMeta(data, turn) {
  if (isConversationId(data.conversationId)) turn.conversationId = data.conversationId;
  if (Number.isInteger(data.droppedTurns) && data.droppedTurns >= 0) {
    turn.droppedTurns = data.droppedTurns;
    state.dropped = data.droppedTurns;
    // The stored exchanges in order; the server leaves out the oldest ones.
    const stored = state.messages.filter((m) => m.stored === true);
    state.droppedIds = stored.slice(0, data.droppedTurns * 2).map((m) => m.id);
    showHistoryNote();
    markDropped(state.droppedIds);
  }
}

async function streamReply(body, reply, signal, turn) {
  const started = performance.now();
  let lastSave = started;
  for await (const { event, data } of postChatStream(body, signal)) {
    if (event === "meta") {
      reply.requestId = data.requestId ?? null;
      if (data.model) ui.modelName.textContent = data.model;
      if (turn && !signal.aborted) onTurnMeta(data, turn);
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

async function bufferedReply(body, reply, signal, turn) {
  const data = await postChat(body, signal);
  if (turn && !signal.aborted) onTurnMeta(data, turn);
  reply.requestId = data.requestId ?? null;
  reply.content = typeof data.reply === "string" ? data.reply : "";
  if (data.model) ui.modelName.textContent = data.model;
  reply.usage = usageFrom(data, reply.requestId, data.model, false);
}

const GUARDRAIL_ACTIONS = new Set(["input_blocked", "output_blocked"]);

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
    // The guardrail blocked the input or the output (the reply is its message).
    guardrail: GUARDRAIL_ACTIONS.has(data.guardrail?.action) ? data.guardrail.action : null,
    model: model || null,
    requestId,
  };
}

function stop() {
  inFlight?.controller.abort();
}

/** Retry: drop the failed reply and ask again for the last user message. */
async function retry() {
  if (inFlight || deleting || !(await ensureReady())) return;
  let i = state.messages.length - 1;
  while (i >= 0 && state.messages[i].role !== "user") i--;
  if (i < 0) return hideError();
  for (const m of state.messages.splice(i + 1)) elementOf(m)?.remove();
  runTurn();
}

/** Start over: a new conversation. With memory the old one stays on the server until it
 * expires; this browser just forgets its id. */
function newChat() {
  startOver("");
  ui.input.value = "";
  updateComposer();
  ui.input.focus();
}

function startOver(note) {
  generation++;
  inFlight?.controller.abort();
  inFlight = null;
  hideError();
  closeDeleteConfirm(false);
  if (memoryOn()) forgetMemoryId();
  state = emptyConversation();
  clearConversation();
  infoNote = note;
  renderAll();
}

// ---- delete (memory) -------------------------------------------------------------------

let deleting = false;

function openDeleteConfirm() {
  if (ui.deleteChat.disabled) return;
  ui.deleteConfirm.hidden = false;
  ui.deleteChat.setAttribute("aria-expanded", "true");
  ui.deleteCancel.focus(); // the safe choice first
}

function closeDeleteConfirm(refocus = true) {
  if (ui.deleteConfirm.hidden) return;
  ui.deleteConfirm.hidden = true;
  ui.deleteChat.setAttribute("aria-expanded", "false");
  if (refocus) (ui.deleteChat.disabled ? ui.input : ui.deleteChat).focus();
}

/** `DELETE` the conversation, then clear the view and forget its id. One the server no longer
 * has (expired, or deleted in another tab) is gone all the same. */
async function deleteNow() {
  const id = state.conversationId;
  if (deleting || inFlight || !state.memory || !id) return;
  setDeleting(true);
  hideError();
  let failure = null;
  try {
    await deleteConversation(id);
  } catch (err) {
    failure = asChatError(err);
  }
  setDeleting(false);
  closeDeleteConfirm(false);
  if (failure && failure.code !== "conversation_not_found") {
    showError(failure, deleteNow); // Retry deletes again
    ui.retry.focus();
    return;
  }
  forgetMemoryId(id);
  if (state.conversationId === id) startOver("The conversation was deleted from the server.");
  updateComposer();
  ui.input.focus();
}

function setDeleting(on) {
  deleting = on;
  ui.deleteYes.disabled = ui.deleteCancel.disabled = on;
  updateComposer();
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
ui.retry.addEventListener("click", () => retryAction?.());
ui.errorDismiss.addEventListener("click", () => {
  hideError();
  ui.input.focus();
});
ui.newChat.addEventListener("click", newChat);
ui.deleteChat.addEventListener("click", () => (ui.deleteConfirm.hidden ? openDeleteConfirm() : closeDeleteConfirm()));
ui.deleteYes.addEventListener("click", deleteNow);
ui.deleteCancel.addEventListener("click", () => closeDeleteConfirm());
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  if (!ui.deleteConfirm.hidden && !deleting) closeDeleteConfirm(); // Escape cancels the question
  else if (inFlight) stop(); // Escape stops a reply from anywhere
});

// ---- start-up --------------------------------------------------------------------------

showEmptyHint();
renderAll();
updateComposer();

async function loadLimits() {
  const health = await fetchHealth();
  limits = limitsFrom(health);
  memory = memoryFrom(health);
  if (typeof health?.model === "string") ui.modelName.textContent = health.model;
  showEmptyHint();
}

let restoring = null;
/** Once the mode is known: restore the kept conversation (memory), at most once per page. */
function restoreOnce() {
  if (!memory) return Promise.resolve();
  restoring ??= restore();
  return restoring;
}

/** Memory: the conversation whose id this browser kept, from the server (the source of truth);
 * one it no longer has starts afresh, and the user is told. Without memory: the page's own. */
async function restore() {
  if (!memoryOn()) {
    // A conversation the server kept before memory was switched off goes on statelessly.
    if (state.memory) state = { ...state, memory: false, conversationId: state.conversationId ?? newConversationId() };
    for (const m of state.messages) delete m.stored;
    save();
    return;
  }
  const myGeneration = generation;
  const cached = state;
  const id = loadMemoryId();
  if (!id) {
    // Nothing kept on the server for this browser (what is cached was never stored there).
    if (cached.memory && cached.conversationId === null && cached.messages.length === 0) return;
    state = emptyConversation();
    clearConversation();
    renderAll();
    return;
  }
  try {
    const server = await fetchConversation(id);
    if (myGeneration !== generation || inFlight) return; // the user started over meanwhile
    state = conversationFromServer({ ...server, conversationId: id }, cached);
    save();
    renderAll();
  } catch (err) {
    if (myGeneration !== generation || inFlight) return;
    const chatError = asChatError(err);
    if (chatError.code === "conversation_not_found") {
      forgetMemoryId(id);
      startOver("Your earlier conversation has expired, so this is a new one.");
      return;
    }
    // Not read (network, the store): keep the id, and what this tab saw of it, if anything.
    if (!(cached.memory && cached.conversationId === id)) {
      state = { ...emptyConversation(), conversationId: id };
      renderAll();
    }
    restoring = null; // Retry, or the next send, reads it again
    showError(chatError, async () => {
      hideError();
      await restoreOnce();
      updateComposer();
    });
    ui.errorText.textContent = `Couldn't load your conversation. ${errorMessage(chatError)}`;
  }
}

async function start() {
  try {
    await loadLimits();
  } catch (err) {
    // Sending asks again; until then the composer counts characters without a limit.
    console.warn("health check failed; the limits are read again on send", err);
  }
  await restoreOnce();
  updateComposer();
  document.body.dataset.ready = "true";
}
start();
