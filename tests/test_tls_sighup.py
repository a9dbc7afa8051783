"""``anychat serve`` reloads its certificate on SIGHUP: new connections get the new one, and the
connections already up keep chatting (a real server process, a real signal)."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteReceiveStream, Process

import anychat

from .tls_support import make_certs

pytestmark = pytest.mark.timeout(60)


class _Output:
    """Lines of a process's output stream, read as needed."""

    def __init__(self, stream: ByteReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.seen: list[str] = []

    async def until(self, pattern: str) -> re.Match[str]:
        with anyio.fail_after(20):
            while True:
                while b"\n" in self.buffer:
                    raw, _, self.buffer = self.buffer.partition(b"\n")
                    line = raw.decode(errors="replace")
                    self.seen.append(line)
                    found = re.search(pattern, line)
                    if found:
                        return found
                self.buffer += await self.stream.receive()


async def _stop(process: Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            await process.wait()


async def test_sighup_reloads_the_certificate_without_dropping_anyone(tmp_path: Path) -> None:
    old = make_certs(tmp_path / "old")
    new = make_certs(tmp_path / "new")
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert.write_bytes(old.cert_file.read_bytes())
    key.write_bytes(old.key_file.read_bytes())
    command = [
        sys.executable,
        "-m",
        "anychat",
        "serve",
        "--port",
        "0",
        "--database-url",
        "memory://",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(anychat.__file__).parent.parent)}
    process = await anyio.open_process(command, env=env)
    try:
        assert process.stdout is not None and process.stderr is not None
        out, log = _Output(process.stdout), _Output(process.stderr)
        port = int((await out.until(r"listening on 127\.0\.0\.1:(\d+)"))[1])
        async with anychat.connect("127.0.0.1", port, nick="ada", tls_ca=old.ca_file) as ada:
            cert.write_bytes(new.cert_file.read_bytes())
            key.write_bytes(new.key_file.read_bytes())
            process.send_signal(signal.SIGHUP)
            await log.until("TLS certificate reloaded")
            with anyio.fail_after(10), pytest.raises(anychat.ConnectError, match="unknown cert"):
                async with anychat.connect("127.0.0.1", port, tls_ca=old.ca_file):
                    pass
            async with anychat.connect("127.0.0.1", port, nick="bob", tls_ca=new.ca_file) as bob:
                await ada.send("#general", "kept across the reload")
                with anyio.fail_after(10):
                    await bob.wait_for(
                        anychat.Message, lambda e: e.text == "kept across the reload"
                    )
                await bob.send("#general", "and back")
                with anyio.fail_after(10):
                    await ada.wait_for(anychat.Message, lambda e: e.text == "and back")
            # A broken renewal (a key that does not match) keeps the working certificate.
            key.write_bytes(old.key_file.read_bytes())
            process.send_signal(signal.SIGHUP)
            await log.until("TLS reload failed, still serving the previous certificate")
            async with anychat.connect("127.0.0.1", port, nick="cy", tls_ca=new.ca_file):
                pass
    finally:
        await _stop(process)
    assert process.returncode == 0
