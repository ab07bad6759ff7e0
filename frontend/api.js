// Talking to the chat service: endpoints from config.js, error decoding, the OAC body hash.
import { readSse } from "./sse.js";

const config = window.CHATBOT_CONFIG ?? {};
const trimSlash = (url) => String(url ?? "").replace(/\/+$/, "");
const API_BASE = trimSlash(config.apiBaseUrl);
const STREAM_BASE = trimSlash(config.streamUrl);

// `?stream=0` forces the buffered endpoint (handy for trying both paths locally).
const streamingDisabled = new URLSearchParams(location.search).get("stream") === "0";

/** Where streamed replies come from, or null when only the buffered endpoint exists:
 * a configured stream URL; else the page's own origin when no API base is set (local
 * server); a deployment without a stream URL falls back to buffered /api/chat. */
export const STREAM_ENDPOINT = streamingDisabled
  ? null
  : STREAM_BASE
    ? `${STREAM_BASE}/api/chat/stream`
    : API_BASE === ""
      ? "/api/chat/stream"
      : null;

/** The server's fixed 64 KiB request body cap (crates/service/src/request.rs MAX_BODY_BYTES, a
 * constant of the wire format). The configurable limits come from /api/health: fetchLimits. */
export const MAX_BODY_BYTES = 64 * 1024;

/** An API error (`code` as in the API's error body), or `network` when the service
 * could not be reached or the connection broke. */
export class ChatError extends Error {
  constructor(code, message, { requestId = null, status = null } = {}) {
    super(message);
    this.name = "ChatError";
    this.code = code;
    this.requestId = requestId;
    this.status = status;
  }
}

// For error responses that are not the API's JSON (e.g. a proxy's HTML page).
const CODE_BY_STATUS = {
  400: "invalid_request",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
  500: "internal",
  502: "model_error",
  503: "model_unavailable",
  504: "model_timeout",
};

/** The service's request limits (maxMessages, maxMessageChars, maxTotalChars) as /api/health
 * publishes them: the page has no limits of its own. Rejects when they cannot be read. */
export function limitsFrom(health) {
  const l = health?.limits ?? {};
  const names = ["maxMessages", "maxMessageChars", "maxTotalChars"];
  if (!names.every((n) => Number.isInteger(l[n]) && l[n] > 0)) {
    throw new ChatError("bad_response", "the service did not say its limits");
  }
  return Object.freeze(Object.fromEntries(names.map((n) => [n, l[n]])));
}

/** Conversation memory as /api/health describes it. A service that does not say (an older
 * one) keeps no conversations: the page then sends the whole history itself. */
export function memoryFrom(health) {
  const m = health?.memory;
  if (!m || m.enabled !== true) return Object.freeze({ enabled: false });
  const positive = (v) => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : null);
  return Object.freeze({ enabled: true, ttlHours: positive(m.ttlHours), maxTurns: positive(m.maxTurns) });
}

export async function fetchHealth() {
  const res = await fetch(`${API_BASE}/api/health`, {
    headers: { accept: "application/json" },
    signal: AbortSignal.timeout(8000), // never leave the page waiting on a hung service
  });
  if (!res.ok) throw await errorFrom(res);
  return res.json();
}

const conversationUrl = (id) => `${API_BASE}/api/conversations/${encodeURIComponent(id)}`;

/** A conversation the server keeps: `{ conversationId, messages: [{ role, content }], turns,
 * updatedAt, expiresAt }`. Rejects with ChatError `conversation_not_found` when it expired or
 * was deleted. */
export async function fetchConversation(id) {
  const res = await request(conversationUrl(id), { headers: { accept: "application/json" } });
  if (!res.ok) throw await errorFrom(res);
  let data;
  try {
    data = await res.json();
  } catch {
    throw badResponse(res);
  }
  const ok =
    data &&
    Array.isArray(data.messages) &&
    data.messages.every((m) => m && (m.role === "user" || m.role === "assistant") && typeof m.content === "string");
  if (!ok) throw badResponse(res);
  return data;
}

/** Forget a conversation on the server now (204). */
export async function deleteConversation(id) {
  const res = await request(conversationUrl(id), { method: "DELETE", headers: { accept: "application/json" } });
  if (!res.ok) throw await errorFrom(res);
}

/** fetch() with a deadline, a failure to connect as ChatError `network`. */
async function request(url, init) {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(15000) });
  } catch (err) {
    throw new ChatError("network", String(err?.message ?? err));
  }
}

/** Buffered chat: resolves to the API's reply object. */
export async function postChat(body, signal) {
  const res = await send(`${API_BASE}/api/chat`, body, signal, false);
  if (!res.ok) throw await errorFrom(res);
  try {
    return await res.json();
  } catch (err) {
    if (signal.aborted) throw err;
    throw badResponse(res);
  }
}

/** Streamed chat: yields `{ event, data }` with `data` parsed from JSON. A failure before
 * the stream began is thrown as ChatError, like the buffered call. */
export async function* postChatStream(body, signal) {
  // Always hashed: deployed, the stream path is a Lambda Function URL behind CloudFront on the
  // page's own origin, whose Origin Access Control needs the body's hash; locally it is ignored.
  const res = await send(STREAM_ENDPOINT, body, signal, true);
  if (!res.ok) throw await errorFrom(res);
  const type = res.headers.get("content-type") ?? "";
  if (!type.startsWith("text/event-stream") || !res.body) throw badResponse(res);
  try {
    for await (const { event, data } of readSse(res.body)) {
      let parsed;
      try {
        parsed = JSON.parse(data);
      } catch {
        throw badResponse(res);
      }
      yield { event, data: parsed };
    }
  } catch (err) {
    // A broken connection mid-stream rejects with TypeError; a user abort stays an AbortError.
    if (err instanceof TypeError && !signal.aborted) {
      throw new ChatError("network", "interrupted", { requestId: res.headers.get("x-request-id") });
    }
    throw err;
  }
}

async function send(url, body, signal, signBody) {
  // Encode once so the hash below covers exactly the bytes sent.
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
  // CloudFront Origin Access Control in front of a Lambda Function URL signs the request
  // but cannot hash a POST body itself: the client must send the SHA-256 of the body.
  if (signBody) {
    const hash = await sha256Hex(bytes);
    if (hash) headers["x-amz-content-sha256"] = hash;
  }
  try {
    return await fetch(url, { method: "POST", headers, body: bytes, signal });
  } catch (err) {
    if (signal.aborted) throw err;
    throw new ChatError("network", String(err?.message ?? err));
  }
}

async function sha256Hex(bytes) {
  // crypto.subtle exists only in secure contexts (https, localhost); skip the header elsewhere.
  if (!globalThis.crypto?.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function errorFrom(res) {
  const headerId = res.headers.get("x-request-id");
  let payload = null;
  try {
    payload = await res.json();
  } catch {
    // not the API's JSON error body
  }
  const err = payload?.error;
  if (err && typeof err.code === "string") {
    return new ChatError(err.code, String(err.message ?? ""), {
      requestId: err.requestId ?? headerId,
      status: res.status,
    });
  }
  return new ChatError(CODE_BY_STATUS[res.status] ?? "http_error", `HTTP ${res.status}`, {
    requestId: headerId,
    status: res.status,
  });
}

function badResponse(res) {
  return new ChatError("bad_response", "unreadable response", {
    requestId: res.headers.get("x-request-id"),
    status: res.status,
  });
}
