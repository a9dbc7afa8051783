"""Coverage-guided fuzzing of one codec on atheris (libFuzzer): ``python -m tests.fuzz.run CODEC``.

Arguments after the codec name go to libFuzzer (``-runs=1000000``, ``-max_total_time=600``,
``-max_len=4096``). The run starts from the seed lines in ``tests/fuzz/seeds/`` (real protocol
lines of every codec, so mutations start from something a server actually parses), copied into a
scratch corpus so nothing the fuzzer finds is written into the repository. A crash prints the
input that caused it and exits non-zero; ``python -m tests.fuzz.run CODEC crash-file`` replays it.

Codecs: ``text``, ``jsonl``, ``irc``, ``irc-registered`` (the IRC codec past registration) and
``json-client`` (the client side of JSON lines).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

SEEDS = Path(__file__).with_name("seeds")


def main(argv: list[str]) -> None:
    import atheris

    if len(argv) < 2:
        raise SystemExit(f"usage: {argv[0]} CODEC [libFuzzer options]")
    name, options = argv[1], argv[2:]
    with atheris.instrument_imports(include=["anychat"]):
        from tests.fuzz.targets import TARGETS
    target = TARGETS.get(name)
    if target is None:
        raise SystemExit(f"unknown codec {name!r}; one of {', '.join(TARGETS)}")
    replay = [o for o in options if not o.startswith("-")]
    corpus = None
    if not replay:
        corpus = tempfile.mkdtemp(prefix=f"anychat-fuzz-{name}-")
        for seed in SEEDS.glob("*.txt"):
            shutil.copy(seed, corpus)
        options = [*options, corpus]
    try:
        atheris.Setup([argv[0], *options], target)
        atheris.Fuzz()
    finally:
        if corpus is not None:
            shutil.rmtree(corpus, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
