"""What an idle TLS connection keeps on the server's heap, and what it keeps after a burst.

    python benchmarks/tls_memory.py --connections 500

In one process: N server-side :class:`anychat.tls.TlsTransport` over socket pairs, each after
its handshake with a blocking ``ssl`` client in a thread. Then three figures, each the C and
Python heap in use (glibc ``mallinfo2``, so OpenSSL's allocations count) per connection above
what the process used before, with the client sides freed:

- *idle*: after the handshake and one short line each way;
- *after a burst out*: after the server sent each client a 60 KB batch (a busy room, a
  history replay), which the client read;
- *after a burst in*: after each client sent the server 60 KB (a paste, a bot).

A figure that grows with the burst is memory the connection keeps for the rest of its life
while idle (buffers sized by the largest chunk ever seen). Linux with glibc only. The process
sets ``MALLOC_ARENA_MAX=1`` (re-executing itself) so that the worker threads' allocations
(the handshakes run in threads) land in the arena ``mallinfo2`` reports.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import socket
import ssl
import sys
import tempfile
from pathlib import Path

import anyio
import anyio.to_thread

from anychat.tls import TlsTransport, accept_tls
from anychat.tlsconfig import server_context

BURST = 60_000


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
        )
    ]


def heap_in_use() -> int:
    gc.collect()
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


async def open_pair(
    server: ssl.SSLContext, client: ssl.SSLContext
) -> tuple[TlsTransport, ssl.SSLSocket]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    peer = client.wrap_socket(theirs, server_hostname="localhost", do_handshake_on_connect=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, peer.do_handshake)
        transport = await accept_tls(
            ours, server, first=b"", address="pair", peer_host="127.0.0.1", timeout=10
        )
    await send_all(transport, b"hello\n")
    assert await anyio.to_thread.run_sync(peer.recv, 100) == b"hello\n"  # reads the tickets too
    await anyio.to_thread.run_sync(peer.sendall, b"hi\n")
    assert await receive(transport, 3) == b"hi\n"
    return transport, peer


async def send_all(transport: TlsTransport, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[transport.send(view) :]
        except BlockingIOError:
            await transport.wait_writable()
    while transport.pending:
        await transport.wait_writable()


async def receive(transport: TlsTransport, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        try:
            got += transport.recv(65536)
        except BlockingIOError:
            await transport.wait_readable()
    return bytes(got)


def read_exactly(peer: ssl.SSLSocket, size: int) -> int:
    left = size
    while left:
        left -= len(peer.recv(min(left, 65536)))
    return size


async def measure(connections: int) -> None:
    import trustme

    folder = Path(tempfile.mkdtemp(prefix="anychat-tls-memory-"))
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(folder / "key.pem"))
    server = server_context(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context()
    ca.configure_trust(client)
    await open_pair(server, client)  # warm up: imports, first use
    payload = b"x" * BURST
    for burst in ("idle", "out", "in"):
        base = heap_in_use()
        transports: list[TlsTransport] = []
        peers: list[ssl.SSLSocket] = []
        for _ in range(connections):
            transport, peer = await open_pair(server, client)
            if burst == "out":
                async with anyio.create_task_group() as tg:
                    tg.start_soon(anyio.to_thread.run_sync, read_exactly, peer, BURST)
                    await send_all(transport, payload)
            elif burst == "in":
                async with anyio.create_task_group() as tg:
                    tg.start_soon(anyio.to_thread.run_sync, peer.sendall, payload)
                    assert len(await receive(transport, BURST)) == BURST
            transports.append(transport)
            peers.append(peer)
        for peer in peers:
            peer.close()  # the client side is not the server's memory
        peers.clear()
        held = heap_in_use()
        what = {"idle": "idle", "out": "after a 60 KB burst out", "in": "after a 60 KB burst in"}
        print(f"{what[burst]:26} {(held - base) / connections / 1024:6.1f} KiB per connection")
        for transport in transports:
            transport.close()
        del transports, transport, peer


def main() -> int:
    if os.environ.get("MALLOC_ARENA_MAX") != "1":
        os.environ["MALLOC_ARENA_MAX"] = "1"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    print(f"{args.connections} TLS connections ({ssl.OPENSSL_VERSION}), server-side heap:")
    anyio.run(measure, args.connections, backend=args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
