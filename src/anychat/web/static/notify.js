// Telling the person about what they have not seen: the unread count in the tab's title, and
// desktop notifications (only after they allowed them) for mentions and private messages that
// arrive while the tab is hidden.

import { safe } from "./text.js";

const BASE_TITLE = "anychat";

export function setTitle(unread, where) {
  const place = where ? `${safe(where)} – ` : "";
  document.title = unread > 0 ? `(${unread}) ${place}${BASE_TITLE}` : `${place}${BASE_TITLE}`;
}

export function notificationsSupported() {
  return typeof Notification !== "undefined";
}

export function notificationsAllowed() {
  return notificationsSupported() && Notification.permission === "granted";
}

/** Ask for permission (must run from a click or a typed command); resolves to the answer. */
export async function askPermission() {
  if (!notificationsSupported()) return "unsupported";
  if (Notification.permission !== "default") return Notification.permission;
  return Notification.requestPermission();
}

/** A desktop notification, if allowed and the page is hidden; clicking it shows the chat. */
export function notify(title, body, onClick) {
  if (!notificationsAllowed() || !document.hidden) return null;
  const note = new Notification(safe(title), { body: safe(body), tag: "anychat" });
  note.addEventListener("click", () => {
    window.focus();
    onClick?.();
    note.close();
  });
  return note;
}
