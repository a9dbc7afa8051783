"""Model events as IRC lines (RFC 2812 replies and numerics): pure, it only reads the state.

Every state change an event implies was made by :meth:`.state.IrcState.observe` before this
runs, which hands over a :class:`.state.Context` (the request the event answers). Every function
returns lines without CRLF; the codec joins and encodes them once.
"""

from __future__ import annotations

from typing import Final

from ... import model as m
from .history import MAX_LIMIT, batch_lines, targets_lines
from .parse import MAX_TARGETS
from .presence import render_presence
from .refusals import refusal
from .state import Context, Pending
from .wire import Wire, clean

__all__ = ["message_lines", "render"]

#: RFC 2812 §2.3: a line, CRLF included, is at most 512 bytes (tags aside).
_LINE_BYTES: Final = 510


def _fit(tags: str, head: str, text: str, action: bool) -> list[str]:
    """``head + text`` as one line, or several when it would pass 512 bytes (split, not cut)."""
    start = "@" + tags + " " if tags else ""
    body = f"\x01ACTION {text}\x01" if action else text
    line = head + body
    if len(line) * 4 <= _LINE_BYTES or len(line.encode()) <= _LINE_BYTES:
        return [start + line]
    room = _LINE_BYTES - len(head.encode()) - (9 if action else 0)
    data = text.encode()
    lines = []
    while data:
        cut = min(room, len(data))
        while cut < len(data) and cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1  # never split a UTF-8 sequence
        cut = max(cut, 1)
        chunk = data[:cut].decode(errors="replace")
        data = data[cut:]
        lines.append(start + head + (f"\x01ACTION {chunk}\x01" if action else chunk))
    return lines


def _more_tags(w: Wire, tags: str, account: str, client_tags: str) -> str:
    """``tags`` and the sender's: its account (``account-tag``; a nick, so it needs no
    escaping) and its client-only tags (``message-tags``; escaped when they came in)."""
    caps = w.state.caps
    extra = [f"account={account}"] if account and "account-tag" in caps else []
    if client_tags and "message-tags" in caps:
        extra.append(client_tags)
    return ";".join([tags, *extra] if tags else extra)


def _say_lines(
    w: Wire,
    when: float,
    sender: str,
    target: str,
    text: str,
    kind: m.Kind,
    *,
    user: str = "",
    msgid: int = 0,
    account: str = "",
    client_tags: str = "",
) -> list[str]:
    verb = "NOTICE" if kind is m.Kind.NOTICE else "PRIVMSG"
    head = f":{w.mask_of(sender, user)} {verb} {target} :"
    tags = w.time_tag(when)
    if msgid and "message-tags" in w.state.caps:
        tags = f"{tags};msgid={msgid}" if tags else f"msgid={msgid}"
    tags = _more_tags(w, tags, account, client_tags)
    return _fit(tags, head, clean(text), kind is m.Kind.ACTION)


#: ISUPPORT ``CHANMODES``: list modes, modes with an argument always, when set, and flags.
CHANMODES: Final = f"{m.LIST_MODES},k,l,{m.FLAG_MODES}"


def _welcome(w: Wire, event: m.Welcome) -> list[str]:
    isupport = (
        f"AWAYLEN={m.MAX_TOPIC_LENGTH} CASEMAPPING=ascii CHANMODES={CHANMODES} "
        f"CHATHISTORY={MAX_LIMIT} MSGREFTYPES=msgid,timestamp MONITOR={m.MAX_WATCHED} WHOX "
        f"CHANNELLEN={m.MAX_ROOM_LENGTH} CHANTYPES=# KICKLEN={m.MAX_TOPIC_LENGTH} "
        f"MAXLIST=b:{m.MAX_BANS} MAXTARGETS={MAX_TARGETS} MODES=4 NETWORK={w.network} "
        f"NICKLEN={m.MAX_NICK_LENGTH} PREFIX=(ov)@+ TOPICLEN={m.MAX_TOPIC_LENGTH} "
        f"USERLEN={m.USERLEN}"
    )
    lines = [
        w.num("001", f":Welcome to the {w.network} IRC Network {w.mask}"),
        w.num("002", f":Your host is {w.server}, running version anychat-{w.version}"),
        w.num("003", ":This server was created when it started"),
        w.num("004", w.server, f"anychat-{w.version}", "iw", "".join(sorted(m.ROOM_MODES))),
    ]
    tokens = isupport.split()
    for i in range(0, len(tokens), 12):  # modern/ISUPPORT: at most 13 tokens per line
        lines.append(w.num("005", *tokens[i : i + 12], ":are supported by this server"))
    if event.stats is not None:
        lines += _lusers(w, event.stats)
    lines.append(w.num("422", ":MOTD File is missing"))
    return lines


