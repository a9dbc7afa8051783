"""Developer tasks: ``nox`` runs tests on both backends, lint, type check and the examples."""

from __future__ import annotations

import nox

PYPROJECT = nox.project.load_toml("pyproject.toml")
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = False


def install(session: nox.Session, *groups: str, extras: str = "", package: bool = True) -> None:
    if package:
        session.install("-e", f".[{extras}]" if extras else ".")
    session.install(*nox.project.dependency_groups(PYPROJECT, *groups))


@nox.session
@nox.parametrize("backend", ["asyncio", "trio"])
def tests(session: nox.Session, backend: str) -> None:
    """The test suite with every async test on one backend family (the examples included).

    The asyncio run covers plain asyncio and asyncio on uvloop.
    """
    # The tls extra: the --tls-self-signed tests run the server as a user who installed it.
    install(session, "test", extras="uvloop,tls" if backend == "asyncio" else "tls")
    session.env["ANYCHAT_BACKENDS"] = "asyncio,uvloop" if backend == "asyncio" else backend
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    install(session, "lint", package=False)
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    install(session, "typecheck", extras="uvloop")
    session.run("mypy")


@nox.session
def examples(session: nox.Session) -> None:
    """Only the example programs, on both backends."""
    install(session, "test")
    session.run("pytest", "tests/test_examples.py", *session.posargs)


@nox.session
def irssi(session: nox.Session) -> None:
    """Opt-in: a real irssi, driven through tmux, chats and logs in with SASL.

    Needs Debian's irssi and tmux (``apt-get install irssi tmux``); not in the default run.
    """
    install(session, "test")
    session.env["ANYCHAT_IRSSI_SMOKE"] = "1"
    session.run("pytest", "tests/test_irssi_smoke.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Opt-in: the benchmark against the tutorial server, ngircd and InspIRCd (each skipped with
    a note when not installed: ``apt-get install ngircd inspircd``).

    Pass arguments through: ``nox -s bench -- --quick``, or regenerate the tables in
    docs/performance.md and the README: ``nox -s bench -- --json results.json --write-docs``.
    """
    install(session, "bench", extras="uvloop")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def weechat(session: nox.Session) -> None:
    """Opt-in: a real weechat (headless) joins, is made an operator, and reads a message.

    Needs Debian's weechat-headless (``apt-get install weechat-headless``); not in the default run.
    """
    install(session, "test")
    session.env["ANYCHAT_WEECHAT_SMOKE"] = "1"
    session.run("pytest", "tests/test_weechat_smoke.py", *session.posargs)
