// The page's entry point: the first screen (nick, optional password, guest / log in /
// register), then the chat screen with its composer. The chat itself lives in chat.js.

import { Chat } from "./chat.js";
import { Completer, allowNotifications, isSecret } from "./commands.js";
import { byId } from "./dom.js";
import * as saved from "./saved.js";
import { casefold, isRoom, safe } from "./text.js";
import { View, closeDrawers } from "./view.js";

/** The WebSocket URL: the path named in index.html, on this page's host. */
function websocketUrl() {
  const path = document.querySelector('meta[name="anychat-websocket"]')?.content || "/ws";
  const url = new URL(path, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  return url.href;
}

/** `#ops` in the address opens the room #ops. */
function roomFromHash() {
  let hash;
  try {
    hash = decodeURIComponent(location.hash || "");
  } catch {
    return null; // a malformed %-escape: no room
  }
  return hash.length > 1 && isRoom(hash) && !/[\s,:]/.test(hash) ? hash : null;
}

let chat = null;
const view = new View();

function showLogin(error = "") {
  byId("chat-screen").hidden = true;
  byId("login-screen").hidden = false;
  const problem = byId("login-error");
  problem.textContent = safe(error);
  problem.hidden = !error;
  byId("login-password").value = "";
  byId("login-nick").value = saved.nick() ?? byId("login-nick").value;
  byId("login-nick").focus();
  document.title = "anychat";
}

function start(creds) {
  byId("login-screen").hidden = true;
  byId("chat-screen").hidden = false;
  clearLogs();
  chat = new Chat({ url: websocketUrl(), view, onLoggedOut: (reason) => showLogin(reason) });
  view.attach(chat);
  view.sidebar();
  view.header();
  byId("message-input").focus();
  chat.run(creds, { room: roomFromHash() });
}

function clearLogs() {
  byId("log-container").replaceChildren();
}

// ------------------------------------------------------------------ first screen

function loginWith(kind) {
  const nick = byId("login-nick").value.trim();
  const password = byId("login-password").value;
  if (kind !== "guest" && (!nick || !password)) {
    showLogin(kind === "register" ? "Choose a nick and a password to register." : "Type your nick and password to log in.");
    return;
  }
  saved.forget();
  if (kind === "guest") start({ nick: nick || null });
  else start({ nick, password, register: kind === "register" });
}

byId("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loginWith("guest");
});
byId("login-password").addEventListener("keydown", (event) => {
  // Enter in the password field logs in (the button a person with a password means).
  if (event.key === "Enter" && byId("login-password").value) {
    event.preventDefault();
    loginWith("login");
  }
});
byId("login-button").addEventListener("click", () => loginWith("login"));
byId("register-button").addEventListener("click", () => loginWith("register"));

// ------------------------------------------------------------------ chat screen

const input = byId("message-input");
const completer = new Completer(input, () => {
  if (!chat) return [];
  const nicks = new Map();
  const current = chat.current;
  const add = (nick) => {
    if (casefold(nick) !== casefold(chat.me)) nicks.set(casefold(nick), nick);
  };
  // The current room's members first, then everyone else we know of.
  if (current?.isRoom) for (const { nick } of current.members.values()) add(nick);
  for (const conv of chat.convs.values()) {
    if (conv.isRoom) for (const { nick } of conv.members.values()) add(nick);
    else add(conv.name);
  }
  return [...nicks.values()];
});
const sentLines = [];
let recall = -1;

async function submit() {
  const text = input.value;
  if (!text.trim() || !chat) return;
  // A paste of several lines: each line on its own, as the terminal client does.
  const lines = text.split(/\r\n|\r|\n/).filter((line) => line.trim());
  input.value = "";
  autosize();
  completer.reset();
  for (const line of lines) {
    if (!isSecret(line)) sentLines.push(line);
    try {
      await chat.execute(line);
    } catch (error) {
      chat.note(error.message || String(error), "error");
      if (error.code === "connection_lost" && !input.value) input.value = line;
      autosize();
      break;
    }
  }
  recall = -1;
}