def _lusers(w: Wire, stats: m.ServerStats) -> list[str]:
    """RFC 2812 §5.1 251-255 and the 265/266 counts modern servers add (one server, no opers)."""
    users, most = str(stats.users), str(stats.max_users)
    return [
        w.num("251", f":There are {users} users and 0 invisible on 1 servers"),
        w.num("252", "0", ":operator(s) online"),
        w.num("253", str(stats.unregistered), ":unknown connection(s)"),
        w.num("254", str(stats.rooms), ":channels formed"),
        w.num("255", f":I have {users} clients and 0 servers"),
        w.num("265", users, most, f":Current local users {users}, max {most}"),
        w.num("266", users, most, f":Current global users {users}, max {most}"),
    ]


def message_lines(w: Wire, msg: m.Message) -> list[str]:
    """The lines of one message (a live one; :func:`render` puts replays in batches)."""
    return _say_lines(
        w,
        msg.time,
        msg.sender,
        msg.target,
        msg.text,
        msg.kind,
        user=msg.user,
        msgid=msg.id,
        account=msg.account,
        client_tags=msg.tags,
    )


def _mode_line(w: Wire, event: m.ModeChanged) -> str:
    """``:op!~u@h MODE #chan +o-v bob cy``: letters grouped by sign, arguments in order."""
    letters, args, sign = "", [], ""
    for change in event.changes:
        wanted = "+" if change.on else "-"
        if wanted != sign:
            letters += wanted
            sign = wanted
        letters += change.mode
        if change.arg:
            args.append(change.arg)
    return " ".join((f":{w.mask_of(event.by, event.user)} MODE {event.room}", letters, *args))


def _prefix(w: Wire, status: str) -> str:
    """``@``/``+`` before a nick: the highest only, or all of them with ``multi-prefix``."""
    symbols = "".join(m.STATUS_PREFIXES[s] for s in status)
    return symbols if "multi-prefix" in w.state.caps else symbols[:1]


def _names(w: Wire, event: m.Members) -> list[str]:
    room = event.room
    head = w.num("353", "=", room, ":")
    lines: list[str] = []
    batch: list[str] = []
    size = len(head.encode())
    hosts = "userhost-in-names" in w.state.caps
    names: list[str] = []
    if event.details:
        for d in event.details:
            shown = w.mask_of(d.nick, d.user) if hosts else d.nick
            names.append(_prefix(w, d.status) + shown)
    else:
        names = list(event.nicks)
    for nick in names:
        if batch and size + len(nick) + 1 > _LINE_BYTES:
            lines.append(head + " ".join(batch))
            batch, size = [], len(head.encode())
        batch.append(nick)
        size += len(nick) + 1
    if batch:
        lines.append(head + " ".join(batch))
    lines.append(w.num("366", room, ":End of /NAMES list"))
    return lines


def _who_line(w: Wire, where: str, member: m.Member) -> str:
    """RFC 2812 352: ``<channel> <user> <host> <server> <nick> <H|G>[@|+] :0 <realname>``."""
    flags = ("G" if member.away else "H") + _prefix(w, member.status)
    user = "~" + m.clean_username(member.user, member.nick)
    nick = member.nick
    return w.num(
        "352", where, user, w.server, w.server, nick, flags, f":0 {member.realname or nick}"
    )


#: WHOX fields in the order the 354 reply gives them (the order asked does not matter).
_WHOX_ORDER: Final = "tcuihsnfdlaor"


def _whox_line(w: Wire, where: str, member: m.Member, spec: str) -> str:
    """354 RPL_WHOSPCRPL: the fields asked for, in WHOX order; the realname is trailing."""
    fields, _, token = spec.partition(",")
    values = {
        "t": token[:3] if token.isdigit() else "0",
        "c": where,
        "u": "~" + m.clean_username(member.user, member.nick),
        "i": "255.255.255.255",  # addresses are never shown
        "h": w.server,
        "s": w.server,
        "n": member.nick,
        "f": ("G" if member.away else "H") + _prefix(w, member.status),
        "d": "0",
        "l": "0",
        "a": member.account or "0",
        "o": "n/a",
    }
    words = [values[f] for f in _WHOX_ORDER if f in fields and f in values]
    if "r" in fields:
        words.append(":" + (member.realname or member.nick))
    return w.num("354", *words) if words else w.num("354", ":")


