"""The test Redis is the test's own: a fresh server on a free port that restarts empty."""

from __future__ import annotations

import socket

from .redis_server import RedisServer


def _command(port: int, *words: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall((" ".join(words) + "\r\n").encode())
        return sock.recv(256)


def test_own_server_on_its_own_port_restarts_empty(redis: RedisServer) -> None:
    assert redis.port != 6379
    assert _command(redis.port, "SET", "k", "v") == b"+OK\r\n"
    assert _command(redis.port, "GET", "k") == b"$1\r\nv\r\n"
    redis.restart()
    assert _command(redis.port, "GET", "k") == b"$-1\r\n"
    redis.stop()
    try:
        _command(redis.port, "PING")
    except OSError:
        pass
    else:
        raise AssertionError("a stopped Redis still answers")
