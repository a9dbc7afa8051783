"""A short coverage-guided run of every codec's fuzz target (atheris), as part of the suite.

A few thousand inputs per codec, from the seed lines: enough to catch a codec that raises on
something near real input. The long run (a million inputs per codec) is ``nox -s fuzz``.
Skipped where atheris is not installed (it has no wheel for every Python).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .targets import TARGETS

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris is not installed here"
)

ROOT = Path(__file__).parents[2]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("codec", sorted(TARGETS))
def test_short_fuzz_run_finds_nothing(codec: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", codec, "-runs=2000", "-max_len=128"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # libFuzzer may count a few runs past -runs (the inputs it was trying when it reached it).
    done = re.search(r"^Done (\d+) runs", result.stderr, re.MULTILINE)
    assert done is not None and int(done.group(1)) >= 2000, result.stderr[-4000:]
