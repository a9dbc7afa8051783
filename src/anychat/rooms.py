"""Room operators and modes: who may speak, join, set the topic, and change the rules (pure).

The broker keeps one :class:`Channel` per room and asks it before letting a session join, speak
or set the topic, and to apply mode changes. The rules are IRC's (RFC 2811 §4, as ngircd and
ergo apply them), but they hold for every protocol alike, since all clients share one room:

- whoever creates a room is its operator; operator status is lost on leaving and nobody regains
  it automatically (no services), as on plain IRC servers;
- ``+t`` topic by operators only, ``+n`` no messages from non-members, ``+m`` only operators
  and voiced members speak, ``+s`` hidden from non-members' lists, ``+i`` invite only, ``+k``
  key, ``+l`` member limit, ``+b`` bans (a banned member may stay but not speak; an invite lets
  a banned nick in once);
- new rooms are ``+nt``.

Hostmasks are ``nick!~user@server`` (hosts are cloaked), so bans match nicks and usernames.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Generic, TypeVar

from . import model as m

__all__ = ["DEFAULT_MODES", "Channel", "hostmask", "normalize_mask"]

P = TypeVar("P")

DEFAULT_MODES: Final = frozenset("nt")
_MAX_KEY: Final = 23
_MASK_CHARS: Final = re.compile(r"[\x00-\x20,]")


def hostmask(nick: str, user: str, server: str) -> str:
    """What bans match: ``nick!~user@server`` (``~``: no ident check was made)."""
    return f"{nick}!~{user or nick}@{server}"


def normalize_mask(mask: str) -> str:
    """``bob`` -> ``bob!*@*``, ``*@host`` -> ``*!*@host``, ``bob!u`` -> ``bob!u@*`` (RFC 2812)."""
    if "!" not in mask and "@" not in mask:
        return f"{mask}!*@*"
    if "!" not in mask:
        return f"*!{mask}"
    if "@" not in mask:
        return f"{mask}@*"
    return mask


@lru_cache(maxsize=256)
def _mask_re(mask: str) -> re.Pattern[str]:
    pattern = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in m.casefold(mask)
    )
    return re.compile(pattern, re.DOTALL)


def _matches(mask: str, host: str) -> bool:
    return _mask_re(mask).fullmatch(m.casefold(host)) is not None


@dataclass(eq=False, slots=True)
class Channel(Generic[P]):
    """The operator-controlled state of one room."""

    created: float = 0.0
    modes: set[str] = field(default_factory=lambda: set(DEFAULT_MODES))
    key: str = ""
    limit: int = 0
    bans: list[m.Ban] = field(default_factory=list)
    #: Folded nicks invited since the last join (an invite is used up by joining).
    invited: set[str] = field(default_factory=set)
    ops: set[P] = field(default_factory=set)
    voiced: set[P] = field(default_factory=set)
    #: Folded nicks of members on other nodes of a cluster who hold ``o`` or ``v`` (what the
    #: room's snapshot in Redis and the other nodes' mode changes say; empty on one node).
    remote_ops: set[str] = field(default_factory=set)
    remote_voiced: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ questions

    def status(self, peer: P) -> str:
        """Status letters of ``peer``, highest first (``"ov"``, ``"o"``, ``"v"``, ``""``)."""
        return ("o" if peer in self.ops else "") + ("v" if peer in self.voiced else "")

    def is_op(self, peer: P) -> bool:
        return peer in self.ops

    def remote_status(self, nick: str) -> str:
        """Status letters of a member of another node (``nick`` folded)."""
        return ("o" if nick in self.remote_ops else "") + (
            "v" if nick in self.remote_voiced else ""
        )

    @property
    def secret(self) -> bool:
        return "s" in self.modes

    def banned(self, host: str) -> bool:
        if not self.bans:  # nearly every room, and asked for every message
            return False
        return any(_matches(ban.mask, host) for ban in self.bans)

    def join_problem(
        self, nick: str, host: str, key: str, members: int
    ) -> tuple[m.ErrorCode, str] | None:
        """Why ``nick`` may not join (RFC 2812 §3.2.1 order: ban, invite, key, limit)."""
        invited = m.casefold(nick) in self.invited
        if not invited and self.banned(host):
            return m.ErrorCode.BANNED, "you are banned from this room (+b)"
        if "i" in self.modes and not invited:
            return m.ErrorCode.INVITE_ONLY, "this room is invite only (+i)"
        if self.key and key != self.key:
            return m.ErrorCode.BAD_KEY, "this room needs the right key (+k)"
        if self.limit and members >= self.limit:
            return m.ErrorCode.ROOM_FULL, f"this room is full ({self.limit} members, +l)"
        return None

    def send_problem(
        self, peer: P, member: bool, host: Callable[[], str]
    ) -> tuple[m.ErrorCode, str] | None:
        """Why ``peer`` may not speak in the room (``None``: it may). ``host`` gives its
        ``nick!user@host``, asked for only when the room has bans to check it against."""
        if not member and "n" in self.modes:
            return m.ErrorCode.NOT_MEMBER, "this room takes no messages from outside (+n)"
        if peer in self.ops or peer in self.voiced:
            return None
        if "m" in self.modes:
            return m.ErrorCode.CANNOT_SEND, "this room is moderated (+m): only voiced members speak"
        if self.bans and self.banned(host()):
            return m.ErrorCode.CANNOT_SEND, "you are banned from speaking in this room (+b)"
        return None

    def mode_string(self, member: bool) -> tuple[str, tuple[str, ...]]:
        """``("+klnt", ("key", "10"))``; the key is shown to members only, as servers do."""
        letters = sorted(
            self.modes | ({"k"} if self.key else set()) | ({"l"} if self.limit else set())
        )
        args: list[str] = []
        for letter in letters:
            if letter == "k":
                args.append(self.key if member else "*")
            elif letter == "l":
                args.append(str(self.limit))
        return "+" + "".join(letters), tuple(args)

    # ------------------------------------------------------------------ changes

    def forget(self, peer: P) -> None:
        self.ops.discard(peer)
        self.voiced.discard(peer)

    def forget_remote(self, nick: str) -> bool:
        """A member of another node (folded ``nick``) left: whether it held a status."""
        held = nick in self.remote_ops or nick in self.remote_voiced
        self.remote_ops.discard(nick)
        self.remote_voiced.discard(nick)
        return held

    def rename_remote(self, old: str, new: str) -> None:
        """A member of another node changed nick (both folded): its status goes with it."""
        for holders in (self.remote_ops, self.remote_voiced):
            if old in holders:
                holders.discard(old)
                holders.add(new)

    def set_flag(self, change: m.ModeChange) -> m.ModeChange | str | None:
        """Apply one flag or setting change: the change as applied, ``None`` when it changes
        nothing, or a problem text (a bad argument)."""
        mode, on, arg = change.mode, change.on, change.arg
        if mode in m.FLAG_MODES:
            if on == (mode in self.modes):
                return None
            (self.modes.add if on else self.modes.discard)(mode)
            return m.ModeChange(mode=mode, on=on)
        if mode == "k":
            if not on:
                if not self.key:
                    return None
                self.key = ""
                return m.ModeChange(mode="k", on=False, arg="*")
            if not arg or len(arg) > _MAX_KEY or _MASK_CHARS.search(arg) or ":" in arg:
                return f"a key is 1 to {_MAX_KEY} characters without spaces, commas or colons"
            self.key = arg
            return m.ModeChange(mode="k", on=True, arg=arg)
        if mode == "l":
            if not on:
                if not self.limit:
                    return None
                self.limit = 0
                return m.ModeChange(mode="l", on=False)
            if not (arg.isascii() and arg.isdigit()) or not 0 < int(arg) < 1_000_000:
                return "a member limit is a positive number"
            self.limit = int(arg)
            return m.ModeChange(mode="l", on=True, arg=str(self.limit))
        raise ValueError(mode)  # pragma: no cover - the broker sorts modes before calling

    def set_ban(self, change: m.ModeChange, setter: str, now: float) -> m.ModeChange | str | None:
        mask = normalize_mask(change.arg)
        if _MASK_CHARS.search(mask) or len(mask) > 200:
            return "a ban mask is nick!user@host without spaces or commas"
        folded = m.casefold(mask)
        index = next((i for i, b in enumerate(self.bans) if m.casefold(b.mask) == folded), None)
        if change.on:
            if index is not None:
                return None
            if len(self.bans) >= m.MAX_BANS:
                return f"the ban list is full ({m.MAX_BANS} masks)"
            self.bans.append(m.Ban(mask=mask, setter=setter, time=now))
        else:
            if index is None:
                return None
            mask = self.bans.pop(index).mask
        return m.ModeChange(mode="b", on=change.on, arg=mask)

    def apply(
        self,
        changes: Sequence[m.ModeChange],
        *,
        setter: str,
        now: float,
        find: Callable[[str], tuple[P | None, str] | None],
        members: Collection[P],
        remote_members: Collection[str] = (),
    ) -> tuple[list[m.ModeChange], list[m.Error | None]]:
        """Apply an operator's changes in order: what changed, and the answers for the setter
        (an error per change refused; ``None`` where the ban list was asked for).

        ``find`` gives a nick's session here and its nick as shown, or ``None`` for a user of
        another node (a cluster's), whose folded nick must be in ``remote_members`` to be in
        the room."""
        applied: list[m.ModeChange] = []
        answers: list[m.Error | None] = []
        for change in changes:
            mode = change.mode
            result: m.ModeChange | m.Error | str | None
            if mode in m.STATUS_MODES:
                result = self._set_status(change, find, members, remote_members)
            elif mode in m.LIST_MODES:
                if not change.arg:
                    answers.append(None)
                    continue
                result = self.set_ban(change, setter, now)
            elif mode in m.FLAG_MODES or mode in m.SETTING_MODES:
                result = self.set_flag(change)
            else:
                code, text = m.ErrorCode.UNKNOWN_MODE, f"unknown mode {mode!r}"
                result = m.Error(code=code, text=text, subject=mode)
            if isinstance(result, str):
                result = m.Error(code=m.ErrorCode.BAD_COMMAND, text=result, subject=mode)
            if isinstance(result, m.Error):
                answers.append(result)
            elif result is not None:
                applied.append(result)
        return applied, answers

    def _set_status(
        self,
        change: m.ModeChange,
        find: Callable[[str], tuple[P | None, str] | None],
        members: Collection[P],
        remote_members: Collection[str],
    ) -> m.ModeChange | m.Error | None:
        """``+o``/``-o``/``+v``/``-v nick``: the change, an error naming the nick, or nothing."""
        found = find(change.arg)
        if found is None:
            # Echo only what is a nick: the argument may be anything a client sent.
            named = change.arg if m.valid_nick(change.arg) else "*"
            text = f"no such nick {named}"
            return m.Error(code=m.ErrorCode.NO_SUCH_NICK, text=text, subject=named)
        peer, nick = found
        if (peer is None and m.casefold(nick) not in remote_members) or (
            peer is not None and peer not in members
        ):
            text = f"{nick} is not in the room"
            return m.Error(code=m.ErrorCode.TARGET_NOT_MEMBER, text=text, subject=nick)
        if not self._set_holder(change, peer, nick):
            return None
        return m.ModeChange(mode=change.mode, on=change.on, arg=nick)

    def _set_holder(self, change: m.ModeChange, peer: P | None, nick: str) -> bool:
        """Give or take ``o``/``v`` (``peer`` ``None``: a member of another node); whether
        that changed anything."""
        if peer is None:
            key = m.casefold(nick)
            remote = self.remote_ops if change.mode == "o" else self.remote_voiced
            if change.on == (key in remote):
                return False
            (remote.add if change.on else remote.discard)(key)
            return True
        holders = self.ops if change.mode == "o" else self.voiced
        if change.on == (peer in holders):
            return False
        (holders.add if change.on else holders.discard)(peer)
        return True

    def apply_heard(
        self,
        changes: Sequence[m.ModeChange],
        *,
        setter: str,
        now: float,
        find: Callable[[str], P | None],
    ) -> None:
        """Apply changes another node's operator made (already checked there): ``find`` gives
        the session here of a nick, ``None`` for a user of another node."""
        for change in changes:
            if change.mode in m.STATUS_MODES:
                self._set_holder(change, find(change.arg), change.arg)
            elif change.mode in m.LIST_MODES:
                self.set_ban(change, setter, now)
            elif change.mode in m.FLAG_MODES or change.mode in m.SETTING_MODES:
                self.set_flag(change)
