// Drawing the chat screen around the conversation logs: the sidebar of rooms and private chats
// (unread counts, mention highlights), the header (title, topic, connection state), and the
// member list (away presence, a stable colour per nick). Only text nodes carry people's text.

import { byId, clear, el } from "./dom.js";
import { notificationsAllowed, notificationsSupported } from "./notify.js";
import { casefold, nickClass, safe } from "./text.js";

/** Pixels from the bottom within which the log follows new lines. */
const STICK_PX = 48;
/** Pixels from the top within which scrolling up loads older history. */
const OLDER_PX = 40;

export class View {
  constructor() {
    this.chat = null;
    this.logs = byId("log-container");
    this.roomList = byId("room-list");
    this.chatList = byId("chat-list");
    this.memberList = byId("member-list");
    this.statusNode = byId("status");
    this.retryButton = byId("retry-button");
    /** Where the log was scrolled to at the previous scroll event. */
    this.lastTop = 0;
  }

  attach(chat) {
    this.chat = chat;
  }

  // ------------------------------------------------------------------ conversations

  conversationAdded(conv) {
    conv.log.setAttribute("role", "log");
    conv.log.hidden = true;
    this.logs.append(conv.log);
    this.olderState(conv);
    this.sidebar();
  }

  conversationRemoved(conv) {
    conv.log.remove();
    this.sidebar();
  }

  showConversation(conv) {
    for (const log of this.logs.children) log.hidden = log !== conv?.log;
    this.sidebar();
    this.members();
    this.header();
    if (conv) {
      this.stick(conv, { force: true });
      byId("message-label").textContent = conv.isRoom
        ? `Message ${safe(conv.name)}`
        : `Message ${safe(conv.name)} privately`;
    }
    closeDrawers();
  }

  /** Is the conversation's log scrolled to (near) its newest line? */
  atBottom(conv) {
    if (conv !== this.chat.current) return false;
    const box = this.logs;
    return box.scrollHeight - box.scrollTop - box.clientHeight < STICK_PX;
  }

  /** Scroll to the newest line if the person was already there (or `force`). */
  stick(conv, { force = false } = {}) {
    if (conv !== this.chat.current) return;
    const box = this.logs;
    if (force || box.scrollHeight - box.scrollTop - box.clientHeight < STICK_PX * 4) {
      box.scrollTop = box.scrollHeight;
    }
  }

  /**
   * Did the scroll that just happened take the log up to (near) its top, the person's doing
   * (wheel, touch, keys, scrollbar)? The position alone cannot tell: when a log first grows
   * past the screen, as a join's replay fills it, sticking to the newest line leaves it a few
   * pixels from its top, and a scroll event seen then (a frame drawn between two replayed
   * lines, as on a busy machine) looks like the person reaching the top. But the page itself
   * only scrolls the log to its bottom (the newest line) or down (keeping the place while older
   * lines go in above), and the browser moves it by itself only to keep it within a log that
   * changed size, which leaves it at the bottom: a scroll that went up and does not end at the
   * bottom is the person's.
   */
  scrolledUpToTop() {
    const box = this.logs;
    const top = box.scrollTop;
    const up = top < this.lastTop;
    this.lastTop = top;
    const atBottom = box.scrollHeight - top - box.clientHeight <= 1;
    return up && !atBottom && top < OLDER_PX;
  }

  /** Keep what the person is reading in place while older lines go in above it. */
  keepScroll(conv) {
    const box = this.logs;
    const height = box.scrollHeight;
    const top = box.scrollTop;
    return () => {
      if (conv === this.chat.current) box.scrollTop = top + (box.scrollHeight - height);
    };
  }

  /** The control at the top of a log: load older messages, loading, or the beginning. */
  olderState(conv, state = null) {
    let node;
    if (state === "loading") {
      node = el("li", { class: "older" }, "loading earlier messages…");
    } else if (conv.hasOlder) {
      node = el(
        "li",
        { class: "older" },
        el(
          "button",
          {
            type: "button",
            class: "older-button",
            onclick: () => this.chat.loadOlder(conv).catch((e) => this.chat.note(e.message, "error")),
          },
          "Load earlier messages",
        ),
      );
    } else {
      const why = conv.olderProblem ? ` (${safe(conv.olderProblem)})` : "";
      node = el("li", { class: "older" }, `no earlier messages${why}`);
    }
    conv.setOlderControl(node);
  }

  // ------------------------------------------------------------------ sidebar

  sidebar() {
    if (!this.chat) return;
    const rooms = [];
    const chats = [];
    for (const conv of this.chat.convs.values()) (conv.isRoom ? rooms : chats).push(conv);
    this.fillList(this.roomList, rooms, "No rooms yet");
    this.fillList(this.chatList, chats, "None yet");
  }

