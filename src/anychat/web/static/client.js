// One WebSocket connection speaking anychat's JSON protocol (docs/protocol.md): one JSON object
// per text frame. Requests carry a `ref`; the reply with the same `ref` settles the request's
// promise (an `error` with that ref rejects it), so callers can await "join", "say" and so on.

/** The server refused a request: `code` is the protocol's stable error code. */
export class Refused extends Error {
  constructor(code, text) {
    super(text || code);
    this.code = code;
  }
}

/** The connection closed before the reply came. */
export class ConnectionLost extends Error {
  constructor(reason) {
    super(reason || "connection lost");
    this.code = "connection_lost";
  }
}

// The event type that completes each request (other replies with the same ref, such as the
// `joined` and `topic` before a join's `members`, still go to the event handler).
const FINAL_REPLY = {
  hello: "welcome",
  register: "logged_in",
  login: "logged_in",
  history: "history",
  join: "members",
  part: "parted",
  say: "ack",
  nick: "nick",
  who: "members",
  rooms: "rooms",
  topic: "topic",
  away: "away",
  whois: "user",
  ping: "pong",
};

// Replies the caller handles itself, so they are not also given to the event handler.
const CALLER_ONLY = new Set(["history", "rooms", "user", "pong"]);

export class Client {
  /**
   * Open a connection to `url`; resolves once the socket is open.
   * `onEvent(event)` receives every event the server sends, except replies the caller alone
   * wants (history pages, room lists, whois answers, pongs) and errors that reject a request.
   */
  static open(url, onEvent) {
    return new Promise((resolve, reject) => {
      const client = new Client(url, onEvent);
      client.ws.addEventListener("open", () => resolve(client), { once: true });
      client.closed.then((reason) => reject(new ConnectionLost(reason)));
    });
  }

  constructor(url, onEvent) {
    this.onEvent = onEvent;
    this.nextRef = 1;
    this.pending = new Map();
    /** Why the connection ended, once it has: a `bye` reason or the close code's meaning. */
    this.closedReason = null;
    /** The `bye` code (`logged_in_elsewhere`, `shutdown`...) if the server said goodbye. */
    this.byeCode = null;
    this.ws = new WebSocket(url);
    this.closed = new Promise((resolve) => {
      this.ws.addEventListener("close", (event) => {
        this.closedReason ??= event.reason || `connection closed (code ${event.code})`;
        for (const { reject } of this.pending.values()) {
          reject(new ConnectionLost(this.closedReason));
        }
        this.pending.clear();
        resolve(this.closedReason);
      });
    });
    this.ws.addEventListener("message", (event) => this.receive(event.data));
  }

  get open() {
    return this.ws.readyState === WebSocket.OPEN && this.closedReason === null;
  }

  receive(data) {
    if (typeof data !== "string") return;
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return; // not ours to show; the server only sends JSON
    }
    if (!event || typeof event !== "object" || typeof event.type !== "string") return;
    if (event.type === "bye") {
      this.byeCode = event.code ?? null;
      this.closedReason = event.reason || "the server closed the connection";
    }
    const waiter = event.ref !== undefined ? this.pending.get(event.ref) : undefined;
    if (waiter && event.type === "error") {
      this.pending.delete(event.ref);
      waiter.reject(new Refused(event.code, event.text));
      return;
    }
    if (waiter && event.type === waiter.final) {
      this.pending.delete(event.ref);
      if (!CALLER_ONLY.has(event.type)) this.onEvent(event);
      waiter.resolve(event);
      return;
    }
    this.onEvent(event);
  }

  /** Send a command without waiting for anything. */
  send(command) {
    if (!this.open) throw new ConnectionLost(this.closedReason || "not connected");
    this.ws.send(JSON.stringify(command));
  }

  /** Send a command and resolve with its final reply (reject with Refused or ConnectionLost). */
  request(command) {
    return this.begin(command).reply;
  }

  /** Like request(), also giving the command's `ref` at once (to match the reply to a line). */
  begin(command) {
    const ref = this.nextRef++;
    const final = FINAL_REPLY[command.type];
    const reply = new Promise((resolve, reject) => {
      try {
        this.send({ ...command, ref });
      } catch (error) {
        reject(error);
        return;
      }
      this.pending.set(ref, { resolve, reject, final });
    });
    return { ref, reply };
  }

  /** Say goodbye (the server answers `bye` and closes). */
  quit(reason = "") {
    try {
      this.send({ type: "quit", reason });
    } catch {
      this.ws.close();
    }
  }

  /** Drop the connection at once (used when giving up on it). */
  abort() {
    this.ws.close();
  }
}
