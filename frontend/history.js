// The conversation kept in sessionStorage (survives a reload, not a new tab), the history sent
// to the model in the stateless mode, trimmed to the server's limits, and — conversation
// memory — the id of the conversation the server keeps, in localStorage (survives the tab).
import { MAX_BODY_BYTES } from "./api.js";

const STORAGE_KEY = "chatbot.conversation.v1";
const MEMORY_ID_KEY = "chatbot.memory.conversationId";

/** The shape the server accepts for `conversationId`. */
export const isConversationId = (id) => typeof id === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(id);

/** Characters as the server counts them: Unicode scalar values (Rust `chars()`), not the
 * UTF-16 units of `String.length`. */
export const charCount = (text) => {
  let n = 0;
  for (const _ of text) n++;
  return n;
};

const firstChars = (text, n) => (charCount(text) <= n ? text : Array.from(text).slice(0, n).join(""));

/** A random conversation id. crypto.randomUUID exists only in secure contexts; the fallback
 * makes a v4 UUID from getRandomValues, which exists everywhere. */
export function newConversationId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The messages to send for the turn whose user message is the last of `all`.
 *
 * Failed turns: a user message is sent as history only together with a reply that finished
 * ("done") or that the user stopped ("stopped", its partial text kept: it is what the user saw
 * and reacted to). A user message whose reply failed or is empty is left out together with
 * that reply, so roles still alternate user/assistant and the first message is a user one.
 * Retry removes the failed reply and re-sends its user message as the new last message.
 *
 * Then the oldest user+assistant pairs are dropped until the count and total characters fit
 * the server's limits (and the JSON body fits its 64 KiB limit). Returns the request messages,
 * how many were dropped for the limits, and the ids of those dropped messages.
 */
export function buildRequestMessages(all, limits, conversationId) {
  const last = all[all.length - 1];
  const pairs = [];
  for (let i = 0; i < all.length - 2; i++) {
    const user = all[i];
    const reply = all[i + 1];
    if (user.role !== "user" || reply.role !== "assistant") continue;
    // An exchange the guardrail blocked is left out, as the server's memory leaves it out:
    // resent, it would be blocked again with every later message.
    const blocked = Boolean(reply.usage?.guardrail);
    const answered = reply.state === "done" || reply.state === "stopped";
    if (answered && !blocked && reply.content.trim() !== "") {
      pairs.push([user, reply]);
      i++;
    }
  }
  // A long reply may exceed the per-message limit; send its beginning rather than have the
  // server reject every later turn of this conversation.
  const wire = (m) => ({ role: m.role, content: firstChars(m.content, limits.maxMessageChars) });
  const wirePairs = pairs.map(([u, a]) => [wire(u), wire(a)]);
  const lastWire = { role: "user", content: last.content };

  let count = wirePairs.length * 2 + 1;
  let total = charCount(lastWire.content);
  for (const [u, a] of wirePairs) total += charCount(u.content) + charCount(a.content);
  const encoder = new TextEncoder();
  const bodyBytes = (from) =>
    encoder.encode(
      JSON.stringify({ messages: [...wirePairs.slice(from).flat(), lastWire], conversationId }),
    ).length;

  let from = 0;
  while (from < wirePairs.length && (count > limits.maxMessages || total > limits.maxTotalChars)) {
    const [u, a] = wirePairs[from];
    count -= 2;
    total -= charCount(u.content) + charCount(a.content);
    from++;
  }
  // Characters are not bytes (3 bytes each for most CJK text): also fit the body limit.
  while (from < wirePairs.length && bodyBytes(from) > MAX_BODY_BYTES) from++;

  return {
    messages: [...wirePairs.slice(from).flat(), lastWire],
    dropped: from * 2,
    droppedIds: pairs.slice(0, from).flatMap(([u, a]) => [u.id, a.id]),
  };
}

export function saveConversation(state) {
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state));
  } catch {
    // Storage full or disabled: the chat still works, it just won't survive a reload.
  }
}

export function clearConversation() {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // see saveConversation
  }
}

