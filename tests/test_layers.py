"""The layering rules the architecture promises, checked rather than trusted.

Codecs, the model and the broker are pure: they must import (and work) where no I/O library is
installed, which is what lets a blocking script, another event loop or a fuzzer use them alone.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: Libraries that do I/O or own an event loop; none may be imported by the pure layers.
IO_LIBRARIES = ("anyio", "trio", "sniffio", "asyncio", "uvloop", "sqlite3", "socket", "ssl")

_PROBE = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys

    BLOCKED = set(sys.argv[1].split(","))

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the pure layers must not need it")
            return None

    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]
    sys.meta_path.insert(0, Block())

    import anychat.codecs, anychat.model, anychat.broker, anychat.commands, anychat.safetext
    import anychat.bus, anychat.bus.local, anychat.bus.directory, anychat.bus.wire
    for info in pkgutil.walk_packages(anychat.codecs.__path__, "anychat.codecs."):
        importlib.import_module(info.name)

    from anychat import model as m
    from anychat.broker import Broker
    from anychat.codecs.jsonl import JsonServerCodec

    broker = Broker()
    broker.connect("peer")
    codec = JsonServerCodec()
    (hello,) = codec.feed(b'{"type":"hello","nick":"ada"}\\n')
    effects = broker.handle("peer", hello)
    print("ok", len(effects), type(hello).__name__)
    """
)


def test_codecs_model_and_broker_import_without_io_libraries() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(IO_LIBRARIES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok "), result.stdout


def test_the_package_root_still_offers_the_whole_api_lazily() -> None:
    import anychat

    for name in anychat.__all__:
        assert getattr(anychat, name) is not None


def _import_graph() -> dict[str, set[str]]:
    """Module -> the anychat modules it imports, type-only imports included."""
    import ast
    from pathlib import Path

    import anychat

    root = Path(anychat.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        package = parts if is_package else parts[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("anychat"))
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
                if not module.startswith("anychat"):
                    continue
                targets.add(module)
                targets.update(f"{module}.{a.name}" for a in node.names)
        graph[name] = targets
    return {
        name: {t for t in targets if t in graph and t != name} for name, targets in graph.items()
    }


def test_no_import_cycles() -> None:
    """A package's ``__init__`` re-exporting its own modules is not a cycle worth reporting."""
    graph = _import_graph()
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_is_too_long_to_hold_in_mind() -> None:
    from pathlib import Path

    import anychat

    root = Path(anychat.__file__).parent
    long = {
        str(p.relative_to(root)): n
        for p in root.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 700
    }
    assert not long, long
