"""TLS from the command line: ``serve --tls-self-signed``, ``send``/``chat`` with ``--tls``,
``--tls-ca`` and ``--tls-insecure``, and settings refused with one clear line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

import anychat
from anychat.tlsconfig import fingerprint

from .test_terminal import _env, _prompt_ready, chat_in_terminal
from .tls_support import Certs, make_certs

ANYCHAT = [sys.executable, "-m", "anychat"]

pytestmark = pytest.mark.timeout(90)


@contextmanager
def self_signed_server(data_dir: Path) -> Iterator[tuple[int, list[str]]]:
    """``anychat serve --tls-self-signed`` with its data in ``data_dir``: (port, stdout lines)."""
    env = {**os.environ, "ANYCHAT_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(
        [*ANYCHAT, "serve", "--port", "0", "--database-url", "memory://", "--tls-self-signed"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if found:
                yield int(found[1]), lines
                break
        else:
            raise AssertionError(f"the server did not start: {lines}")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()


def _send(port: int, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ANYCHAT, "send", "--port", str(port), *flags, "hello"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_self_signed_server_and_send_with_each_flag(tmp_path: Path) -> None:
    with self_signed_server(tmp_path) as (port, lines):
        cert = tmp_path / "tls" / "tls-self-signed.crt"
        printed = "".join(lines)
        assert f"SHA-256 fingerprint: {fingerprint(cert)}" in printed
        assert f"--tls-ca {cert}" in printed

        trusted = _send(port, "--tls-ca", str(cert))
        assert trusted.returncode == 0, trusted.stderr
        assert trusted.stdout.startswith("sent message ")

        system = _send(port, "--tls")
        assert system.returncode == 1
        assert "unknown certificate authority" in system.stderr
        assert system.stderr.count("\n") == 1 and "Traceback" not in system.stderr

        insecure = _send(port, "--tls-insecure")
        assert insecure.returncode == 0, insecure.stderr
        assert "WARNING: --tls-insecure" in insecure.stderr
        assert "read and change everything" in insecure.stderr

        both = _send(port, "--tls-insecure", "--tls-ca", str(cert))
        assert both.returncode == 2 and "contradict" in both.stderr

        plaintext = _send(port)  # the same port still serves plaintext
        assert plaintext.returncode == 0, plaintext.stderr

    with self_signed_server(tmp_path) as (_, lines):
        assert f"SHA-256 fingerprint: {fingerprint(cert)}" in "".join(lines)  # reused


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tls-self-signed", "--env", "production"], "--tls-self-signed is for development"),
        (["--tls-required"], "--tls-required needs a certificate"),
        (["--tls-port", "0"], "--tls-port needs a certificate"),
        (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"], "not found"),
    ],
)
def test_bad_tls_settings_are_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ANYCHAT_DATA_DIR": str(tmp_path),
        "ANYCHAT_SECRET": "a-production-secret-that-is-long-enough-1234",
    }
    result = subprocess.run(
        [*ANYCHAT, "serve", "--port", "0", "--database-url", "memory://", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode != 0
    assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "certs")


async def test_the_terminal_client_says_the_connection_is_encrypted(
    certs: Certs,
) -> None:
    async with (
        anychat.serve(port=0, tls_cert=str(certs.cert_file), tls_key=str(certs.key_file)) as srv,
        anychat.connect(*srv.address, nick="bob") as bob,
        chat_in_terminal(srv.port, "--nick", "ada", "--tls-ca", str(certs.ca_file)) as term,
    ):
        await term.wait_until(_prompt_ready(term, "ada"), "prompt")
        await term.wait_for_text("server certificate verified")
        assert re.search(r"encrypted \(TLSv1\.[23]\)", term.text())
        term.type("over tls\r")
        with anyio.fail_after(10):
            msg = await bob.wait_for(anychat.Message)
        assert (msg.sender, msg.text) == ("ada", "over tls")
        term.type("/quit\r")
        assert await term.wait_exit() == 0


async def test_the_terminal_client_says_when_it_did_not_verify(certs: Certs) -> None:
    async with (
        anychat.serve(port=0, tls_cert=str(certs.cert_file), tls_key=str(certs.key_file)) as srv,
        chat_in_terminal(srv.port, "--nick", "ada", "--tls-insecure", env=_env()) as term,
    ):
        await term.wait_for_text("WARNING: --tls-insecure")
        await term.wait_until(_prompt_ready(term, "ada"), "prompt")
        await term.wait_for_text("server certificate NOT verified")
        term.type("/quit\r")
        assert await term.wait_exit() == 0


async def test_plaintext_sessions_say_nothing_about_encryption(
    server: anychat.Server,
) -> None:
    async with chat_in_terminal(server.port, "--nick", "ada") as term:
        await term.wait_until(_prompt_ready(term, "ada"), "prompt")
        await term.wait_for_text("/help for help")
        assert "encrypted" not in term.text()
        term.type("/quit\r")
        assert await term.wait_exit() == 0


async def test_piped_chat_over_tls(certs: Certs) -> None:
    async with (
        anychat.serve(port=0, tls_cert=str(certs.cert_file), tls_key=str(certs.key_file)) as srv,
        anychat.connect(*srv.address, nick="bob") as bob,
    ):
        command = [*ANYCHAT, "chat", "--port", str(srv.port), "--nick", "ci"]
        result = await anyio.run_process(
            [*command, "--tls-ca", str(certs.ca_file)],
            input=b"piped over tls\n",
            check=False,
        )
        assert result.returncode == 0, result.stderr
        with anyio.fail_after(10):
            msg = await bob.wait_for(anychat.Message)
        assert (msg.sender, msg.text) == ("ci", "piped over tls")