/** The saved conversation, or null. Anything malformed is discarded rather than trusted.
 *
 * `memory`: the server keeps this conversation; `conversationId` is then the server's id, or
 * null before the server stored a first turn, and each message says whether it is `stored`
 * (true), was not (false: a stopped or failed turn, or a conversation that expired) or is on
 * its way (null). */
export function loadConversation() {
  let raw;
  try {
    raw = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
  } catch {
    return null;
  }
  if (!raw || typeof raw !== "object") return null;
  const memory = raw.memory === true;
  if (!(isConversationId(raw.conversationId) || (memory && raw.conversationId === null))) return null;
  if (!Array.isArray(raw.messages)) return null;
  const messages = raw.messages
    .filter((m) => m && (m.role === "user" || m.role === "assistant") && typeof m.content === "string")
    .map((m) => ({
      id: typeof m.id === "string" ? m.id : newMessageId(),
      role: m.role,
      content: m.content,
      // Only what the server confirmed counts as stored; a turn cut short by the reload is not.
      ...(memory ? { stored: m.stored === true } : {}),
      ...(m.role === "assistant"
        ? {
            // A reply still streaming when the page went away was cut short: keep it as stopped.
            state: m.state === "streaming" ? "stopped" : ["done", "stopped", "error"].includes(m.state) ? m.state : "error",
            usage: m.usage && typeof m.usage === "object" ? m.usage : null,
            requestId: typeof m.requestId === "string" ? m.requestId : null,
          }
        : {}),
    }));
  return {
    memory,
    conversationId: raw.conversationId,
    messages,
    dropped: Number.isInteger(raw.dropped) ? raw.dropped : 0,
    droppedIds: Array.isArray(raw.droppedIds) ? raw.droppedIds.filter((id) => typeof id === "string") : [],
  };
}

/** The id of the conversation the server keeps for this browser, or null. */
export function loadMemoryId() {
  try {
    const id = localStorage.getItem(MEMORY_ID_KEY);
    return isConversationId(id) ? id : null;
  } catch {
    return null;
  }
}

export function saveMemoryId(id) {
  try {
    localStorage.setItem(MEMORY_ID_KEY, id);
  } catch {
    // Storage disabled: the conversation goes on in this page, but a reload starts a new one.
  }
}

/** Forget the kept id: any (`id` omitted), or only `id` (another tab may have moved on). */
export function forgetMemoryId(id) {
  try {
    if (id === undefined || localStorage.getItem(MEMORY_ID_KEY) === id) localStorage.removeItem(MEMORY_ID_KEY);
  } catch {
    // see saveMemoryId
  }
}

/**
 * The page's conversation from the server's `GET /api/conversations/{id}` (the source of
 * truth: what it does not hold, such as a stopped reply, is not shown), with what only this tab
 * knew — message ids, usage footers, request ids — taken from `cached` where a cached message
 * has the same role and text, in order.
 */
export function conversationFromServer(server, cached) {
  const local = cached?.memory && cached.conversationId === server.conversationId ? cached.messages : [];
  let from = 0;
  let matched = 0;
  const messages = server.messages.map((m) => {
    let k = from;
    while (k < local.length && !(local[k].role === m.role && local[k].content === m.content)) k++;
    const c = k < local.length ? local[k] : null;
    if (c) {
      from = k + 1;
      matched++;
    }
    const message = { id: c?.id ?? newMessageId(), role: m.role, content: m.content, stored: true };
    if (m.role === "assistant") {
      Object.assign(message, { state: "done", usage: c?.usage ?? null, requestId: c?.requestId ?? null });
    }
    return message;
  });
  // The note on older turns still holds if nothing changed since this tab saw it.
  const same = matched === messages.length && local.every((m) => m.stored !== true || messages.some((n) => n.id === m.id));
  return {
    memory: true,
    conversationId: server.conversationId,
    messages,
    dropped: same ? cached.dropped : 0,
    droppedIds: same ? cached.droppedIds : [],
  };
}

let idCounter = 0;
export function newMessageId() {
  idCounter += 1;
  return `m${Date.now().toString(36)}${idCounter}`;
}
