"""Which codec serves a connection, by the protocol the sniffer (or the listener) named.

The server never names a codec class: it asks :func:`codec_for` with the :class:`Protocol` that
:func:`~anychat.codecs.sniff.sniff` found (or that a dedicated listener fixes) and the settings
every codec may need. A new protocol is one :func:`register_codec` call plus its sniff prefix.
Factories import their codec module on first use, so a server that never sees IRC never loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import DEFAULT_MAX_LINE_BYTES
from .sniff import Protocol

if TYPE_CHECKING:
    from . import Codec

__all__ = ["CodecSettings", "codec_for", "register_codec", "registered_protocols"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CodecSettings:
    """What a codec may need to know about the server it speaks for (no I/O, no live state)."""

    server_name: str = "anychat"
    version: str = "0"
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    #: Protocol-specific extras a codec may read (the web codec's allowed origins, say).
    extras: dict[str, Any] = field(default_factory=dict)


CodecFactory = Callable[[CodecSettings], "Codec"]

_FACTORIES: dict[Protocol, CodecFactory] = {}


def register_codec(protocol: Protocol, factory: CodecFactory) -> None:
    """Serve ``protocol`` with codecs made by ``factory`` (a later call replaces an earlier one)."""
    _FACTORIES[protocol] = factory


def registered_protocols() -> frozenset[Protocol]:
    return frozenset(_FACTORIES)


def codec_for(protocol: Protocol, settings: CodecSettings) -> Codec:
    """A new codec for one connection; ``KeyError`` names a protocol nobody registered."""
    try:
        factory = _FACTORIES[protocol]
    except KeyError:
        raise KeyError(f"no codec registered for {protocol.value}") from None
    return factory(settings)


def _text(settings: CodecSettings) -> Codec:
    from .text import TextCodec

    return TextCodec(max_line_bytes=settings.max_line_bytes)


def _jsonl(settings: CodecSettings) -> Codec:
    from .jsonl import JsonServerCodec

    return JsonServerCodec(max_line_bytes=settings.max_line_bytes)


def _irc(settings: CodecSettings) -> Codec:
    from .irc import IrcCodec

    return IrcCodec(
        server_name=settings.server_name,
        version=settings.version,
        history_replay=bool(settings.extras.get("irc_history_replay", False)),
    )


def _web(settings: CodecSettings) -> Codec:
    """The page and the WebSocket. Extras: ``allowed_origins`` (origins besides the server's
    own that may open a WebSocket) and ``status`` (a callable returning the server's
    :class:`~anychat.metrics.ServerStats`, for ``/healthz`` and ``/metrics``)."""
    from .web import WebCodec

    extras = settings.extras
    return WebCodec(
        status=extras.get("status"),
        allowed_origins=extras.get("allowed_origins", ()),
        max_message_bytes=settings.max_line_bytes,
        version=settings.version,
    )


register_codec(Protocol.TEXT, _text)
register_codec(Protocol.JSONL, _jsonl)
register_codec(Protocol.IRC, _irc)
register_codec(Protocol.HTTP, _web)
