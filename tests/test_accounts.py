"""Accounts over the wire: register, log in, tokens, nick ownership, brute-force brake."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

import anychat
from anychat import model as m
from anychat.auth import AccountGate, LoginThrottle, TokenIssuer
from anychat.errors import (
    LoginFailed,
    LoginRequired,
    NickRegistered,
    TokenExpired,
    TokenInvalid,
    WeakPassword,
)

SECRET = "s" * 40


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[anychat.Server]:
    async with anychat.serve(
        port=0,
        database_url=f"sqlite:///{tmp_path / 'chat.db'}",
        secret=SECRET,
        login_delay_seconds=0.01,
        login_delay_cap_seconds=0.05,
    ) as srv:
        yield srv


async def test_register_then_log_in_with_password_and_token(server: anychat.Server) -> None:
    with anyio.fail_after(10):
        async with anychat.connect(*server.address, nick="alice") as alice:
            token = await alice.register("correct horse")
            assert alice.token == token
        async with anychat.connect(*server.address, nick="alice", password="correct horse") as c:
            assert c.nick == "alice"
            assert c.token
        async with anychat.connect(*server.address, token=token) as c:
            assert c.nick == "alice"


async def test_wrong_password_and_unknown_nick_fail_alike(server: anychat.Server) -> None:
    with anyio.fail_after(10):
        async with anychat.connect(*server.address, nick="alice") as alice:
            await alice.register("correct horse")
        with pytest.raises(LoginFailed) as wrong:
            async with anychat.connect(*server.address, nick="alice", password="wrong horse"):
                pass
        with pytest.raises(LoginFailed) as unknown:
            async with anychat.connect(*server.address, nick="nobody", password="wrong horse"):
                pass
    assert type(wrong.value) is type(unknown.value) is LoginFailed
    assert wrong.value.text == unknown.value.text
    assert "horse" not in str(wrong.value)


async def test_guest_cannot_take_a_registered_nick(server: anychat.Server) -> None:
    with anyio.fail_after(10):
        async with anychat.connect(*server.address, nick="alice") as alice:
            await alice.register("correct horse")
        with pytest.raises(NickRegistered, match="log in"):
            async with anychat.connect(*server.address, nick="ALICE"):
                pass
        async with anychat.connect(*server.address, nick="bob") as bob:
            with pytest.raises(NickRegistered):
                await bob.set_nick("Alice")
            # Logging in while connected takes the account's nick.
            await bob.login("alice", "correct horse")
            assert bob.nick == "alice"
            with pytest.raises(NickRegistered):
                await bob.set_nick("bob")


async def test_second_login_replaces_the_ghost(server: anychat.Server) -> None:
    with anyio.fail_after(10):
        async with anychat.connect(*server.address, nick="alice") as first:
            token = await first.register("correct horse")
            async with anychat.connect(*server.address, token=token) as second:
                assert second.nick == "alice"
                bye = await first.wait_for(m.Bye)
                assert bye.code is m.ErrorCode.LOGGED_IN_ELSEWHERE
                await second.join("#general")
                assert "alice" in await second.who("#general")


async def test_weak_password_and_double_registration(server: anychat.Server) -> None:
    with anyio.fail_after(10):
        async with anychat.connect(*server.address, nick="alice") as alice:
            with pytest.raises(WeakPassword):
                await alice.register("short")
            await alice.register("long enough")
            with pytest.raises(anychat.Refused) as again:
                await alice.register("long enough")
            assert again.value.code is m.ErrorCode.ACCOUNT_EXISTS


async def test_tampered_and_foreign_tokens(server: anychat.Server) -> None:
    with anyio.fail_after(10):
        async with anychat.connect(*server.address, nick="alice") as alice:
            token = await alice.register("correct horse")
        head, payload, sig = token.split(".")
        tampered = f"{head}.{payload}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
        foreign, _ = TokenIssuer("x" * 40, ttl_seconds=60).issue("alice")
        for bad in (tampered, foreign, "not-a-token"):
            with pytest.raises(TokenInvalid, match="password"):
                async with anychat.connect(*server.address, token=bad):
                    pass


async def test_expired_token() -> None:
    now = [1000.0]
    issuer = TokenIssuer(SECRET, ttl_seconds=60, clock=lambda: now[0])
    token, expires = issuer.issue("alice")
    assert issuer.check(token) == "alice"
    assert expires == 1060.0
    now[0] = 1061.0
    with pytest.raises(Exception, match="expired") as info:
        issuer.check(token)
    assert info.value.code is m.ErrorCode.TOKEN_EXPIRED  # type: ignore[attr-defined]
    # And over the wire: a token issued long ago by this server's secret.
    old = TokenIssuer(SECRET, ttl_seconds=60, clock=lambda: 1000.0).issue("alice")[0]
    async with anychat.serve(port=0, secret=SECRET) as srv:
        async with anychat.connect(*srv.address, nick="alice") as alice:
            await alice.register("correct horse")
        with pytest.raises(TokenExpired):
            async with anychat.connect(*srv.address, token=old):
                pass


async def test_require_login_refuses_guests(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    async with (
        anychat.serve(port=0, database_url=url, secret=SECRET) as srv,
        anychat.connect(*srv.address, nick="alice") as alice,
    ):
        await alice.register("correct horse")
    async with anychat.serve(port=0, database_url=url, secret=SECRET, require_login=True) as srv:
        with pytest.raises(LoginRequired):
            async with anychat.connect(*srv.address, nick="guest"):
                pass
        async with anychat.connect(*srv.address, nick="alice", password="correct horse") as c:
            assert c.nick == "alice"


async def test_failed_logins_are_delayed_then_forgiven(
    server: anychat.Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="anychat.server")
    with anyio.fail_after(20):
        async with anychat.connect(*server.address, nick="alice") as alice:
            await alice.register("correct horse")
        for _ in range(3):
            with pytest.raises(LoginFailed):
                async with anychat.connect(*server.address, nick="alice", password="nope nope"):
                    pass
        async with anychat.connect(*server.address, nick="alice", password="correct horse"):
            pass
    delays = [r.getMessage() for r in caplog.records if "delaying login" in r.getMessage()]
    assert len(delays) == 3  # the 2nd, 3rd failure and the successful login were slowed
    assert "by 0.01 s" in delays[0]
    assert "by 0.02 s" in delays[1]
    assert "by 0.04 s" in delays[2]
    assert not any("nope" in r.getMessage() for r in caplog.records)


def test_throttle_grows_caps_and_resets_per_address() -> None:
    now = [0.0]
    throttle = LoginThrottle(
        base_seconds=1, cap_seconds=8, forget_seconds=100, clock=lambda: now[0]
    )
    assert throttle.delay("1.2.3.4") == 0
    delays = []
    for _ in range(6):
        throttle.failed("1.2.3.4")
        delays.append(throttle.delay("1.2.3.4"))
    assert delays == [1, 2, 4, 8, 8, 8]
    assert throttle.delay("5.5.5.5") == 0  # another address (the owner's) is not slowed
    throttle.succeeded("1.2.3.4")
    assert throttle.delay("1.2.3.4") == 0
    throttle.failed("7.7.7.7")
    now[0] = 101.0
    assert throttle.delay("7.7.7.7") == 0  # never a permanent lockout


def test_account_gate_allows_one_check_per_interval_whoever_asks() -> None:
    now = [0.0]
    gate = AccountGate(interval_seconds=1.0, clock=lambda: now[0])
    started = 0
    waits: list[float] = []
    # 200 parallel guessers polling every 10 ms for 5 seconds, as the services' loop would.
    for tick in range(500):
        now[0] = tick / 100
        for _ in range(200):
            wait = gate.try_start("Victim")
            if not wait:
                started += 1
            else:
                waits.append(wait)
    assert started == 5  # one per second, not 200 per second
    assert max(waits) <= 1.0
    assert gate.try_start("someone-else") == 0.0  # other accounts are not held up
