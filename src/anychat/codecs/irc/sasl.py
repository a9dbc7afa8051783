"""SASL PLAIN over IRC's ``AUTHENTICATE`` (IRCv3 ``sasl-3.1``), as pure state: chunks in, credentials out.

The client sends its base64 payload in ``AUTHENTICATE`` lines of at most 400 bytes; a line of
exactly 400 bytes means more follows, and ``AUTHENTICATE +`` ends a payload whose length is a
multiple of 400 (or stands for an empty one). The payload decodes to
``authzid NUL authcid NUL password`` (RFC 4616). Checking the password is not done here: the
codec turns the credentials into a :class:`~anychat.model.Login` and the server glue checks it
against the accounts store like any other login.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Final

from ... import model as m

__all__ = ["CHUNK_BYTES", "Credentials", "PlainExchange", "SaslRefused"]

#: IRCv3 sasl-3.1: each ``AUTHENTICATE`` line carries at most 400 bytes of base64.
CHUNK_BYTES: Final = 400
#: A password may have 1024 characters (4 UTF-8 bytes each at worst), plus two nicks, in base64.
MAX_PAYLOAD_BYTES: Final = 8192


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who the client says it is, and its password (never shown in reprs, so never in logs)."""

    authcid: str
    password: str = field(repr=False)


class SaslRefused(Exception):
    """The exchange ends unsuccessfully; ``numeric`` is what the server answers."""

    def __init__(self, numeric: str, text: str) -> None:
        super().__init__(text)
        self.numeric = numeric
        self.text = text


def _failed() -> SaslRefused:
    # One answer for every cause: a client learns nothing about which part was wrong.
    return SaslRefused("904", "SASL authentication failed")


class PlainExchange:
    """One PLAIN exchange, from the server's ``AUTHENTICATE +`` to the credentials."""

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._size = 0

    def feed(self, chunk: str) -> Credentials | None:
        """One ``AUTHENTICATE`` argument: ``None`` while more is expected.

        Raises :class:`SaslRefused` (905 for an over-long line or payload, 904 for anything
        that does not decode to PLAIN credentials).
        """
        if len(chunk) > CHUNK_BYTES:
            raise SaslRefused("905", "SASL message too long")
        if chunk != "+":
            self._size += len(chunk)
            if self._size > MAX_PAYLOAD_BYTES:
                raise SaslRefused("905", "SASL message too long")
            self._chunks.append(chunk)
            if len(chunk) == CHUNK_BYTES:
                return None
        return decode_plain("".join(self._chunks))


def decode_plain(payload: str) -> Credentials:
    """RFC 4616 credentials from base64; raises :class:`SaslRefused` (904) when malformed."""
    try:
        raw = binascii.a2b_base64(payload.encode("ascii"), strict_mode=True)
        authzid, authcid, password = raw.decode("utf-8").split("\0")
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        raise _failed() from None
    if not authcid or not password:
        raise _failed()
    # Acting for another account is not supported: the authzid is empty or names the same one.
    if authzid and m.casefold(authzid) != m.casefold(authcid):
        raise _failed()
    return Credentials(authcid=authcid, password=password)
