// The chat itself: one person's session over reconnects. It keeps the connection alive
// (reconnecting with exponential backoff, logging in again with the token, rejoining its rooms
// and fetching what was said meanwhile from the last message id it saw), turns the server's
// events into conversations, and carries out what the person types.

import { Client, ConnectionLost, Refused } from "./client.js";
import { parseLine, roomName, runCommand } from "./commands.js";
import { Conversation } from "./conversation.js";
import { notify, setTitle } from "./notify.js";
import * as saved from "./saved.js";
import { casefold, isRoom, mentions, safe, splitText } from "./text.js";

export const RECONNECT_INITIAL_MS = 500;
export const RECONNECT_MAX_MS = 10000;
/** History pages: the size asked for when scrolling up, and when catching up (the maximum). */
export const PAGE = 50;
export const CATCH_UP_PAGE = 500;
export const CATCH_UP_MAX_PAGES = 10;
/** Away statuses are asked for (whois) for rooms up to this size, and refreshed this often. */
const AWAY_CHECK_MAX_MEMBERS = 50;
const AWAY_REFRESH_MS = 60000;

const FATAL_LOGIN = new Set(["login_failed", "token_expired", "token_invalid", "nick_registered"]);

export class Chat {
  /**
   * `view` draws the sidebar, header and member list (view.js); `onLoggedOut(reason)` brings
   * back the first screen.
   */
  constructor({ url, view, onLoggedOut }) {
    this.url = url;
    this.view = view;
    this.onLoggedOut = onLoggedOut;
    this.client = null;
    this.me = "";
    this.account = null;
    this.awayText = "";
    /** casefolded name -> Conversation, in the order opened. */
    this.convs = new Map();
    this.current = null;
    /** The highest message id seen (shown, or acked for our own): catch-up starts after it. */
    this.lastId = 0;
    this.catchingUpSince = null;
    this.quitting = false;
    this.state = "connecting";
    this.wake = null;
    this.awayTimer = null;
  }

  // ------------------------------------------------------------------ connection

  /** Connect and stay connected. `creds`: `{nick, password?, register?, token?}`. */
  async run(creds, { room = null } = {}) {
    let first = true;
    let delay = RECONNECT_INITIAL_MS;
    let reason = "";
    this.awayTimer = setInterval(() => this.refreshAway(), AWAY_REFRESH_MS);
    while (!this.quitting) {
      this.setState("connecting", first ? "connecting…" : "reconnecting…");
      let client = null;
      try {
        client = await Client.open(this.url, (event) => this.onEvent(event));
        this.client = client;
        await this.logOn(client, creds, { first, room });
      } catch (error) {
        client?.abort();
        this.client = null;
        if (error instanceof Refused) {
          if (first || FATAL_LOGIN.has(error.code)) {
            this.stop();
            saved.forget();
            this.onLoggedOut(error.message);
            return;
          }
          if (error.code === "nick_in_use") {
            // Our old connection may still hold the nick until the server notices it is gone.
            this.note(`nick ${this.me} is taken; reconnecting with a guest nick`, "error");
            creds = { nick: null };
            continue;
          }
        }
        reason = error.message || "cannot connect";
        delay = await this.pause(reason, delay, first);
        continue;
      }
      first = false;
      creds = { nick: this.me };
      delay = RECONNECT_INITIAL_MS;
      this.setState("connected", `connected as ${this.me}`);
      reason = await client.closed;
      this.client = null;
      for (const conv of this.convs.values()) {
        conv.failAllPending("the connection was lost before the server confirmed it");
      }
      if (this.quitting) break;
      if (client.byeCode === "logged_in_elsewhere") {
        this.setState("disconnected", `disconnected: ${reason}`, { retry: true });
        await new Promise((resolve) => (this.wake = resolve));
        continue;
      }
      delay = await this.pause(reason, delay, false);
    }
  }