  fillList(list, convs, empty) {
    clear(list);
    if (!convs.length) {
      list.append(el("li", { class: "empty" }, empty));
      return;
    }
    for (const conv of convs) {
      const current = conv === this.chat.current;
      const counts = [];
      if (conv.unread) counts.push(`${conv.unread} unread`);
      if (conv.mentions) counts.push(conv.isRoom ? `${conv.mentions} mentioning you` : "");
      const label = [safe(conv.name), ...counts.filter(Boolean)].join(", ");
      const badge = conv.unread
        ? el("span", { class: "badge", "aria-hidden": "true" }, String(conv.unread))
        : null;
      const open = el(
        "button",
        {
          type: "button",
          class: "conv-button",
          "aria-current": current ? "page" : null,
          "aria-label": label,
          onclick: () => this.chat.show(conv),
        },
        el("span", { class: `conv-name${conv.isRoom ? "" : ` ${nickClass(conv.name)}`}` }, safe(conv.name)),
        badge,
      );
      const leave = el(
        "button",
        {
          type: "button",
          class: "leave-button",
          "aria-label": conv.isRoom ? `Leave ${safe(conv.name)}` : `Close chat with ${safe(conv.name)}`,
          title: conv.isRoom ? "Leave room" : "Close chat",
          onclick: () => this.chat.part(conv.name).catch((e) => this.chat.note(e.message, "error")),
        },
        "×",
      );
      const classes = ["conv"];
      if (current) classes.push("current");
      if (conv.unread) classes.push("unread");
      if (conv.mentions) classes.push("mentioned");
      list.append(el("li", { class: classes.join(" ") }, open, leave));
    }
  }

  // ------------------------------------------------------------------ header

  header() {
    const chat = this.chat;
    if (!chat) return;
    const conv = chat.current;
    byId("conv-title").textContent = conv ? safe(conv.name) : "anychat";
    const topic = byId("conv-topic");
    if (conv?.isRoom) topic.textContent = conv.topic ? safe(conv.topic) : "";
    else if (conv) topic.textContent = conv.away ? `away: ${safe(conv.away)}` : "private chat";
    else topic.textContent = "";
    const who = [`you are ${safe(chat.me || "…")}`];
    if (chat.account) who.push("logged in");
    if (chat.awayText) who.push(`away: ${safe(chat.awayText)}`);
    byId("whoami").textContent = who.join(" · ");
    const button = byId("notify-button");
    button.hidden = !notificationsSupported() || notificationsAllowed();
  }

  status(state, text, retry) {
    this.statusNode.dataset.state = state;
    this.statusNode.textContent = safe(text);
    this.retryButton.hidden = !retry;
    document.body.dataset.connection = state;
  }

  problem(text) {
    const node = byId("problem");
    node.textContent = safe(text);
    node.hidden = !text;
  }

  // ------------------------------------------------------------------ members

  members() {
    const chat = this.chat;
    if (!chat) return;
    const conv = chat.current;
    clear(this.memberList);
    const heading = byId("members-heading");
    if (!conv) {
      heading.textContent = "Members";
      return;
    }
    let entries;
    if (conv.isRoom) {
      entries = [...conv.members.values()];
      heading.textContent = `Members (${entries.length})`;
    } else {
      entries = [{ nick: chat.me, away: chat.awayText }, { nick: conv.name, away: conv.away ?? "" }];
      heading.textContent = "Private chat";
    }
    entries.sort((a, b) => casefold(a.nick).localeCompare(casefold(b.nick)));
    for (const { nick, away } of entries) {
      const me = casefold(nick) === casefold(chat.me);
      const presence = away ? "away" : "here";
      const label = me
        ? `${safe(nick)} (you${away ? ", away" : ""})`
        : `${safe(nick)}, ${away ? `away: ${safe(away)}` : "here"}; start a private chat`;
      const dot = el("span", { class: `presence ${presence}`, "aria-hidden": "true" });
      const name = el("span", { class: `nick ${nickClass(nick)}` }, safe(nick));
      const item = me
        ? el("span", { class: "member me", "aria-label": label }, dot, name, el("span", { class: "you" }, " (you)"))
        : el(
            "button",
            {
              type: "button",
              class: `member ${presence}`,
              "aria-label": label,
              title: away ? `away: ${safe(away)}` : "start a private chat",
              onclick: () => chat.openChat(nick),
            },
            dot,
            name,
            away ? el("span", { class: "away-text" }, " away") : null,
          );
      this.memberList.append(el("li", {}, item));
    }
  }

  focusComposer() {
    byId("message-input").focus();
  }
}

/** On a phone the sidebar and member list are drawers; choosing something closes them. */
export function closeDrawers() {
  for (const id of ["toggle-sidebar", "toggle-members"]) {
    const button = byId(id);
    button.setAttribute("aria-expanded", "false");
    byId(button.getAttribute("aria-controls")).classList.remove("open");
  }
}
