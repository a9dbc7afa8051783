"""TLS settings: the server's context (reloadable), the client's context, errors in plain words.

Server: :class:`ServerTls` builds an ``ssl.SSLContext`` from a certificate chain and a key file
with the standard library's secure defaults for a server (``Purpose.CLIENT_AUTH``), TLS 1.2 as the
oldest version, ALPN ``http/1.1`` offered (a client asking only for other protocols gets no ALPN
and carries on), and SNI accepted whatever the name. :meth:`ServerTls.reload` builds a fresh
context from the same files (SIGHUP after a certificate renewal): handshakes from then on use it,
connections already up keep the one they were made with, and a reload that fails keeps the old
context and says why.

Client: :func:`client_context` verifies the server against the system trust store (or only the
given CA file) and its host name. :func:`describe_verify_error` turns OpenSSL's verification
result into the reason a person can act on (expired, wrong host name, unknown CA).
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
from pathlib import Path
from typing import Final, NoReturn

import anyio

from .errors import ConfigError

__all__ = [
    "ALPN_PROTOCOLS",
    "ServerTls",
    "client_context",
    "describe_tls_error",
    "describe_verify_error",
    "fingerprint",
    "server_context",
]

logger = logging.getLogger(__name__)

#: ALPN protocols the server accepts: HTTP/1.1 for browsers (https, wss); no HTTP/2.
ALPN_PROTOCOLS: Final = ("http/1.1",)

StrPath = str | os.PathLike[str]


def _refuse_passphrase() -> NoReturn:
    # Without a callback OpenSSL would prompt on the server's terminal for the passphrase.
    raise ConfigError("the TLS key is encrypted with a passphrase: give anychat an unencrypted key")


def _record_sni(sslobj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
    """Accept any SNI name; keep it on the SSL object for logs (``TlsTransport.server_hostname``).

    One certificate serves every name, so there is nothing to switch: a client that asked for a
    name the certificate does not cover finds out when it verifies the certificate.
    """
    if name is not None:
        sslobj.anychat_sni = name  # type: ignore[union-attr]


def server_context(cert_file: StrPath, key_file: StrPath) -> ssl.SSLContext:
    """A server context for ``cert_file`` (the chain, leaf first) and its ``key_file``.

    Raises:
        ConfigError: A file is missing or unreadable, not PEM, or the key does not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # A TLS 1.2 client asking to renegotiate would make the server do a whole handshake's
    # computing inside an ordinary read, on the event loop, as often as it likes.
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    context.sni_callback = _record_sni
    try:
        context.load_cert_chain(cert_file, key_file, password=_refuse_passphrase)
    except FileNotFoundError as exc:
        raise ConfigError(f"TLS file not found: {exc.filename}") from None
    except ssl.SSLError as exc:
        what = _load_problem(exc)
        raise ConfigError(
            f"cannot use TLS certificate {cert_file} with key {key_file}: {what}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return context


def _load_problem(exc: ssl.SSLError) -> str:
    reason = exc.reason or ""
    if reason == "KEY_VALUES_MISMATCH":
        return "the key does not belong to the certificate"
    if reason in ("PEM_LIB", "NO_START_LINE", "BAD_END_LINE"):
        return "not a PEM certificate and key"
    return (reason or str(exc)).lower().replace("_", " ")


class ServerTls:
    """The server's current TLS context, rebuilt from the same files by :meth:`reload`."""

    def __init__(self, cert_file: StrPath, key_file: StrPath) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        #: Read once per handshake: a reload replaces it for new connections only.
        self.context = server_context(self.cert_file, self.key_file)
        self.fingerprint = fingerprint(self.cert_file)
        self._limiter: anyio.CapacityLimiter | None = None

    def limiter(self) -> anyio.CapacityLimiter:
        """Worker threads for handshakes: one per CPU (more would only queue for the cores),
        apart from the threads that hash passwords. Made on first use, inside the event loop."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(os.cpu_count() or 1)
        return self._limiter

    def reload(self) -> bool:
        """Load the files again; on failure keep serving the old certificate (logged)."""
        try:
            context = server_context(self.cert_file, self.key_file)
            new_fingerprint = fingerprint(self.cert_file)
        except ConfigError as exc:
            logger.error("TLS reload failed, still serving the previous certificate: %s", exc)
            return False
        self.context = context
        self.fingerprint = new_fingerprint
        logger.info(
            "TLS certificate reloaded from %s (SHA-256 %s)", self.cert_file, new_fingerprint
        )
        return True


def fingerprint(cert_file: StrPath) -> str:
    """The SHA-256 fingerprint of the first certificate in a PEM file, ``AB:CD:...``.

    Raises:
        ConfigError: The file has no PEM certificate.
    """
    try:
        text = Path(cert_file).read_text("ascii", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read TLS certificate {cert_file}: {exc.strerror}") from None
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.find(begin)
    stop = text.find(end, start)
    if start < 0 or stop < 0:
        raise ConfigError(f"no PEM certificate in {cert_file}")
    der = ssl.PEM_cert_to_DER_cert(text[start : stop + len(end)])
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def client_context(*, ca_file: StrPath | None = None, insecure: bool = False) -> ssl.SSLContext:
    """A client context: the system trust store (or only ``ca_file``), host name checked.

    ``insecure`` turns verification off: the connection is still encrypted, but anyone in the
    middle can pose as the server and read everything, passwords included.

    Raises:
        ConfigError: ``ca_file`` cannot be read or holds no certificate.
    """
    try:
        context = ssl.create_default_context(cafile=os.fspath(ca_file) if ca_file else None)
    except FileNotFoundError:
        raise ConfigError(f"CA file not found: {ca_file}") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"cannot use CA file {ca_file}: {_load_problem(exc)}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read CA file {ca_file}: {exc.strerror}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# OpenSSL X509_V_ERR_* codes (x509_vfy.h) met when verifying a server's certificate.
_EXPIRED: Final = frozenset({10})  # CERT_HAS_EXPIRED
_NOT_YET_VALID: Final = frozenset({9})  # CERT_NOT_YET_VALID
_WRONG_HOST: Final = frozenset({62, 64})  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
_UNKNOWN_CA: Final = frozenset(
    {
        2,  # UNABLE_TO_GET_ISSUER_CERT
        18,  # DEPTH_ZERO_SELF_SIGNED_CERT
        19,  # SELF_SIGNED_CERT_IN_CHAIN
        20,  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        21,  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    }
)
_REVOKED: Final = frozenset({23})  # CERT_REVOKED


def describe_verify_error(exc: ssl.SSLCertVerificationError, host: str) -> str:
    """Why the server's certificate was refused, naming what the user can do about it."""
    code = exc.verify_code
    detail = exc.verify_message or exc.reason or str(exc)
    if code in _EXPIRED:
        what = "the server's TLS certificate has expired"
    elif code in _NOT_YET_VALID:
        what = "the server's TLS certificate is not valid yet (check both clocks)"
    elif code in _WRONG_HOST:
        what = f"the server's TLS certificate is for another host name, not {host}"
    elif code in _UNKNOWN_CA:
        what = (
            "the server's TLS certificate is signed by an unknown certificate authority "
            "(self-signed or a private CA? pass its CA file with --tls-ca / tls_ca=)"
        )
    elif code in _REVOKED:
        what = "the server's TLS certificate has been revoked"
    else:
        what = "the server's TLS certificate was refused"
    return f"{what} [{detail}]"


def describe_tls_error(exc: ssl.SSLError) -> str:
    """A failed client handshake that is not about the certificate."""
    reason = exc.reason or ""
    if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
        return "the server did not answer in TLS: it does not serve TLS on this port"
    if reason == "UNSUPPORTED_PROTOCOL" or reason.endswith("PROTOCOL_VERSION"):
        return "no TLS version in common with the server (this client needs TLS 1.2 or newer)"
    text = (reason or str(exc)).lower().replace("_", " ")
    return f"TLS handshake failed: {text}"
