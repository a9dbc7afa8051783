// The slash commands, as in the terminal client (plus /topic, /away, /whois, /names and /query),
// and Tab completion of command names and nicks.

import { askPermission } from "./notify.js";
import { isRoom } from "./text.js";

/** name -> [arguments, what it does]; the order is the order of /help. */
export const COMMANDS = {
  join: ["#ROOM", "join a room and talk there"],
  part: ["[#ROOM] [REASON]", "leave a room (default: the current one)"],
  msg: ["NICK|#ROOM TEXT", "send to a nick privately, or to a room"],
  query: ["NICK", "open a private chat with a nick"],
  me: ["ACTION", "act in the current room (* you waves)"],
  nick: ["NAME", "change your nick"],
  topic: ["[TEXT]", "show or set the current room's topic"],
  away: ["[TEXT]", "mark yourself away (no text: back)"],
  whois: ["NICK", "who a nick is and where"],
  who: ["[#ROOM]", "list the members of a room"],
  names: ["[#ROOM]", "the same as /who"],
  rooms: ["", "list the rooms"],
  history: ["[#ROOM|NICK] [ID]", "earlier messages (before message ID)"],
  register: ["PASSWORD", "claim your nick with a password"],
  login: ["NICK PASSWORD", "log in to your account"],
  notify: ["", "allow desktop notifications for mentions and private messages"],
  help: ["", "this list"],
  quit: ["[REASON]", "leave the chat"],
};

/** Commands whose arguments hold a password: never kept in the input history. */
export const SECRET_COMMANDS = new Set(["register", "login"]);

export function roomName(word) {
  return isRoom(word) ? word : `#${word}`;
}

/**
 * What a typed line asks for: `{say: text}` for text to the current conversation, or
 * `{command, rest}` for a slash command (`//text` says `/text`).
 */
export function parseLine(line) {
  if (line.startsWith("//")) return { say: line.slice(1) };
  if (!line.startsWith("/")) return { say: line };
  const space = line.indexOf(" ");
  const command = (space === -1 ? line.slice(1) : line.slice(1, space)).toLowerCase();
  const rest = space === -1 ? "" : line.slice(space + 1).trim();
  return { command, rest };
}

export function isSecret(line) {
  const parsed = parseLine(line);
  return parsed.command !== undefined && SECRET_COMMANDS.has(parsed.command);
}

/**
 * Run one slash command against `chat` (the page's controller). Throws an Error with a
 * message for people when the command is unknown or used wrongly.
 */
export async function runCommand(chat, command, rest) {
  const words = rest.split(/\s+/).filter(Boolean);
  const usage = () => {
    throw new Error(`usage: /${command} ${COMMANDS[command][0]}`);
  };
  switch (command) {
    case "join":
      if (!words.length) usage();
      return chat.join(roomName(words[0]), { focus: true });
    case "part": {
      if (words.length && isRoom(words[0])) return chat.part(words[0], words.slice(1).join(" "));
      return chat.part(null, rest);
    }
    case "msg": {
      const space = rest.indexOf(" ");
      if (space === -1 || !rest.slice(space + 1).trim()) usage();
      return chat.say(rest.slice(0, space), rest.slice(space + 1), "plain");
    }
    case "query":
      if (!words.length) usage();
      return chat.openChat(words[0]);
    case "me":
      if (!rest) usage();
      return chat.say(null, rest, "action");
    case "nick":
      if (!words.length) usage();
      return chat.live().request({ type: "nick", nick: words[0] });
    case "topic":
      return topic(chat, rest || null);
    case "away":
      return chat.live().request({ type: "away", text: rest });
    case "whois":
      if (!words.length) usage();
      return whois(chat, words[0]);
    case "who":
    case "names":
      return who(chat, words.length ? roomName(words[0]) : null);
    case "rooms":
      return listRooms(chat);
    case "history": {
      let target = null;
      let before = null;
      if (words.length && !/^\d+$/.test(words[0])) target = words.shift();
      if (words.length === 1 && /^\d+$/.test(words[0])) before = Number(words[0]);
      else if (words.length) usage();
      return chat.olderHistory(target, before);
    }
    case "register":
      if (!rest) usage();
      return chat.live().request({ type: "register", password: rest });
    case "login": {
      const space = rest.indexOf(" ");
      if (space === -1) usage();
      return chat.live().request({
        type: "login",
        nick: rest.slice(0, space),
        password: rest.slice(space + 1),
      });
    }
    case "notify":
      return allowNotifications(chat);
    case "help":
      for (const line of helpLines()) chat.note(line);
      return;
    case "quit":
      return chat.quit(rest);
    default:
      throw new Error(`unknown command /${command}; /help lists the commands`);
  }
}

