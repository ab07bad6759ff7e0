// Server-Sent Events over fetch(). EventSource can only GET, and the chat stream is a POST,
// so the text/event-stream format is parsed here, following the WHATWG rules: lines end in
// "\r\n", "\n" or "\r"; a blank line dispatches the event; lines starting with ":" are comments
// (keep-alives); several "data:" lines join with "\n". "id:" and "retry:" only matter for
// EventSource reconnection, which a one-shot POST never does, so they are ignored.

export class SseParser {
  #buffer = "";
  #data = [];
  #event = "";

  /** Feed decoded text; returns the events it completed, as `{ event, data }` strings. */
  push(text) {
    this.#buffer += text;
    const events = [];
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    let match;
    while ((match = lineEnd.exec(this.#buffer)) !== null) {
      // A lone "\r" at the very end may be the first half of a "\r\n" split across chunks:
      // wait for the next chunk before deciding.
      if (match[0] === "\r" && match.index === this.#buffer.length - 1) break;
      this.#line(this.#buffer.slice(start, match.index), events);
      start = lineEnd.lastIndex;
    }
    this.#buffer = this.#buffer.slice(start);
    return events;
  }

  /** The stream ended. A last event without its blank line is still delivered (lenient on
   * purpose: a final `done` must not be lost to a missing terminator). */
  end() {
    const events = [];
    if (this.#buffer !== "") this.#line(this.#buffer, events);
    this.#buffer = "";
    this.#line("", events);
    return events;
  }

  #line(line, events) {
    if (line === "") {
      if (this.#data.length > 0) {
        events.push({ event: this.#event || "message", data: this.#data.join("\n") });
      }
      this.#data = [];
      this.#event = "";
      return;
    }
    if (line.startsWith(":")) return; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.#event = value;
    else if (field === "data") this.#data.push(value);
  }
}

/** Read a fetch() response body as SSE events. Stopping early (break/throw in the consumer)
 * cancels the body, which closes the connection. */
export async function* readSse(body) {
  const reader = body.getReader();
  // stream: true keeps a multi-byte UTF-8 character that is split across chunks intact.
  const decoder = new TextDecoder();
  const parser = new SseParser();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
    finished = true;
    yield* parser.push(decoder.decode());
    yield* parser.end();
  } finally {
    if (!finished) reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
