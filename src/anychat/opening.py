"""What a new connection turns out to be: TLS or plaintext, then which protocol.

Every port looks at the first bytes before anything else. A TLS ClientHello
(:func:`~anychat.codecs.sniff_tls.looks_like_tls`) gets a handshake, fed the bytes already read,
and the protocol is then sniffed again on the plaintext inside, so text, JSON lines, IRC and HTTP
work over TLS exactly as without it. A dedicated TLS port (``--tls-port``) handshakes from the
first byte. Anything else is plaintext: sniffed as before, or refused (told why in its own
protocol) when the server requires TLS.

A handshake that fails (garbage, a stall past the handshake timeout, a client leaving, TLS sent
to a server without a certificate) costs one log line and that socket; nobody else notices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

import anyio

from .codecs.sniff import Protocol, sniff
from .codecs.sniff_tls import looks_like_tls
from .transport import RECV_BYTES, readable_before

if TYPE_CHECKING:
    import socket

    from .config import ServerConfig
    from .listeners import ListenerSpec
    from .tlsconfig import ServerTls
    from .transport import TcpTransport, Transport

__all__ = ["Opened", "open_peer", "open_refused"]

_T = TypeVar("_T")

#: How many sniffing moments a connection may stay silent after its TLS handshake before it is
#: taken for a person (``openssl s_client``, ``ncat --ssl``). A peer that has just completed a
#: handshake is nearly always a program about to speak, and a program taken for a person hears
#: a text greeting it may not read past (an HTTP client cannot); a person waits a second.
_SILENCE_AFTER_HANDSHAKE: Final = 4

logger = logging.getLogger("anychat.server")


@dataclass(frozen=True, slots=True)
class Opened:
    """A connection ready for its codec."""

    transport: Transport
    protocol: Protocol
    #: Bytes already read (the codec gets them first).
    first: bytes
    #: Set when this plaintext connection must be refused (the server requires TLS).
    refusal: str | None = None


async def open_peer(
    tcp: TcpTransport,
    sock: socket.socket,
    spec: ListenerSpec,
    tls: ServerTls | None,
    config: ServerConfig,
) -> Opened | None:
    """TLS or plaintext, then the protocol; ``None``: the peer left or the handshake failed."""
    if spec.tls:
        assert tls is not None, "a TLS listener without a certificate"
        return await _secure(tcp, sock, spec, tls, config, b"")
    verdict, first = await _peek(tcp, config.sniff_seconds)
    if verdict is None:
        return None  # left before saying anything
    if verdict:
        if tls is None:
            logger.info(
                "%s: TLS handshake on a server without TLS (no --tls-cert); closing", tcp.address
            )
            return None
        return await _secure(tcp, sock, spec, tls, config, first)
    if spec.protocol is not None:
        protocol = spec.protocol
    elif first:
        found, first = await _sniff(tcp, config.sniff_seconds, first)
        if found is None:
            return None
        protocol = found
    else:
        protocol = Protocol.TEXT  # silent so far: a person on nc/telnet
    refusal = _plaintext_refusal(config) if config.tls_required else None
    return Opened(tcp, protocol, first, refusal)


async def open_refused(
    tcp: TcpTransport, spec: ListenerSpec, config: ServerConfig
) -> Opened | None:
    """A connection refused before any handshake (its address is over its limits): find out
    which protocol to say so in, or ``None`` to just close it.

    A TLS client is closed without a handshake (a handshake is the expensive part, and the
    reason to count connections from the moment they are accepted); only the log says why. A
    plaintext client is sniffed as usual, so it is told in its own protocol.
    """
    if spec.tls:
        return None
    verdict, first = await _peek(tcp, config.sniff_seconds)
    if verdict is None or verdict:
        return None
    if spec.protocol is not None:
        return Opened(tcp, spec.protocol, first)
    if not first:
        return Opened(tcp, Protocol.TEXT, first)
    found, first = await _sniff(tcp, config.sniff_seconds, first)
    return None if found is None else Opened(tcp, found, first)


def _plaintext_refusal(config: ServerConfig) -> str:
    where = f" (or on port {config.tls_port})" if config.tls_port else ""
    return f"this server requires TLS: reconnect with TLS on this port{where}"


async def _secure(
    tcp: TcpTransport,
    sock: socket.socket,
    spec: ListenerSpec,
    tls: ServerTls,
    config: ServerConfig,
    first: bytes,
) -> Opened | None:
    from .tls import HandshakeFailed, accept_tls
    from .tlsconfig import ALPN_PROTOCOLS

    try:
        transport = await accept_tls(
            sock,
            tls.context,  # read per handshake: a reload applies from the next one
            first=first,
            address=tcp.address,
            peer_host=tcp.peer_host,
            timeout=config.tls_handshake_seconds,
            limiter=tls.limiter(),
        )
    except HandshakeFailed as exc:
        logger.info("%s: TLS handshake failed: %s", tcp.address, exc.reason)
        return None
    if spec.protocol is not None:
        return Opened(transport, spec.protocol, b"")
    if transport.alpn_protocol in ALPN_PROTOCOLS:
        return Opened(transport, Protocol.HTTP, b"")  # a browser said so in its hello
    protocol, inner = await _sniff(transport, config.sniff_seconds * _SILENCE_AFTER_HANDSHAKE)
    if protocol is None:
        # Left before a word: answer its close_notify with ours (the caller's close of the
        # plain socket afterwards finds it closed, which is harmless).
        transport.close()
        return None
    return Opened(transport, protocol, inner)


async def _peek(transport: Transport, seconds: float) -> tuple[bool | None, bytes]:
    """Read until the first bytes say TLS or not (``False`` too after ``seconds`` of silence);
    ``None``: the peer left."""
    read = await _read_until(transport, seconds, looks_like_tls)
    if read is None:
        return None, b""
    verdict, first = read
    return bool(verdict), first


async def _sniff(
    transport: Transport, seconds: float, first: bytes = b""
) -> tuple[Protocol | None, bytes]:
    """Look at the first bytes (or the silence) to pick a codec; ``None`` = peer left."""
    read = await _read_until(transport, seconds, sniff, first)
    if read is None:
        return None, b""
    protocol, first = read
    return protocol or Protocol.TEXT, first


async def _read_until(
    transport: Transport, seconds: float, decide: Callable[[bytes], _T | None], first: bytes = b""
) -> tuple[_T | None, bytes] | None:
    """Read until ``decide`` names what the first bytes are, or for ``seconds`` at most (then
    ``decide`` has the last word on whatever arrived, ``None`` included); ``None``: the peer left.
    """
    if first and (verdict := decide(first)) is not None:
        return verdict, first
    deadline = anyio.current_time() + seconds
    while (chunk := await _recv(transport, deadline)) is not None:
        if not chunk:
            return None
        first += chunk
        if (verdict := decide(first)) is not None:
            return verdict, first
    late = _late(transport)
    if late is None:
        return None
    first += late
    return decide(first), first


def _late(transport: Transport) -> bytes | None:
    """What arrived by the deadline but was not read yet (the event loop was busy): a client
    that spoke in time must not be taken for a silent one because the server was slow.

    ``None``: the peer left by then. A burst of TLS clients that handshake and close at once
    would otherwise each be greeted as a silent person on nc and joined to the default rooms
    (a join and a quit broadcast to everyone there) whenever the loop was behind."""
    try:
        data = transport.recv(RECV_BYTES)
    except (BlockingIOError, InterruptedError):
        return b""  # it really was silent
    except OSError:
        return None
    return data or None


async def _recv(transport: Transport, deadline: float) -> bytes | None:
    """The next bytes (``b""``: the peer left or the stream broke; ``None``: the deadline came
    first)."""
    while True:
        try:
            return transport.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            pass  # waited for below, not here: the exception would live as long as the wait
        except OSError:
            return b""
        if not await readable_before(transport, deadline):
            return None