async function topic(chat, text) {
  const conv = chat.current;
  if (!conv?.isRoom) throw new Error("/topic works in a room");
  if (text === null) {
    const reply = await chat.live().request({ type: "topic", room: conv.name });
    chat.note(
      reply.text
        ? `topic of ${conv.name}: ${reply.text} (set by ${reply.setter})`
        : `${conv.name} has no topic`,
    );
    return;
  }
  await chat.live().request({ type: "topic", room: conv.name, text });
  chat.note(text ? `you set the topic: ${text}` : "you cleared the topic");
}

async function whois(chat, nick) {
  const user = await chat.live().request({ type: "whois", nick });
  const rooms = user.rooms.length ? user.rooms.join(", ") : "no rooms";
  const away = user.away ? `; away: ${user.away}` : "";
  const since = new Date(user.since * 1000).toLocaleString();
  chat.note(`${user.nick}: in ${rooms}${away}; here since ${since}`);
}

async function who(chat, room) {
  const name = room ?? (chat.current?.isRoom ? chat.current.name : null);
  if (!name) throw new Error("usage: /who #ROOM");
  const reply = await chat.live().request({ type: "who", room: name });
  chat.note(`in ${reply.room}: ${reply.nicks.join(", ")}`);
}

async function listRooms(chat) {
  const reply = await chat.live().request({ type: "rooms" });
  const listing = reply.rooms.map((r) => `${r.name} (${r.members})`).join(", ");
  chat.note(`rooms: ${listing || "none"}`);
}

/** Ask for desktop notifications (from a click or /notify) and say what the browser answered. */
export async function allowNotifications(chat) {
  const answer = await askPermission();
  const said = {
    granted: "desktop notifications are on (mentions and private messages while hidden)",
    denied: "desktop notifications are blocked in this browser's settings",
    unsupported: "this browser has no desktop notifications",
  };
  chat.note(said[answer] ?? "desktop notifications were not allowed");
  chat.view.header();
}

export function helpLines() {
  const lines = ["commands:"];
  for (const [name, [args, what]] of Object.entries(COMMANDS)) {
    lines.push(`/${name} ${args}`.padEnd(26, "\u00a0") + " " + what);
  }
  lines.push("anything else is said to the current conversation; // says a leading /");
  return lines;
}

/**
 * Tab completion state for one textbox: each Tab after the first cycles through the matches
 * for the word before the caret (a command name at the start of the line, otherwise a nick).
 */
export class Completer {
  constructor(input, nicks) {
    this.input = input;
    this.nicks = nicks;
    this.state = null;
  }

  reset() {
    this.state = null;
  }

  /** Complete (or cycle); returns false when there is nothing to complete (Tab moves focus). */
  complete(backwards = false) {
    const input = this.input;
    if (input.selectionStart !== input.selectionEnd) return false;
    if (this.state && input.value === this.state.result) {
      const { matches } = this.state;
      this.state.index = (this.state.index + (backwards ? matches.length - 1 : 1)) % matches.length;
      this.apply();
      return true;
    }
    const caret = input.selectionStart;
    const before = input.value.slice(0, caret);
    const start = before.search(/\S*$/);
    const word = before.slice(start);
    if (!word) return false;
    let matches;
    let suffix;
    if (start === 0 && word.startsWith("/") && !word.startsWith("//")) {
      const prefix = word.slice(1).toLowerCase();
      matches = Object.keys(COMMANDS)
        .filter((name) => name.startsWith(prefix))
        .map((name) => `/${name}`);
      suffix = " ";
    } else {
      const prefix = word.toLowerCase();
      matches = this.nicks().filter((nick) => nick.toLowerCase().startsWith(prefix));
      suffix = start === 0 ? ": " : " ";
    }
    if (!matches.length) return false;
    this.state = {
      head: input.value.slice(0, start),
      tail: input.value.slice(caret),
      matches,
      suffix,
      index: 0,
      result: null,
    };
    this.apply();
    return true;
  }

  apply() {
    const { head, tail, matches, suffix, index } = this.state;
    const completed = head + matches[index] + suffix;
    this.input.value = completed + tail;
    this.input.setSelectionRange(completed.length, completed.length);
    this.state.result = this.input.value;
  }

  /** The matches being cycled through, for showing to the person. */
  get matches() {
    return this.state ? this.state.matches : [];
  }
}
