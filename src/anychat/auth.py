"""Passwords, tokens and the brake on guessing: the parts of logging in that are not I/O.

- Passwords are hashed with Argon2id (argon2-cffi). Hashing is slow on purpose, so the server runs
  :func:`hash_password` / :func:`verify_password` in a worker thread (:func:`hash_password_async`).
- Tokens are JWTs (HS256, PyJWT) naming the account (``sub``) and when they expire (``exp``),
  signed with the server secret and tagged with an issuer and audience, so a token from another
  service using the same library is refused rather than trusted.
- :class:`LoginThrottle` slows repeated failures per account and per address with an exponential
  delay that is capped and forgotten on success: guessing gets slow, the owner is never locked out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import anyio
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from . import model as m

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "AccountGate",
    "LoginThrottle",
    "TokenError",
    "TokenIssuer",
    "hash_password",
    "hash_password_async",
    "password_problem",
    "verify_password",
    "verify_password_async",
]

MIN_PASSWORD_LENGTH: Final = 8
MAX_PASSWORD_LENGTH: Final = 1024
_ISSUER: Final = "anychat"
_AUDIENCE: Final = "anychat-login"

_hasher: Final = PasswordHasher()
# Verifying against this makes an unknown nick cost as much time as a wrong password.
_DUMMY_HASH: Final = _hasher.hash("not a real password, only a timing decoy")


def password_problem(password: str) -> str | None:
    """Why a new password is unacceptable, or ``None``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password too short: at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password too long: at most {MAX_PASSWORD_LENGTH} characters"
    if password.strip() != password or not password.isprintable():
        return "password may not start or end with spaces or contain control characters"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-ish time: an absent account (``None``) is checked against a decoy hash."""
    try:
        ok = _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


async def hash_password_async(password: str) -> str:
    return await anyio.to_thread.run_sync(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    return await anyio.to_thread.run_sync(verify_password, password_hash, password)


class TokenError(Exception):
    """A token that does not log anyone in; ``code`` says whether it expired or is bad."""

    def __init__(self, code: m.ErrorCode, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class TokenIssuer:
    """Issues and checks login tokens.

    Args:
        secret: The HS256 key (ANYCHAT_SECRET).
        ttl_seconds: How long a token logs in.
        clock: Seconds since the epoch; injectable so tests can expire tokens without waiting.
    """

    def __init__(
        self, secret: str, *, ttl_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def issue(self, nick: str) -> tuple[str, float]:
        now = self._clock()
        expires = now + self.ttl_seconds
        claims = {
            "sub": nick,
            "iat": int(now),
            "exp": int(expires),
            "iss": _ISSUER,
            "aud": _AUDIENCE,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256"), float(int(expires))

    def check(self, token: str) -> str:
        """The nick the token logs in as; raises :class:`TokenError`."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=_AUDIENCE,
                issuer=_ISSUER,
                options={"require": ["sub", "exp", "iss", "aud"], "verify_exp": False},
            )
        except jwt.InvalidTokenError:
            raise TokenError(
                m.ErrorCode.TOKEN_INVALID,
                "token rejected: it was not issued by this server or was altered; "
                "log in with your password",
            ) from None
        # Expiry checked against our clock, not PyJWT's, so tests can move time.
        if not isinstance(claims["exp"], int | float) or claims["exp"] <= self._clock():
            raise TokenError(m.ErrorCode.TOKEN_EXPIRED, "token expired; log in with your password")
        sub = claims["sub"]
        if not isinstance(sub, str) or not m.valid_nick(sub):
            raise TokenError(m.ErrorCode.TOKEN_INVALID, "token rejected: it names no valid nick")
        return sub


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last: float = 0.0


class AccountGate:
    """At most one password check per account per ``interval`` seconds, whoever asks.

    Parallel guessing (many connections, many addresses) against one account gets one guess
    per interval in all. :meth:`try_start` either takes the account's next slot or says how
    long until it is free; callers that are refused wait and ask again, and the services let
    addresses without failures ask first, so the account's owner waits about one interval
    while an attack is going on. Pure: the clock is injected.
    """

    def __init__(
        self,
        *,
        interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        max_records: int = 100_000,
    ) -> None:
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._max_records = max_records
        self._last_start: dict[str, float] = {}

    def remaining(self, nick: str) -> float:
        """Seconds until a check of ``nick`` may start (0.0: now), taking nothing."""
        last = self._last_start.get(m.casefold(nick))
        if last is None:
            return 0.0
        return max(0.0, last + self.interval_seconds - self._clock())

    def try_start(self, nick: str) -> float:
        """0.0 if a check of ``nick`` may start now (the slot is taken), else seconds to wait."""
        now = self._clock()
        key = m.casefold(nick)
        last = self._last_start.get(key)
        if last is not None and now - last < self.interval_seconds:
            return last + self.interval_seconds - now
        if len(self._last_start) >= self._max_records:
            cutoff = now - self.interval_seconds
            self._last_start = {k: t for k, t in self._last_start.items() if t > cutoff}
        self._last_start[key] = now
        return 0.0


class LoginThrottle:
    """Exponential delay for failed logins, per address.

    The delay before an address's next login attempt is answered is
    ``base * 2 ** (failures - 1)`` seconds, capped at ``cap``. A success clears the address's
    count; records idle for ``forget_seconds`` are dropped, so neither memory nor a lockout
    grows without bound. Guessing one account from many addresses at once is
    :class:`AccountGate`'s to stop: a per-account delay here would make the account's owner
    wait out an attacker's failures. Pure: the clock is injected.
    """

    def __init__(
        self,
        *,
        base_seconds: float = 0.25,
        cap_seconds: float = 30.0,
        forget_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        max_records: int = 100_000,
    ) -> None:
        self.base_seconds = base_seconds
        self.cap_seconds = cap_seconds
        self.forget_seconds = forget_seconds
        self._clock = clock
        self._max_records = max_records
        self._records: dict[str, _Record] = {}

    def failures(self, host: str) -> int:
        """Recent failures from ``host`` (0 once forgotten)."""
        record = self._records.get(host)
        if record is None:
            return 0
        if self._clock() - record.last > self.forget_seconds:
            del self._records[host]
            return 0
        return record.failures

    def delay(self, host: str) -> float:
        """Seconds to wait before answering this attempt (0 when nothing failed lately)."""
        failures = self.failures(host)
        if failures == 0:
            return 0.0
        return float(min(self.cap_seconds, self.base_seconds * 2 ** min(failures - 1, 60)))

    def failed(self, host: str) -> None:
        now = self._clock()
        if len(self._records) >= self._max_records:
            self._prune(now)
        record = self._records.setdefault(host, _Record())
        record.failures += 1
        record.last = now

    def succeeded(self, host: str) -> None:
        self._records.pop(host, None)

    def _prune(self, now: float) -> None:
        stale = [k for k, r in self._records.items() if now - r.last > self.forget_seconds]
        for key in stale or list(self._records)[: len(self._records) // 2]:
            del self._records[key]
