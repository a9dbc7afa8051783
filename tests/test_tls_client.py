"""The client's side of TLS: certificates refused with the reason named, contexts, self-signed."""

from __future__ import annotations

import datetime as dt
import ssl
import stat
from pathlib import Path

import anyio
import pytest

import anychat
from anychat.errors import ConfigError, ConnectError
from anychat.selfsigned import default_names, ensure_self_signed
from anychat.tlsconfig import client_context, fingerprint, server_context

from .tls_support import echo_server, make_certs, receive_exactly, tls_connect

_NOW = dt.datetime.now(dt.UTC)


async def _refusal(port: int, host: str = "127.0.0.1", **options: object) -> str:
    with anyio.fail_after(10), pytest.raises(ConnectError) as caught:
        async with anychat.connect(host, port, nick="ada", timeout=5, **options):  # type: ignore[arg-type]
            pass
    return caught.value.reason


async def test_an_expired_certificate_is_refused_as_expired(tmp_path: Path) -> None:
    certs = make_certs(
        tmp_path,
        "localhost",
        "127.0.0.1",
        not_before=_NOW - dt.timedelta(days=30),
        not_after=_NOW - dt.timedelta(days=1),
    )
    async with echo_server(certs.server_context()) as server:
        reason = await _refusal(server.port, tls_ca=certs.ca_file)
    assert reason.startswith("the server's TLS certificate has expired")


async def test_a_certificate_for_another_host_is_refused_naming_the_host(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, "chat.example.org")
    async with echo_server(certs.server_context()) as server:
        reason = await _refusal(server.port, tls_ca=certs.ca_file)
    assert reason.startswith("the server's TLS certificate is for another host name, not 127.0.0.1")


async def test_a_certificate_for_the_name_but_not_the_address(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, "localhost")
    async with echo_server(certs.server_context()) as server:
        reason = await _refusal(server.port, tls_ca=certs.ca_file)
        assert "for another host name" in reason
        hostname_ok = await tls_connect(server.port, certs.client_context(), hostname="localhost")
        await hostname_ok.aclose()


async def test_an_unknown_ca_is_refused_with_the_way_out(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    other = make_certs(tmp_path / "other")
    async with echo_server(certs.server_context()) as server:
        system = await _refusal(server.port, tls=True)
        private = await _refusal(server.port, tls_ca=other.ca_file)
    for reason in (system, private):
        assert reason.startswith(
            "the server's TLS certificate is signed by an unknown certificate authority"
        )
        assert "--tls-ca" in reason


async def test_tls_to_a_plaintext_port_is_named(tmp_path: Path) -> None:
    async with anychat.serve(port=0) as plain:
        reason = await _refusal(plain.port, tls=True)
    assert "serve TLS on this port" in reason


async def test_a_context_of_ones_own_is_used_as_given(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    mine = certs.client_context()
    mine.maximum_version = ssl.TLSVersion.TLSv1_2
    async with echo_server(certs.server_context()) as server:
        stream = await tls_connect(server.port, mine)
        await stream.aclose()
        assert server.transports[-1].version == "TLSv1.2"
        # A context trusting another CA: the verification is the given context's.
        wrong = make_certs(tmp_path / "wrong")
        reason = await _refusal(server.port, tls=wrong.client_context())
    assert "unknown certificate authority" in reason


async def test_insecure_still_encrypts(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, "somewhere.else")
    async with echo_server(certs.server_context()) as server:
        stream = await tls_connect(server.port, client_context(insecure=True))
        with anyio.fail_after(10):
            await stream.send(b"secret")
            assert await receive_exactly(stream, 6) == b"secret"
        await stream.aclose()
        assert server.transports[-1].version is not None


def test_missing_and_bad_files_are_config_errors(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        client_context(ca_file=tmp_path / "nope.pem")
    (tmp_path / "junk.pem").write_text("junk\n")
    with pytest.raises(ConfigError, match="CA file"):
        client_context(ca_file=tmp_path / "junk.pem")
    with pytest.raises(ConfigError, match="not found"):
        server_context(tmp_path / "nope.pem", certs.key_file)
    other = make_certs(tmp_path / "other")
    with pytest.raises(ConfigError, match="the key does not belong to the certificate"):
        server_context(certs.cert_file, other.key_file)
    with pytest.raises(ConfigError, match="no PEM certificate"):
        fingerprint(tmp_path / "junk.pem")


def test_an_encrypted_key_is_refused_without_prompting(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    certs = make_certs(tmp_path)
    key = serialization.load_pem_private_key(certs.key_file.read_bytes(), None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"hunter2"),
        )
    )
    with pytest.raises(ConfigError, match="passphrase"):
        server_context(certs.cert_file, locked)


async def test_self_signed_works_as_its_own_ca(tmp_path: Path) -> None:
    names = default_names("127.0.0.1", ["chat.lan"])
    assert names[:2] == ["127.0.0.1", "chat.lan"] and "localhost" in names and "::1" in names
    cert, key = ensure_self_signed(tmp_path / "data", names)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    trusting = client_context(ca_file=cert)
    async with echo_server(server_context(cert, key)) as server:
        for hostname in ("localhost", "127.0.0.1", "chat.lan"):
            stream = await tls_connect(server.port, trusting, hostname=hostname)
            with anyio.fail_after(10):
                await stream.send(b"hi")
                assert await receive_exactly(stream, 2) == b"hi"
            await stream.aclose()


def test_self_signed_is_reused_until_the_names_change(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert, _ = ensure_self_signed(tmp_path, ["chat.lan", "localhost"])
    first = fingerprint(cert)
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    assert first.replace(":", "").lower() == loaded.fingerprint(hashes.SHA256()).hex()
    assert fingerprint(ensure_self_signed(tmp_path, ["chat.lan", "localhost"])[0]) == first
    assert fingerprint(ensure_self_signed(tmp_path, ["other.lan", "localhost"])[0]) != first


def test_wildcard_hosts_are_not_names() -> None:
    assert "0.0.0.0" not in default_names("0.0.0.0")
    assert "::" not in default_names("::")
