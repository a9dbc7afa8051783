// One conversation (a room or a private chat with one nick): its log of lines, the message ids
// it shows (so replayed history, a catch-up page after a reconnect and live delivery, which can
// overlap, show each message exactly once, in id order), unread counts and members.

import { el } from "./dom.js";
import { casefold, fullTime, isRoom, nickClass, richText, safe, shortTime } from "./text.js";

export class Conversation {
  constructor(name) {
    this.name = name;
    this.key = casefold(name);
    this.isRoom = isRoom(name);
    /** Message ids shown here. */
    this.ids = new Set();
    this.minId = Infinity;
    this.maxId = 0;
    /** Messages from others not yet seen by the person, and how many of them mention them. */
    this.unread = 0;
    this.mentions = 0;
    /** Casefolded nick -> {nick, away} for a room; the other party for a private chat. */
    this.members = new Map();
    this.topic = "";
    /** False once a history page came back short: nothing older to load. */
    this.hasOlder = true;
    this.loadingOlder = false;
    /** A room we left stays listed (read-only) until closed. */
    this.joined = this.isRoom;
    this.log = el("ol", { class: "log", "aria-label": `messages in ${safe(name)}` });
    this.marker = null;
    this.pendingByRef = new Map();
  }

  rename(name) {
    this.name = name;
    this.key = casefold(name);
    this.log.setAttribute("aria-label", `messages in ${safe(name)}`);
  }

  has(id) {
    return this.ids.has(id);
  }

  /**
   * Add a message from the server (live, replayed or fetched); false if it was shown already.
   * `me` is our nick (for styling our own lines); `openChat(nick)` starts a private chat.
   */
  addMessage(msg, { me, mention, openChat }) {
    if (this.ids.has(msg.id)) return false;
    const mine = casefold(msg.from) === casefold(me);
    if (mine && this.adoptLost(msg)) return true;
    this.remember(msg.id);
    const line = messageLine(msg, { mine, mention, openChat });
    this.insertById(line, msg.id);
    return true;
  }

  remember(id) {
    this.ids.add(id);
    this.minId = Math.min(this.minId, id);
    this.maxId = Math.max(this.maxId, id);
  }

  insertById(line, id) {
    if (id >= this.maxId || !this.log.lastElementChild) {
      this.log.append(line);
      return;
    }
    // Older than something shown: before the first line with a larger id.
    for (const other of this.log.children) {
      if (other.dataset.id && Number(other.dataset.id) > id) {
        other.before(line);
        return;
      }
    }
    this.log.append(line);
  }

  /** Our own message, shown at once and marked pending until the server acks it. */
  addPending(ref, { me, text, kind }) {
    const line = messageLine(
      { id: null, time: Date.now() / 1000, from: me, text, kind },
      { mine: true, mention: false, openChat: null },
    );
    line.classList.add("pending");
    line.dataset.ref = String(ref);
    line.dataset.text = text;
    line.dataset.kind = kind;
    setStatus(line, "sending…", "pending");
    this.log.append(line);
    this.pendingByRef.set(ref, line);
    return line;
  }

  confirm(ref, ack) {
    const line = this.pendingByRef.get(ref);
    if (!line) return;
    this.pendingByRef.delete(ref);
    this.remember(ack.id);
    line.dataset.id = String(ack.id);
    line.classList.remove("pending");
    line.classList.add("confirmed");
    const time = line.querySelector("time");
    setTime(time, ack.time);
    setStatus(line, "sent", "confirmed");
  }

  /** Mark a pending message refused (or lost); `retry()` sends it again from a button. */
  fail(ref, why, { lost = false, retry = null } = {}) {
    const line = this.pendingByRef.get(ref);
    if (!line) return null;
    this.pendingByRef.delete(ref);
    line.classList.remove("pending");
    line.classList.add("failed");
    if (lost) line.dataset.lost = "1";
    setStatus(line, `not sent: ${safe(why)}`, "failed");
    if (retry) {
      const button = el(
        "button",
        {
          type: "button",
          class: "retry-button",
          "aria-label": "Send this message again",
          onclick: () => {
            line.remove();
            retry();
          },
        },
        "Retry",
      );
      line.append(" ", button);
    }
    return line;
  }

