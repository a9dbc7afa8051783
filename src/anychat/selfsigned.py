"""``anychat serve --tls-self-signed``: a certificate to try TLS with, made on the spot.

Development only (the CLI refuses it in production): nobody's trust store knows this
certificate, so clients either pass it as their CA (``anychat chat --tls --tls-ca FILE``), compare
the printed SHA-256 fingerprint by hand, or skip verification. The files are kept in the given
directory and reused while they still cover the same names and stay valid for a while, so the
fingerprint a client has pinned does not change on every restart.

It needs the ``cryptography`` package (``pip install 'anychat[tls]'``), imported only here: a
server with a real certificate (``--tls-cert/--tls-key``) needs nothing beyond the standard
library's ``ssl``.

The key is ECDSA P-256: its handshake signature costs a small fraction of an RSA-2048 one, which
keeps a burst of handshakes cheap for the event loop.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from .errors import ConfigError

__all__ = [
    "CERT_NAME",
    "KEY_NAME",
    "default_names",
    "ensure_self_signed",
    "self_signed_directory",
]

CERT_NAME: Final = "tls-self-signed.crt"
KEY_NAME: Final = "tls-self-signed.key"
#: How long a generated certificate is valid; it is replaced when less than RENEW_DAYS remain.
VALID_DAYS: Final = 365
RENEW_DAYS: Final = 30

_ALWAYS: Final = ("localhost", "127.0.0.1", "::1")
_WILDCARDS: Final = frozenset({"", "0.0.0.0", "::", "*"})


def self_signed_directory(data_dir: Path | None = None) -> Path:
    """Where generated certificates live: ``tls/`` in the data directory (``--data-dir``, else
    ``$ANYCHAT_DATA_DIR``, else ``~/.local/share/anychat``; :mod:`anychat.datadir`), beside the
    database and secret, never the working directory."""
    from .datadir import resolve_data_dir

    return resolve_data_dir(data_dir) / "tls"


def default_names(host: str, extra: Iterable[str] = ()) -> list[str]:
    """The names a certificate for a server on ``host`` should cover.

    The configured host (unless it is a wildcard address), any ``extra`` names, this machine's
    host name (how other machines on a LAN usually reach it), and loopback, in that order and
    without repeats.
    """
    names: list[str] = []
    candidates = [host, *extra, socket.gethostname(), *_ALWAYS]
    for name in candidates:
        name = name.strip().strip("[]")
        if name in _WILDCARDS or name.lower() in (n.lower() for n in names):
            continue
        names.append(name)
    return names


def ensure_self_signed(
    directory: str | os.PathLike[str], names: Sequence[str]
) -> tuple[Path, Path]:
    """The certificate and key files in ``directory`` for ``names``, generated if needed.

    Raises:
        ConfigError: ``cryptography`` is missing, or the directory cannot be written.
    """
    if not names:
        raise ConfigError("a self-signed certificate needs at least one host name")
    folder = Path(directory)
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    if _still_good(cert_path, key_path, names):
        return cert_path, key_path
    cert_pem, key_pem = generate(names)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_private(key_path, key_pem)
        cert_path.write_bytes(cert_pem)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the self-signed certificate into {folder}: {exc}"
        ) from None
    return cert_path, key_path


def _write_private(path: Path, data: bytes) -> None:
    """Write owner-only from the start (no moment where others could read the key)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.replace(tmp, path)


def _import_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--tls-self-signed needs the cryptography package: pip install 'anychat[tls]'"
        ) from None


def generate(names: Sequence[str], *, days: int = VALID_DAYS) -> tuple[bytes, bytes]:
    """A new self-signed certificate for ``names`` and its key, both PEM."""
    _import_cryptography()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "anychat self-signed"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    public = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # a client clock a little behind
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _still_good(cert_path: Path, key_path: Path, names: Sequence[str]) -> bool:
    """An existing certificate covers exactly ``names`` and stays valid long enough."""
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    _import_cryptography()
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        alternatives = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    covered = {str(n).lower() for n in alternatives.get_values_for_type(x509.DNSName)}
    covered |= {str(ip) for ip in alternatives.get_values_for_type(x509.IPAddress)}
    wanted = set()
    for name in names:
        try:
            wanted.add(str(ipaddress.ip_address(name)))
        except ValueError:
            wanted.add(name.lower())
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return covered == wanted and left > dt.timedelta(days=RENEW_DAYS)
