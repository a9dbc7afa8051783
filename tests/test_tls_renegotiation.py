"""A TLS 1.2 client asking to renegotiate is refused at once, with the alert that says so.

A renegotiation is a whole handshake's computing done inside an ordinary read, on the event
loop, as often as the client likes; the server refuses it (``OP_NO_RENEGOTIATION``, also OpenSSL
3's default for client-initiated ones). The standard library's ``ssl`` cannot start one, so the
client is ``openssl s_client``, whose ``R`` command renegotiates; ``-msg`` prints the records.
A control run against a context that allows renegotiation shows the same script really does
renegotiate, so the refusal test is not passing for want of trying.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

import anychat

from .tls_support import Certs, make_certs

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]

DEADLINE = 10
#: OpenSSL 3's ``SSL_OP_ALLOW_CLIENT_RENEGOTIATION`` (the ``ssl`` module has no name for it).
_ALLOW_CLIENT_RENEGOTIATION = 1 << 8


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "certs")


class SClient:
    """``openssl s_client`` over TLS 1.2, its stdout and stderr read as one stream."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.output = b""

    async def say(self, line: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(line + b"\n")

    async def wait_for(self, needle: bytes, start: int = 0) -> int:
        """Read until ``needle`` appears after ``start``; returns where it ends."""
        assert self.process.stdout is not None
        with anyio.fail_after(DEADLINE):
            while (at := self.output.find(needle, start)) < 0:
                try:
                    self.output += await self.process.stdout.receive()
                except anyio.EndOfStream:
                    raise AssertionError(
                        f"s_client ended without {needle!r}:\n{self.text}"
                    ) from None
        return at + len(needle)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


@asynccontextmanager
async def s_client(port: int, certs: Certs) -> AsyncIterator[SClient]:
    command = [
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-tls1_2",
        "-servername",
        "localhost",
        "-CAfile",
        str(certs.ca_file),
        "-msg",
    ]
    process = await anyio.open_process(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield SClient(process)
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.wait()
            await process.aclose()


async def _chatting(client: SClient) -> int:
    """Handshake done and the chat answering (a text client: s_client says nothing at first)."""
    await client.wait_for(b"Welcome to anychat")
    await client.say(b"/ping")
    return await client.wait_for(b"* pong")


async def test_client_renegotiation_is_refused_and_nobody_else_notices(certs: Certs) -> None:
    async with anychat.serve(
        port=0, tls_cert=str(certs.cert_file), tls_key=str(certs.key_file)
    ) as server:
        assert server.tls is not None
        assert server.tls.context.options & ssl.OP_NO_RENEGOTIATION
        async with (
            anychat.connect(*server.address, nick="bystander") as bystander,
            s_client(server.port, certs) as client,
        ):
            after = await _chatting(client)
            await client.say(b"R")
            after = await client.wait_for(b"RENEGOTIATING", after)
            # The server answers the new ClientHello with the alert, not with a handshake.
            refusal = await client.wait_for(b"warning no_renegotiation", after)
            assert b"ServerHello" not in client.output[after:refusal]
            # Everybody else chats on.
            with anyio.fail_after(DEADLINE):
                ack = await bystander.send("#general", "still here")
                page = await bystander.history("#general")
            assert page[-1].id == ack.id


async def test_the_same_script_renegotiates_where_it_is_allowed(certs: Certs) -> None:
    """Control: with renegotiation allowed, ``R`` gets a whole new handshake and the chat goes
    on over it (so the test above sees a refusal, not a client that never asked)."""
    async with anychat.serve(
        port=0, tls_cert=str(certs.cert_file), tls_key=str(certs.key_file)
    ) as server:
        assert server.tls is not None
        context = server.tls.context  # read per handshake: this applies to the next one
        context.options &= ~ssl.OP_NO_RENEGOTIATION
        context.options |= _ALLOW_CLIENT_RENEGOTIATION
        async with s_client(server.port, certs) as client:
            after = await _chatting(client)
            await client.say(b"R")
            after = await client.wait_for(b"RENEGOTIATING", after)
            after = await client.wait_for(b"ServerHello", after)
            after = await client.wait_for(b"Finished", after)
            await client.say(b"/ping")
            await client.wait_for(b"* pong", after)
            assert b"no_renegotiation" not in client.output
