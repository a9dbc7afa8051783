"""Production refuses passwords and tokens sent in plaintext from another machine.

"Another machine" is made real rather than pretended: the client runs in a network namespace
of its own, linked to the test's by a veth pair, so the server sees a genuine non-loopback peer
address (10.x.y.2) arriving over a network interface. Every address on the loopback device,
127.0.0.2 included, is loopback (``ipaddress.is_loopback``), so no local address could stand in
for a remote client, and a "trusted networks" setting passed in by the test would test the
setting instead of the rule. This needs root and ``ip netns`` (skipped otherwise, saying so);
the loopback half of the rule runs everywhere.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import anychat

from .tls_support import make_certs

pytestmark = pytest.mark.timeout(90)

SECRET = "a-production-secret-that-is-long-enough-1234"
PASSWORD = "correct horse battery staple"

#: The client side, run inside the namespace: each step's outcome as one JSON line.
CLIENT = r"""
import json, sys
import anyio, anychat

host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
password = "correct horse battery staple"

def say(step, outcome, text=""):
    print(json.dumps({"step": step, "outcome": outcome, "text": text}), flush=True)

async def attempt(step, coro):
    try:
        await coro()
    except anychat.ChatError as exc:
        say(step, type(exc).__name__, str(exc))
    else:
        say(step, "ok")

async def main():
    token = None

    async def register_over_tls():
        nonlocal token
        async with anychat.connect(host, port, nick="ada", tls_ca=ca, autojoin=False) as c:
            token = await c.register(password)

    async def password_in_plaintext():
        async with anychat.connect(host, port, nick="ada", password=password, autojoin=False):
            pass

    async def token_in_plaintext():
        async with anychat.connect(host, port, nick="ada", token=token, autojoin=False):
            pass

    async def register_in_plaintext():
        async with anychat.connect(host, port, nick="bob", autojoin=False) as c:
            await c.register(password)

    async def guest_chat_in_plaintext():
        async with anychat.connect(host, port, nick="cy") as c:
            await c.send("#general", "guests may chat in plaintext")

    async def password_over_tls():
        async with anychat.connect(host, port, nick="ada", password=password, tls_ca=ca):
            pass

    await attempt("register over tls", register_over_tls)
    await attempt("password in plaintext", password_in_plaintext)
    await attempt("token in plaintext", token_in_plaintext)
    await attempt("register in plaintext", register_in_plaintext)
    await attempt("guest chat in plaintext", guest_chat_in_plaintext)
    await attempt("password over tls", password_over_tls)
    irc_pass_in_plaintext()

def irc_pass_in_plaintext():
    import socket
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(f"PASS {password}\r\nNICK ada\r\nUSER ada 0 * :Ada\r\n".encode())
        data = b""
        while b" 001 " not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    outcome = "ok" if b" 001 " in data else "refused"
    say("irc pass in plaintext", outcome, data.decode(errors="replace"))

anyio.run(main)
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def remote() -> Iterator[tuple[str, str, str]]:
    """A namespace linked by veth: (namespace, our address, the client's address)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make a network namespace for a remote client")
    tag = f"{os.getpid() % 10000}{random.randrange(1000)}"
    namespace, here, there = f"acns{tag}", f"ach{tag}", f"acc{tag}"
    subnet = f"10.{random.randrange(200, 250)}.{random.randrange(256)}"
    ours, theirs = f"{subnet}.1", f"{subnet}.2"
    try:
        _ip("netns", "add", namespace)
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot make a network namespace here: {exc}")
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there, "netns", namespace)
        _ip("addr", "add", f"{ours}/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", namespace, "addr", "add", f"{theirs}/30", "dev", there)
        _ip("-n", namespace, "link", "set", there, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield namespace, ours, theirs
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)


async def _run_client(namespace: str, host: str, port: int, ca: Path) -> dict[str, dict[str, Any]]:
    src = str(Path(anychat.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": src}
    result = await anyio.run_process(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", CLIENT, host, str(port), str(ca)],
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    steps = [json.loads(line) for line in result.stdout.decode().splitlines()]
    return {step["step"]: step for step in steps}


async def test_production_refuses_credentials_in_plaintext_from_another_machine(
    remote: tuple[str, str, str], tmp_path: Path
) -> None:
    namespace, ours, _ = remote
    certs = make_certs(tmp_path, ours)
    async with anychat.serve(
        host=ours,
        port=0,
        environment="production",
        secret=SECRET,
        tls_cert=str(certs.cert_file),
        tls_key=str(certs.key_file),
    ) as server:
        with anyio.fail_after(60):
            steps = await _run_client(namespace, ours, server.port, certs.ca_file)
    assert steps["register over tls"]["outcome"] == "ok"
    for refused in ("password in plaintext", "token in plaintext", "register in plaintext"):
        assert steps[refused]["outcome"] == "TlsRequired", steps[refused]
        assert "reconnect with TLS" in steps[refused]["text"]
    assert steps["guest chat in plaintext"]["outcome"] == "ok"
    assert steps["password over tls"]["outcome"] == "ok"
    irc = steps["irc pass in plaintext"]
    assert irc["outcome"] == "refused" and "reconnect with TLS" in irc["text"]
    assert "ERROR :" in irc["text"]


async def test_allow_plaintext_login_lifts_the_rule(
    remote: tuple[str, str, str], tmp_path: Path
) -> None:
    namespace, ours, _ = remote
    certs = make_certs(tmp_path, ours)
    async with anychat.serve(
        host=ours,
        port=0,
        environment="production",
        secret=SECRET,
        allow_plaintext_login=True,
        tls_cert=str(certs.cert_file),
        tls_key=str(certs.key_file),
    ) as server:
        with anyio.fail_after(60):
            steps = await _run_client(namespace, ours, server.port, certs.ca_file)
    assert {step["outcome"] for step in steps.values()} == {"ok"}, steps


async def test_production_accepts_plaintext_credentials_on_loopback() -> None:
    async with (
        anychat.serve(port=0, environment="production", secret=SECRET) as server,
        anychat.connect(*server.address, nick="ada", autojoin=False) as ada,
    ):
        token = await ada.register(PASSWORD)
        async with anychat.connect(*server.address, nick="ada", token=token, autojoin=False):
            pass


async def test_development_accepts_plaintext_credentials_from_anywhere(
    remote: tuple[str, str, str], tmp_path: Path
) -> None:
    namespace, ours, _ = remote
    certs = make_certs(tmp_path, ours)
    async with anychat.serve(
        host=ours, port=0, tls_cert=str(certs.cert_file), tls_key=str(certs.key_file)
    ) as server:
        with anyio.fail_after(60):
            steps = await _run_client(namespace, ours, server.port, certs.ca_file)
    assert {step["outcome"] for step in steps.values()} == {"ok"}, steps
