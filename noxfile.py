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
    try:  # the short fuzz runs skip where atheris has no wheel
        session.install(*nox.project.dependency_groups(PYPROJECT, "fuzz"))
    except nox.command.CommandFailed:
        session.log("atheris is not installable on this Python: the short fuzz runs skip")
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
def fuzz(session: nox.Session) -> None:
    """Opt-in: coverage-guided fuzzing of every codec, a million inputs each (atheris).

    ``nox -s fuzz -- -runs=10000`` for a shorter run; other libFuzzer options pass through.
    A crash stops the run with the input that caused it (replay: ``python -m tests.fuzz.run
    CODEC crash-FILE``). docs/security.md records the last full run.
    """
    install(session, "fuzz")
    options = session.posargs or ["-runs=1000000"]
    for codec, max_len in FUZZ_TARGETS.items():
        session.run("python", "-m", "tests.fuzz.run", codec, f"-max_len={max_len}", *options)


#: Each fuzz target and the longest input it gets (short inputs: more of them per second; the
#: targets use small line limits, so the over-long-line paths are still reached).
FUZZ_TARGETS = {"text": 64, "jsonl": 128, "irc": 64, "irc-registered": 64, "json-client": 128}


@nox.session
def faults(session: nox.Session) -> None:
    """Opt-in: the fault suite (tests/faults/): SIGKILL under load with every ack checked, a
    full disk, a read-only file system, the database directory removed, store-thread bugs.

    The disk and file-system cases mount a small tmpfs and need root; without it they fall
    back to ``RLIMIT_FSIZE`` or skip, saying why.
    """
    install(session, "test")
    session.env["ANYCHAT_FAULTS"] = "1"
    session.run(
        "pytest",
        "tests/faults",
        "tests/test_store_faults.py",
        "tests/test_resend.py",
        *session.posargs,
    )


@nox.session
def weechat(session: nox.Session) -> None:
    """Opt-in: a real weechat (headless) joins, is made an operator, and reads a message.

    Needs Debian's weechat-headless (``apt-get install weechat-headless``); not in the default run.
    """
    install(session, "test")
    session.env["ANYCHAT_WEECHAT_SMOKE"] = "1"
    session.run("pytest", "tests/test_weechat_smoke.py", *session.posargs)
