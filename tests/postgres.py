"""A real PostgreSQL for the tests: a fresh database per run, a fresh schema per test.

The server is the one on 127.0.0.1:5432 (trust auth; ``.ci/run`` starts it when it is down), or
the admin URL in ``ANYCHAT_TEST_POSTGRES_URL``. The session creates a database with a unique name
and drops it at the end, so no test sees leftover state or another run's; each test gets its own
schema in it (selected with ``search_path`` in the URL it hands out), so tests do not see each
other's tables either. Without a reachable server (or without psycopg) the PostgreSQL tests skip
with the reason, except under CI (``CI`` set), where they fail: CI must run them.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

if TYPE_CHECKING:
    import psycopg

_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
)


def _unavailable(reason: str) -> None:
    message = (
        f"PostgreSQL tests need a server (127.0.0.1:5432 or ANYCHAT_TEST_POSTGRES_URL): {reason}"
    )
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


class PostgresServer:
    """The test database and an admin connection (to the ``postgres`` database) that can
    cut the store's connections and refuse new ones, to play an outage."""

    def __init__(self, admin_url: str, admin: psycopg.Connection[Any], dbname: str) -> None:
        self.admin_url = admin_url
        self.admin = admin
        self.dbname = dbname
        base, _, _ = admin_url.rpartition("/")
        self.base_url = f"{base}/{dbname}"
        self._schemas = itertools.count(1)

    def new_url(self) -> str:
        """The URL of a new, empty schema of the test database."""
        schema = f"t{next(self._schemas)}"
        with self._db() as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        return f"{self.base_url}?options={quote(f'-csearch_path={schema}')}"

    def _db(self) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self.base_url, autocommit=True)

    def backends(self) -> list[int]:
        rows = self.admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.dbname,),
        ).fetchall()
        return [int(row[0]) for row in rows]

    def terminate(self) -> int:
        """Kill every connection to the test database; returns once they are gone."""
        pids = self.backends()
        for pid in pids:
            self.admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while set(pids) & set(self.backends()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"backends {pids} still there after pg_terminate_backend")
            time.sleep(0.01)  # polling PostgreSQL for a fact, bounded by the deadline
        return len(pids)

    def refuse_connections(self, refuse: bool) -> None:
        """While refusing, nobody (superusers included) can connect to the test database."""
        allow = "false" if refuse else "true"
        self.admin.execute(f'ALTER DATABASE "{self.dbname}" ALLOW_CONNECTIONS {allow}')

    def query(self, url: str, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute(sql).fetchall()


def postgres_session() -> Iterator[PostgresServer]:
    """The body of the session fixture (see the module docstring)."""
    try:
        import psycopg
    except ImportError as exc:
        _unavailable(f"psycopg is not installed ({exc}; pip install 'anychat[cluster]')")
        raise
    env_url = os.environ.get("ANYCHAT_TEST_POSTGRES_URL")
    errors = []
    admin = None
    for url in (env_url,) if env_url else _CANDIDATES:
        try:
            admin = psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            errors.append(f"{url}: {str(exc).strip().splitlines()[0]}")
            continue
        break
    if admin is None:
        _unavailable("; ".join(errors))
        raise AssertionError("unreachable")
    dbname = f"anychat_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
        try:
            yield PostgresServer(url, admin, dbname)
        finally:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
            admin.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
