"""How this server spells lines to one client: its name, the client's nick, masks, tags.

Shared by the command side (local replies) and the rendering side; it only reads the state.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Final

from ... import model as m
from .. import Inbound, LocalReply
from .parse import format_line
from .state import IrcState

__all__ = ["Wire", "clean", "time_tag"]

_BAD_TEXT: Final = str.maketrans({"\r": " ", "\n": " ", "\x00": " "})


def clean(text: str) -> str:
    """Free text from other codecs must not end a line early (header injection)."""
    return text.translate(_BAD_TEXT)


def time_tag(when: float) -> str:
    """IRCv3 ``server-time``: ISO 8601 UTC with milliseconds, as ``2026-01-31T12:00:00.000Z``."""
    millis = int(when * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{millis:03d}Z"


class Wire:
    """Line formatting for one connection (reads :class:`IrcState`, never changes it)."""

    __slots__ = ("network", "replay", "server", "state", "version")

    def __init__(
        self, state: IrcState, *, server: str, network: str, version: str, replay: bool = False
    ) -> None:
        self.state = state
        self.server = server
        self.network = network
        self.version = version
        #: Show replayed history to clients without ``batch`` (an operator's choice).
        self.replay = replay

    @property
    def me(self) -> str:
        """Who numerics address: ``*`` until registered, as servers do."""
        return self.state.nick if self.state.registered else "*"

    @property
    def mask(self) -> str:
        return self.mask_of(self.state.nick, self.state.user or "")

    def mask_of(self, nick: str, user: str = "") -> str:
        """``nick!~user@server``: ``~`` as no ident check was made; hosts are cloaked, so the
        prefix never shows a client's address. Unknown usernames are derived from the nick."""
        return _mask(nick, user, self.server)

    def line(self, *params: str) -> str:
        """A numeric or server line; a last parameter given with ``:`` is trailing.

        Parameters may echo what a client sent, so each is forced into a legal shape.
        """
        *middle, last = params
        words = [clean(p).replace(" ", "_").lstrip(":") or "*" for p in middle]
        if last.startswith(":"):
            return " ".join((f":{self.server}", *words, clean(last)))
        return format_line(self.server, *words, clean(last))

    def num(self, code: str, *params: str) -> str:
        return self.line(code, self.me, *params)

    def reply(self, code: str, *params: str) -> LocalReply:
        return LocalReply((self.num(code, *params) + "\r\n").encode())

    def need_params(self, verb: str) -> list[Inbound]:
        return [self.reply("461", verb, ":Not enough parameters")]

    def time_tag(self, when: float) -> str:
        return "time=" + time_tag(when) if "server-time" in self.state.caps and when else ""


@lru_cache(maxsize=512)
def _mask(nick: str, user: str, server: str) -> str:
    # Asked for every message relayed and every PRIVMSG read, for a few senders at a time: a
    # few hundred entries hold them (each entry is about 230 bytes; 4,096 cost every one of
    # 10,000 idle connections 90 bytes, for senders long quiet).
    return f"{nick}!~{m.clean_username(user, nick)}@{server}"
