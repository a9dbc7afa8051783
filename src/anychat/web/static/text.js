// Text from other people, made harmless and readable: control characters and bidirectional
// overrides become visible marks (as in the terminal client), links become anchors only for
// http and https, and each nick gets the same colour in every session.

import { el } from "./dom.js";

// C0 and C1 controls, DEL, and the bidi embeddings, overrides and isolates (they reorder what
// follows them on screen, so a line could read differently from what was sent).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every unsafe character shown as U+FFFD. */
export function safe(text) {
  return String(text).replace(UNSAFE, "\ufffd");
}

/** The identity of a nick or room, as the server compares them. */
export function casefold(name) {
  return String(name).toLowerCase();
}

export function isRoom(target) {
  return typeof target === "string" && target.startsWith("#");
}

const LINK = /\bhttps?:\/\/[^\s<>"'`\ufffd]+/gi;
const TRAILING = /[.,;:!?'")\]}>]+$/;

/** The URL if `candidate` is an http(s) URL we are willing to make clickable. */
export function httpUrl(candidate) {
  let url;
  try {
    url = new URL(candidate);
  } catch {
    return null;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url : null;
}

/**
 * Nodes showing `text` (made safe): plain text nodes and, for http/https URLs, anchors that
 * open in a new tab without giving it a handle on this page.
 */
export function richText(text) {
  const clean = safe(text);
  const nodes = [];
  let last = 0;
  for (const match of clean.matchAll(LINK)) {
    let candidate = match[0];
    const trail = candidate.match(TRAILING);
    if (trail) candidate = candidate.slice(0, -trail[0].length);
    const url = httpUrl(candidate);
    if (!url) continue;
    if (match.index > last) nodes.push(document.createTextNode(clean.slice(last, match.index)));
    nodes.push(
      el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer", text: candidate }),
    );
    last = match.index + candidate.length;
  }
  if (last < clean.length) nodes.push(document.createTextNode(clean.slice(last)));
  return nodes;
}

// CRC-32 (the same function the terminal client uses), so a nick keeps its colour everywhere.
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(text) {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) {
    crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Number of nick colours in style.css (`.nick-c0` to `.nick-c8`). */
export const NICK_COLOURS = 9;

/** The CSS class giving `nick` its colour. */
export function nickClass(nick) {
  return `nick-c${crc32(casefold(nick)) % NICK_COLOURS}`;
}

const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const FULL = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

/** `12:01`, or `27 Nov 2026, 12:01` for a time that was not today. */
export function shortTime(seconds) {
  const when = new Date(seconds * 1000);
  const today = new Date();
  return when.toDateString() === today.toDateString() ? TIME.format(when) : DATE_TIME.format(when);
}

export function fullTime(seconds) {
  return FULL.format(new Date(seconds * 1000));
}

/** True when `text` names `nick` as a word (a mention). */
export function mentions(text, nick) {
  if (!nick) return false;
  const lower = casefold(text);
  const word = casefold(nick);
  let at = lower.indexOf(word);
  while (at !== -1) {
    const before = at === 0 ? "" : lower[at - 1];
    const after = lower[at + word.length] ?? "";
    if (!/[\p{L}\p{N}_\-\[\]\\`^{|}]/u.test(before) && !/[\p{L}\p{N}_\-\[\]\\`^{|}]/u.test(after)) {
      return true;
    }
    at = lower.indexOf(word, at + 1);
  }
  return false;
}

/** `text` in pieces of at most `limit` characters, cut at a space near the limit when there is
 * one (as the terminal client does), so a long paste arrives whole instead of refused. */
export function splitText(text, limit = 400) {
  const pieces = [];
  let rest = text;
  while ([...rest].length > limit) {
    const chars = [...rest];
    const head = chars.slice(0, limit + 1).join("");
    let cut = head.lastIndexOf(" ");
    if (cut < Math.floor(head.length / 2) || cut <= 0) cut = chars.slice(0, limit).join("").length;
    pieces.push(rest.slice(0, cut));
    rest = rest.slice(cut).replace(/^ +/, "");
  }
  if (rest || pieces.length === 0) pieces.push(rest);
  return pieces;
}