  /** Wait `delay` ms (or until "reconnect now"); returns the next delay. */
  async pause(reason, delay, first) {
    const what = first ? "cannot connect" : "disconnected";
    this.setState("disconnected", `${what}: ${reason}; reconnecting in ${delay / 1000} s`, {
      retry: true,
    });
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, delay);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = null;
    return Math.min(delay * 2, RECONNECT_MAX_MS);
  }

  /** Try again now instead of waiting out the backoff. */
  reconnectNow() {
    this.wake?.();
  }

  async logOn(client, creds, { first, room }) {
    const since = this.lastId;
    const rooms = first ? saved.rooms() : this.roomOrder();
    const token = first ? creds.token : saved.token();
    const hello = { type: "hello", nick: creds.nick || null, autojoin: first && !rooms.length };
    if (creds.password && !creds.register) hello.password = creds.password;
    else if (token && creds.nick && !creds.register) hello.token = token;
    const welcome = await client.request(hello);
    this.me = welcome.nick;
    saved.setNick(this.me);
    this.view.header();
    if (creds.register) {
      await client.request({ type: "register", password: creds.password });
    }
    delete creds.password;
    this.catchingUpSince = first ? null : since;
    for (const name of rooms) {
      try {
        await this.join(name, { client, focus: false });
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        this.note(`cannot rejoin ${name}: ${error.message}`, "error");
      }
    }
    if (room) await this.join(room, { client, focus: true });
    if (!first && since > 0) await this.catchUp(client, since);
    this.catchingUpSince = null;
    if (!first) this.note(`reconnected as ${this.me}`);
    this.refreshAway();
  }

  /** Rooms we are in, the current one last (so it is the server's current room too). */
  roomOrder() {
    const rooms = [...this.convs.values()].filter((c) => c.isRoom && c.joined);
    const others = rooms.filter((c) => c !== this.current).map((c) => c.name);
    return this.current?.isRoom && this.current.joined ? [...others, this.current.name] : others;
  }

  /** Fetch exactly what was said after message `since` in our rooms (and to us, for an
   * account): what we saw is not shown again (ids), nothing in between is skipped. */
  async catchUp(client, since) {
    const targets = this.roomOrder();
    if (this.account) targets.push(this.me);
    let missed = 0;
    for (const target of targets) {
      let after = since;
      for (let page = 0; page < CATCH_UP_MAX_PAGES; page++) {
        const reply = await client.request({
          type: "history",
          to: target,
          after,
          limit: CATCH_UP_PAGE,
        });
        for (const msg of reply.messages) if (this.receive(msg)) missed++;
        if (reply.messages.length < CATCH_UP_PAGE) break;
        after = reply.messages.at(-1).id;
      }
    }
    if (missed) this.note(`${missed} new while you were away`);
  }

  setState(state, text, { retry = false } = {}) {
    this.state = state;
    this.view.status(state, text, retry);
  }

  stop() {
    this.quitting = true;
    clearInterval(this.awayTimer);
    this.wake?.();
  }

  /** The live client, or an error for people when there is none. */
  live() {
    if (!this.client || !this.client.open) {
      throw new ConnectionLost("not connected to the server (reconnecting)");
    }
    return this.client;
  }

  // ------------------------------------------------------------------ conversations

  conv(name, { create = true } = {}) {
    const key = casefold(name);
    let conv = this.convs.get(key);
    if (!conv && create) {
      conv = new Conversation(name);
      this.convs.set(key, conv);
      this.view.conversationAdded(conv);
    }
    return conv;
  }

  /** The conversation a message belongs to: its room, or the other party's nick. */
  convFor(msg) {
    if (isRoom(msg.to)) return this.conv(msg.to);
    return this.conv(casefold(msg.from) === casefold(this.me) ? msg.to : msg.from);
  }

  show(conv) {
    if (!conv) return;
    this.current = conv;
    conv.unread = 0;
    conv.mentions = 0;
    if (conv.isRoom) history.replaceState(null, "", conv.name);
    this.view.showConversation(conv);
    this.updateTitle();
    if (!conv.isRoom) this.checkAway([conv.name]);
  }

  /** The person can see the current conversation again (tab shown): it is read. */
  seen() {
    if (this.current && !document.hidden) {
      this.current.unread = 0;
      this.current.mentions = 0;
      this.view.sidebar();
      this.updateTitle();
    }
  }

  updateTitle() {
    let unread = 0;
    for (const conv of this.convs.values()) unread += conv.unread;
    setTitle(unread, this.current?.name);
  }

  /** Close a conversation's listing (after leaving the room, or a private chat). */
  drop(conv) {
    this.convs.delete(conv.key);
    this.view.conversationRemoved(conv);
    if (this.current === conv) {
      const next = [...this.convs.values()].at(-1) ?? null;
      this.current = null;
      if (next) this.show(next);
      else this.view.showConversation(null);
    }
  }

  /** A line in the current conversation (or the first one): results, errors, notices. */
  note(text, kind = "info") {
    const conv = this.current ?? [...this.convs.values()][0];
    if (conv) {
      conv.addLine(text, kind);
      this.view.stick(conv);
    } else {
      this.view.problem(text);
    }
  }

  /** Add a message from the server; true if it was new. */
  receive(msg) {
    const conv = this.convFor(msg);
    const mine = casefold(msg.from) === casefold(this.me);
    const mention = !mine && conv.isRoom && mentions(msg.text, this.me);
    const atBottom = this.view.atBottom(conv);
    if (!conv.addMessage(msg, { me: this.me, mention, openChat: (nick) => this.openChat(nick) })) {
      return false;
    }
    this.lastId = Math.max(this.lastId, msg.id);
    const fresh =
      !msg.history || (this.catchingUpSince !== null && msg.id > this.catchingUpSince);
    if (fresh && !mine) {
      const viewing = conv === this.current && !document.hidden;
      if (!viewing) {
        if (conv.unread === 0) conv.markNewFrom(msg.id);
        conv.unread++;
        if (mention || !conv.isRoom) conv.mentions++;
      }
      if (mention || !conv.isRoom) {
        const where = conv.isRoom ? ` in ${conv.name}` : " (private)";
        notify(`${msg.from}${where}`, msg.text, () => this.show(conv));
      }
    }
    if (atBottom) this.view.stick(conv);
    this.view.sidebar();
    this.updateTitle();
    return true;
  }

  // ------------------------------------------------------------------ events

  onEvent(event) {
    switch (event.type) {
      case "message":
        this.receive(event);
        break;
      case "joined":
        this.onJoined(event);
        break;
      case "parted":
        this.onParted(event);
        break;
      case "quit":
        this.forEachRoomOf(event.nick, (conv) => {
          conv.members.delete(casefold(event.nick));
          conv.addLine(`${event.nick} quit${why(event.reason)}`);
        });
        this.conv(event.nick, { create: false })?.addLine(`${event.nick} quit${why(event.reason)}`);
        this.view.members();
        break;
      case "nick":
        this.onNick(event);
        break;
      case "members":
        this.onMembers(event);
        break;
      case "topic":
        this.onTopic(event);
        break;
      case "away":
        this.awayText = event.text;
        this.note(event.text ? `you are marked away: ${event.text}` : "you are back");
        this.view.header();
        break;
      case "user_away": // someone sharing a room went away or came back
        this.forEachRoomOf(event.nick, (conv) => {
          conv.addLine(event.text ? `${event.nick} is away: ${event.text}` : `${event.nick} is back`);
        });
        break;
      case "logged_in":
        this.account = event.nick;
        saved.setToken(event.token);
        this.note(`logged in as ${event.nick}; this tab stays logged in`);
        this.view.header();
        break;
      case "error":
        this.note(event.text || event.code, "error");
        break;
      case "bye":
        this.note(`the server closed the connection: ${event.reason || event.code}`, "error");
        break;
      default:
        break; // welcome, ack and the rest arrive as replies to requests
    }
  }

  onJoined({ room, nick }) {
    const conv = this.conv(room);
    if (conv.name !== room) conv.rename(room);
    if (casefold(nick) === casefold(this.me)) {
      conv.joined = true;
      if (!this.current) this.show(conv);
      saved.setRooms(this.roomOrder());
    } else {
      conv.members.set(casefold(nick), { nick, away: "" });
      conv.addLine(`${nick} joined ${room}`);
      this.view.stick(conv);
      this.view.members();
    }
    this.view.sidebar();
  }

  onParted({ room, nick, reason }) {
    const conv = this.conv(room, { create: false });
    if (!conv) return;
    if (casefold(nick) === casefold(this.me)) {
      conv.joined = false;
      this.drop(conv);
      saved.setRooms(this.roomOrder());
      this.note(`you left ${room}`);
    } else {
      conv.members.delete(casefold(nick));
      conv.addLine(`${nick} left ${room}${why(reason)}`);
      this.view.stick(conv);
      this.view.members();
    }
  }

  onNick({ old, new: fresh }) {
    const mine = casefold(old) === casefold(this.me);
    if (mine) {
      this.me = fresh;
      saved.setNick(fresh);
      this.view.header();
    }
    const text = mine ? `you are now known as ${fresh}` : `${old} is now known as ${fresh}`;
    this.forEachRoomOf(old, (conv) => {
      const entry = conv.members.get(casefold(old));
      conv.members.delete(casefold(old));
      conv.members.set(casefold(fresh), { nick: fresh, away: entry?.away ?? "" });
      conv.addLine(text);
    });
    const chat = this.conv(old, { create: false });
    if (chat && !chat.isRoom) {
      this.convs.delete(chat.key);
      chat.rename(fresh);
      this.convs.set(chat.key, chat);
      chat.addLine(text);
    }
    if (mine && !this.forEachRoomOf(fresh, () => {})) this.note(text);
    this.view.sidebar();
    this.view.members();
    this.view.header();
  }

  onMembers({ room, nicks }) {
    const conv = this.conv(room);
    const before = conv.members;
    conv.members = new Map(
      nicks.map((nick) => [casefold(nick), { nick, away: before.get(casefold(nick))?.away ?? "" }]),
    );
    this.view.members();
    if (nicks.length <= AWAY_CHECK_MAX_MEMBERS) this.checkAway(nicks);
  }

  onTopic({ room, text, setter, ref }) {
    const conv = this.conv(room, { create: false });
    if (!conv) return;
    const changed = conv.topic !== text;
    conv.topic = text;
    if (ref === undefined && changed) {
      conv.addLine(text ? `${setter} set the topic: ${text}` : `${setter} cleared the topic`);
      this.view.stick(conv);
    }
    this.view.header();
  }

  /** Call `fn(conv)` for each room `nick` is in; returns how many. */
  forEachRoomOf(nick, fn) {
    let count = 0;
    for (const conv of this.convs.values()) {
      if (conv.isRoom && conv.members.has(casefold(nick))) {
        fn(conv);
        count++;
      }
    }
    return count;
  }

  /** Ask who of `nicks` is away (the protocol tells us through whois only). */
  async checkAway(nicks) {
    const client = this.client;
    if (!client?.open) return;
    for (const nick of nicks) {
      if (casefold(nick) === casefold(this.me)) continue;
      let user;
      try {
        user = await client.request({ type: "whois", nick });
      } catch {
        continue; // gone meanwhile, or the connection dropped: nothing to show
      }
      for (const conv of this.convs.values()) {
        const entry = conv.members.get(casefold(user.nick));
        if (entry) entry.away = user.away;
        if (!conv.isRoom && conv.key === casefold(user.nick)) conv.away = user.away;
      }
    }
    this.view.members();
    this.view.header();
  }

  refreshAway() {
    const conv = this.current;
    if (!conv) return;
    const nicks = conv.isRoom ? [...conv.members.values()].map((e) => e.nick) : [conv.name];
    if (nicks.length <= AWAY_CHECK_MAX_MEMBERS) this.checkAway(nicks);
  }

  // ------------------------------------------------------------------ what people do

  /** One line typed in the composer: text for the current conversation, or a /command. */
  async execute(line) {
    const { command, rest, say } = parseLine(line);
    if (say !== undefined) {
      if (!say.trim()) return;
      return this.say(null, say, "plain");
    }
    return runCommand(this, command, rest);
  }

  /** Say `text` to `target` (null: the current conversation), in pieces the server takes. */
  say(target, text, kind) {
    const conv = target ? this.conv(target) : this.current;
    if (!conv) throw new Error("you are not in a conversation; /join #room first");
    if (conv.isRoom && !conv.joined) throw new Error(`you are not in ${conv.name}; /join it first`);
    const client = this.live();
    if (target) this.show(conv);
    for (const chunk of splitText(text)) {
      const { ref, reply } = client.begin({ type: "say", to: conv.name, text: chunk, kind });
      conv.addPending(ref, { me: this.me, text: chunk, kind });
      reply.then(
        (ack) => {
          this.lastId = Math.max(this.lastId, ack.id);
          conv.confirm(ref, ack);
        },
        (error) =>
          conv.fail(ref, error.message, {
            lost: error instanceof ConnectionLost,
            retry: () => {
              try {
                this.say(conv.name, chunk, kind);
              } catch (problem) {
                this.note(problem.message, "error");
              }
            },
          }),
      );
    }
    this.view.stick(conv, { force: true });
  }

  async join(room, { client = null, focus = true } = {}) {
    const members = await (client ?? this.live()).request({ type: "join", room: roomName(room) });
    const conv = this.conv(members.room);
    conv.joined = true;
    saved.setRooms(this.roomOrder());
    if (focus || !this.current) this.show(conv);
    else this.view.sidebar();
  }

  async part(room, reason = "") {
    const conv = room ? this.conv(room, { create: false }) : this.current;
    if (!conv) throw new Error(`you are not in ${room}`);
    if (!conv.isRoom) {
      this.drop(conv);
      return;
    }
    await this.live().request({ type: "part", room: conv.name, reason });
  }

  /** Open (or show) the private chat with `nick`. */
  openChat(nick) {
    if (casefold(nick) === casefold(this.me)) return;
    const conv = this.conv(nick);
    this.show(conv);
    this.view.focusComposer();
  }

  /** One page of older messages into a conversation (`/history`, or scrolling to the top). */
  async olderHistory(target = null, before = null) {
    const conv = target ? this.conv(target) : this.current;
    if (!conv) throw new Error("usage: /history #ROOM|NICK [ID]");
    if (conv !== this.current) this.show(conv);
    await this.loadOlder(conv, before);
  }

  async loadOlder(conv, before = null) {
    if (conv.loadingOlder) return;
    conv.loadingOlder = true;
    this.view.olderState(conv, "loading");
    try {
      const from = before ?? (Number.isFinite(conv.minId) ? conv.minId : null);
      const request = { type: "history", to: conv.name, limit: PAGE };
      if (from !== null) request.before = from;
      const reply = await this.live().request(request);
      const keep = this.view.keepScroll(conv);
      for (const msg of reply.messages) this.receive(msg);
      keep();
      if (reply.messages.length < PAGE) conv.hasOlder = false;
    } catch (error) {
      if (error instanceof Refused) {
        conv.hasOlder = false;
        conv.olderProblem = error.message;
      } else {
        throw error;
      }
    } finally {
      conv.loadingOlder = false;
      this.view.olderState(conv);
    }
  }

  /** Leave: say goodbye, forget the saved login, back to the first screen. */
  quit(reason = "") {
    this.stop();
    this.client?.quit(reason);
    saved.forget();
    this.onLoggedOut("");
  }
}

function why(reason) {
  return reason ? ` (${safe(reason)})` : "";
}