def _members(w: Wire, event: m.Members, pending: Pending | None) -> list[str]:
    if pending is not None and pending.verb == "who":
        details = event.details or tuple(m.Member(nick=n) for n in event.nicks)
        if pending.extra:
            lines = [_whox_line(w, event.room, d, pending.extra) for d in details]
        else:
            lines = [_who_line(w, event.room, d) for d in details]
        return [*lines, w.num("315", pending.target, ":End of /WHO list")]
    return _names(w, event)


def _user_info(w: Wire, event: m.UserInfo, ctx: Context) -> list[str]:
    pending = ctx.pending
    nick = event.nick
    if pending is not None and pending.verb == "ison":
        return _ison(w, ctx)
    user = "~" + m.clean_username(event.user, nick)
    if pending is not None and pending.verb == "userhost":
        return [w.num("302", f":{nick}={'-' if event.away else '+'}{user}@{w.server}")]
    if pending is not None and pending.verb == "who":
        member = m.Member(
            nick=nick,
            user=event.user,
            realname=event.realname,
            away=event.away,
            account=event.account,
        )
        line = _whox_line(w, "*", member, pending.extra) if pending.extra else None
        return [
            line or _who_line(w, "*", member),
            w.num("315", pending.target, ":End of /WHO list"),
        ]
    lines = [w.num("311", nick, user, w.server, "*", f":{event.realname or nick}")]
    if event.rooms:
        statuses = event.statuses or ("",) * len(event.rooms)
        rooms = [_prefix(w, s) + r for s, r in zip(statuses, event.rooms, strict=False)]
        lines.append(w.num("319", nick, ":" + " ".join(rooms)))
    lines.append(w.num("312", nick, w.server, ":anychat"))
    if event.away:
        lines.append(w.num("301", nick, ":" + event.away))
    if event.account:
        lines.append(w.num("330", nick, event.account, ":is logged in as"))
    idle = str(int(event.idle))
    lines.append(w.num("317", nick, idle, str(int(event.since)), ":seconds idle, signon time"))
    lines.append(w.num("318", nick, ":End of /WHOIS list"))
    return lines


def _ison(w: Wire, ctx: Context) -> list[str]:
    """One 303 line for all the nicks asked, once the last answer is in."""
    if ctx.ison is None:
        return []
    return [w.num("303", ":" + " ".join(ctx.ison))]


def _room_list(w: Wire, event: m.RoomList, pending: Pending | None) -> list[str]:
    wanted = pending.rooms if pending is not None else frozenset()
    lines = [w.num("321", "Channel", ":Users  Name")]
    for info in event.rooms:
        if not wanted or m.casefold(info.name) in wanted:
            lines.append(w.num("322", info.name, str(info.members), ":" + info.topic))
    lines.append(w.num("323", ":End of /LIST"))
    return lines


def _topic(w: Wire, event: m.RoomTopic, pending: Pending | None) -> list[str]:
    if pending is not None and pending.verb in ("topic?", "join"):
        if not event.text:
            return [w.num("331", event.room, ":No topic is set")]
        return [
            w.num("332", event.room, ":" + event.text),
            w.num("333", event.room, event.setter or w.server, str(int(event.time))),
        ]
    return [f":{w.mask_of(event.setter)} TOPIC {event.room} :{clean(event.text)}"]


def _logged_in(w: Wire, event: m.LoggedIn, pending: Pending | None) -> list[str]:
    """900 RPL_LOGGEDIN, and 903 when it answers SASL (a PASS login is answered by 001)."""
    lines = [
        w.num(
            "900",
            w.mask_of(w.state.nick or "*"),
            event.nick,
            f":You are now logged in as {event.nick}",
        )
    ]
    if pending is not None and pending.verb == "sasl":
        lines.append(w.num("903", ":SASL authentication successful"))
    return lines