byId("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.isComposing) {
    // Enter sends; the protocol has no multi-line messages, so Shift+Enter sends as well.
    event.preventDefault();
    submit();
  } else if (event.key === "Tab" && !event.ctrlKey && !event.altKey && !event.metaKey) {
    // Tab completes when there is something to complete; otherwise it moves focus as usual.
    // Shift+Tab only steps back through matches already offered; otherwise it moves focus.
    if ((!event.shiftKey || completer.state) && completer.complete(event.shiftKey)) {
      event.preventDefault();
      const matches = completer.matches;
      byId("completions").textContent = matches.length > 1 ? matches.map(safe).join("  ") : "";
    }
  } else if (event.altKey || event.ctrlKey || event.metaKey) {
    // Alt+ArrowUp/Down switch conversations (below); nothing else to do here.
  } else if (event.key === "ArrowUp" && !input.value.includes("\n") && input.selectionStart === 0) {
    if (sentLines.length && recall < sentLines.length - 1) {
      recall++;
      input.value = sentLines[sentLines.length - 1 - recall];
      event.preventDefault();
    }
  } else if (event.key === "ArrowDown" && recall >= 0 && input.selectionStart === input.value.length) {
    recall--;
    input.value = recall >= 0 ? sentLines[sentLines.length - 1 - recall] : "";
    event.preventDefault();
  } else if (event.key === "Escape") {
    completer.reset();
    byId("completions").textContent = "";
  } else if (event.key === "PageUp" || event.key === "PageDown") {
    const box = byId("log-container");
    box.scrollBy({ top: (event.key === "PageUp" ? -0.9 : 0.9) * box.clientHeight });
    event.preventDefault();
  }
});
input.addEventListener("input", () => {
  autosize();
  if (input.value !== completer.state?.result) {
    completer.reset();
    byId("completions").textContent = "";
  }
});

function autosize() {
  input.classList.toggle("multi", input.value.includes("\n"));
}

byId("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const field = byId("join-input");
  const name = field.value.trim();
  if (!name || !chat) return;
  chat
    .join(name)
    .then(() => {
      field.value = "";
      input.focus();
    })
    .catch((error) => chat.note(error.message, "error"));
});

byId("retry-button").addEventListener("click", () => chat?.reconnectNow());
byId("notify-button").addEventListener("click", () => chat && allowNotifications(chat));
window.addEventListener("online", () => chat?.reconnectNow());

// Older history when the person scrolls the log up to its top (not when the page scrolls it).
byId("log-container").addEventListener("scroll", () => {
  const conv = chat?.current;
  if (view.scrolledUpToTop() && conv?.hasOlder && !conv.loadingOlder && chat.client?.open) {
    chat.loadOlder(conv).catch(() => {});
  }
});

document.addEventListener("visibilitychange", () => chat?.seen());
window.addEventListener("focus", () => chat?.seen());
window.addEventListener("hashchange", () => {
  const room = roomFromHash();
  if (!chat || !room) return;
  const conv = chat.conv(room, { create: false });
  if (conv?.joined) chat.show(conv);
  else chat.join(room).catch((error) => chat.note(error.message, "error"));
});

// Alt+ArrowUp / Alt+ArrowDown: the previous / next conversation, from anywhere.
document.addEventListener("keydown", (event) => {
  if (!chat || !event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
  const convs = [...chat.convs.values()];
  if (!convs.length) return;
  const at = convs.indexOf(chat.current);
  const step = event.key === "ArrowUp" ? -1 : 1;
  chat.show(convs[(at + step + convs.length) % convs.length]);
  event.preventDefault();
});

for (const id of ["toggle-sidebar", "toggle-members"]) {
  byId(id).addEventListener("click", () => {
    const button = byId(id);
    const open = button.getAttribute("aria-expanded") !== "true";
    closeDrawers();
    button.setAttribute("aria-expanded", String(open));
    const drawer = byId(button.getAttribute("aria-controls"));
    drawer.classList.toggle("open", open);
    if (open) drawer.querySelector("button, input")?.focus();
  });
}
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && document.querySelector(".open")) {
    closeDrawers();
    input.focus();
  }
});

// A saved login (this tab, before a reload) logs in again at once.
if (saved.token() && saved.nick()) {
  start({ nick: saved.nick(), token: saved.token() });
} else {
  showLogin();
}
