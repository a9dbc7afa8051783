"""Raw-socket helpers for tests that play a client by hand (nc users, misbehaving peers)."""

from __future__ import annotations

import json
from typing import Any

import anyio
from anyio.abc import SocketStream

from anychat import model as m
from anychat.effects import Persist


class LineClient:
    """A raw TCP client that reads whole lines; every wait is bounded by a deadline."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self._buffer = b""

    @classmethod
    async def open(cls, port: int) -> LineClient:
        return cls(await anyio.connect_tcp("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def send_json(self, **obj: Any) -> None:
        await self.stream.send(json.dumps(obj).encode() + b"\n")

    async def line(self, timeout: float = 5) -> bytes:
        """The next line (without its terminator); raises on timeout or EOF."""
        with anyio.fail_after(timeout):
            while b"\n" not in self._buffer:
                self._buffer += await self.stream.receive()
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.rstrip(b"\r")

    async def line_containing(self, needle: bytes, timeout: float = 5) -> bytes:
        with anyio.fail_after(timeout):
            while True:
                line = await self.line()
                if needle in line:
                    return line

    async def json_event(self, type_: str, timeout: float = 5) -> dict[str, Any]:
        """Skip lines until a JSON event of ``type_`` arrives."""
        with anyio.fail_after(timeout):
            while True:
                event: dict[str, Any] = json.loads(await self.line())
                if event["type"] == type_:
                    return event

    async def read_to_eof(self, timeout: float = 5) -> bytes:
        data = self._buffer
        self._buffer = b""
        with anyio.fail_after(timeout):
            try:
                while True:
                    data += await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return data

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> LineClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def persist_effect(
    msg_id: int, peer: str = "ada", ref: int | None = None, resent: bool = False
) -> Persist[str]:
    """What the broker asks the committer for one room message of ``peer`` (for its tests)."""
    message = m.Message(id=msg_id, time=0.0, sender=peer, target="#g", text=f"m{msg_id}")
    return Persist(
        message=message,
        peer=peer,
        ack=m.Ack(id=msg_id, time=0.0, target="#g", ref=ref if ref is not None else msg_id),
        resent=resent,
    )