def render(w: Wire, event: m.Event, ctx: Context) -> list[str]:
    """The lines for ``event``; ``ctx`` is what the state learnt from it (see module docs)."""
    pending = ctx.pending
    match event:
        case m.Message():
            if not event.history:
                return message_lines(w, event)
            # Replays must not pass for live chat (docs/irc.md "History"): in a chathistory
            # batch with their original time, or (if the operator asked) plain, or not at all.
            caps = w.state.caps
            if "batch" in caps and "server-time" in caps:
                lines = message_lines(w, event)
                return batch_lines(w, f"r{event.id}", event.target, lines)
            return message_lines(w, event) if w.replay else []
        case m.HistoryPage(target=target):
            if ctx.page is None:
                return []
            lines = [line for msg in ctx.page for line in message_lines(w, msg)]
            return batch_lines(w, f"h{event.ref}", target, lines)
        case m.ConversationList(conversations=found):
            return targets_lines(w, f"t{event.ref}", found) if pending is not None else []
        case m.Ack():
            if pending is None or "echo-message" not in w.state.caps:
                return []
            nick = w.state.nick
            return _say_lines(
                w,
                event.time,
                nick,
                event.target,
                pending.text,
                pending.kind,
                user=w.state.user or "",
                msgid=event.id,
                account=m.casefold(w.state.account or ""),  # as the broker shows accounts
                client_tags=pending.extra,
            )
        case m.Tagged(sender=sender, target=target):
            caps = w.state.caps
            if "message-tags" not in caps or (event.ref is not None and "echo-message" not in caps):
                return []
            tags = _more_tags(w, w.time_tag(event.time), event.account, event.tags)
            return [f"@{tags} :{w.mask_of(sender, event.user)} TAGMSG {target}"]
        case m.Joined(room=room, nick=nick):
            mask = w.mask_of(nick, event.user)
            line = f":{mask} JOIN {room}"
            if "extended-join" in w.state.caps:
                # IRCv3 extended-join: the account ("*" for none) and the real name.
                line = f"{line} {event.account or '*'} :{clean(event.realname or nick)}"
            if event.away and event.ref is None and "away-notify" in w.state.caps:
                # away-notify: a member who joins while away is announced as away.
                return [line, f":{mask} AWAY :{clean(event.away)}"]
            return [line]
        case m.Parted(room=room, nick=nick, reason=reason):
            line = f":{w.mask_of(nick, event.user)} PART {room}"
            return [f"{line} :{clean(reason)}" if reason else line]
        case m.Quitted(nick=nick, reason=reason):
            return [f":{w.mask_of(nick, event.user)} QUIT :{clean(reason)}"]
        case m.NickChanged(old=old, new=new):
            return [f":{w.mask_of(old, event.user)} NICK :{new}"]
        case m.ServerStats():
            return _lusers(w, event)
        case m.RoomModes(room=room):
            return [
                w.num("324", room, event.modes, *event.args)
                if event.args
                else w.num("324", room, event.modes),
                w.num("329", room, str(int(event.created))),
            ]
        case m.ModeChanged(changes=changes):
            return [_mode_line(w, event)] if changes else []
        case m.BanList(room=room, bans=bans):
            lines = [
                w.num("367", room, b.mask, b.setter or w.server, str(int(b.time))) for b in bans
            ]
            return [*lines, w.num("368", room, ":End of channel ban list")]
        case m.Kicked(room=room, nick=nick, by=by):
            return [f":{w.mask_of(by, event.user)} KICK {room} {nick} :{clean(event.reason)}"]
        case m.Invited(room=room, nick=nick, by=by):
            if pending is not None:
                return [w.num("341", nick, room)]
            if event.notice and "invite-notify" not in w.state.caps:
                return []  # invite-notify: members hear of invites only if they asked
            return [f":{w.mask_of(by, event.user)} INVITE {nick} {room}"]
        case m.Members():
            return _members(w, event, pending)
        case m.Welcome():
            return _welcome(w, event)
        case m.LoggedIn():
            return _logged_in(w, event, pending)
        case m.Error():
            return refusal(w, event, ctx)
        case m.RoomTopic():
            return _topic(w, event, pending)
        case m.RoomList():
            return _room_list(w, event, pending)
        case m.UserInfo():
            return _user_info(w, event, ctx)
        case m.AwayStatus(text=text):
            if text:
                return [w.num("306", ":You have been marked as being away")]
            return [w.num("305", ":You are no longer marked as being away")]
        case m.Pong(token=token):
            if pending is not None and pending.verb == "fence":
                return []  # the end of a labeled command's answers (labels.py)
            return [f":{w.server} PONG {w.server} :{clean(token)}"]
        case m.Bye(reason=reason):
            return [f"ERROR :Closing Link: {w.me} ({clean(reason)})"]
    return render_presence(w, event, pending) or []
