"""The fault suite runs only when asked (``nox -s faults`` sets ANYCHAT_FAULTS=1): it kills
servers repeatedly and mounts file systems, which takes minutes and, for the mounts, root."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("ANYCHAT_FAULTS") == "1":
        return
    skip = pytest.mark.skip(reason="fault suite: run with `nox -s faults` (ANYCHAT_FAULTS=1)")
    for item in items:
        if "tests/faults/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(skip)