  /** Every message still waiting for its ack, failed because the connection went away. */
  failAllPending(why) {
    for (const ref of [...this.pendingByRef.keys()]) this.fail(ref, why, { lost: true });
  }

  /** A line marked lost that history showed arrived: it keeps no retry button. */
  static settle(line) {
    line.querySelector(".retry-button")?.remove();
  }

  /**
   * A message of ours from history that matches a line marked failed because the connection
   * dropped before its ack: it did get through, so that line becomes the confirmed message.
   */
  adoptLost(msg) {
    for (const line of this.log.querySelectorAll("li.failed[data-lost]")) {
      if (line.dataset.text === msg.text && line.dataset.kind === msg.kind) {
        delete line.dataset.lost;
        Conversation.settle(line);
        line.classList.remove("failed");
        line.classList.add("confirmed");
        line.dataset.id = String(msg.id);
        this.remember(msg.id);
        setTime(line.querySelector("time"), msg.time);
        setStatus(line, "sent", "confirmed");
        return true;
      }
    }
    return false;
  }

  /** A line about presence, the topic or a command's result (`kind`: event, info, error). */
  addLine(text, kind = "event") {
    const line = el(
      "li",
      { class: `line ${kind}`, role: kind === "error" ? "alert" : null },
      el("time", {}, ""),
      el("span", { class: "text" }, safe(text)),
    );
    setTime(line.querySelector("time"), Date.now() / 1000);
    this.log.append(line);
    return line;
  }

  /** Put the "new messages" marker before the line of message `id`. */
  markNewFrom(id) {
    this.marker?.remove();
    const line = this.log.querySelector(`li[data-id="${Number(id)}"]`);
    if (!line) return;
    this.marker = el("li", { class: "new-marker", role: "separator" }, el("span", {}, "new messages"));
    line.before(this.marker);
  }

  /** The older-history placeholder at the top: a button while there is more to load. */
  setOlderControl(node) {
    this.olderControl?.remove();
    this.olderControl = node;
    if (node) this.log.prepend(node);
  }

  messageCount() {
    return this.ids.size;
  }
}

function setTime(node, seconds) {
  node.textContent = shortTime(seconds);
  node.dateTime = new Date(seconds * 1000).toISOString();
  node.title = fullTime(seconds);
}

function setStatus(line, text, state) {
  let status = line.querySelector(".status");
  if (!status) {
    status = el("span", { class: "status" });
    line.append(status);
  }
  status.textContent = text;
  status.dataset.state = state;
}

function nickNode(nick, { mine, openChat }) {
  const attrs = { class: `nick ${nickClass(nick)}${mine ? " me" : ""}` };
  if (mine || !openChat) return el("span", attrs, safe(nick));
  return el(
    "button",
    {
      ...attrs,
      type: "button",
      tabindex: "-1",
      title: `private chat with ${safe(nick)}`,
      onclick: () => openChat(nick),
    },
    safe(nick),
  );
}

/** The `<li>` of one message: time, nick and text, all as text nodes (links as anchors). */
export function messageLine(msg, { mine, mention, openChat }) {
  const kind = ["plain", "action", "notice"].includes(msg.kind) ? msg.kind : "plain";
  const time = el("time");
  setTime(time, msg.time);
  const nick = nickNode(msg.from, { mine, openChat });
  const text = el("span", { class: "text" }, richText(msg.text));
  let body;
  if (kind === "action") body = [el("span", { class: "mark" }, "* "), nick, " ", text];
  else if (kind === "notice") body = [el("span", { class: "mark" }, "-"), nick, el("span", { class: "mark" }, "- "), text];
  else body = [el("span", { class: "mark" }, "<"), nick, el("span", { class: "mark" }, "> "), text];
  const classes = ["msg", `kind-${kind}`];
  if (mine) classes.push("mine");
  if (mention) classes.push("mention");
  if (msg.history) classes.push("history");
  return el(
    "li",
    { class: classes.join(" "), dataset: msg.id === null ? {} : { id: String(msg.id) } },
    time,
    " ",
    ...body,
  );
}
