"""Task groups wrap every exception in an ExceptionGroup; our context managers unwrap one.

``async with anychat.connect(...)`` and ``anychat.serve(...)`` run a task group around the
caller's block. Without this, a ``NickInUse`` or the caller's own ``KeyError`` would surface as an
``ExceptionGroup`` with one member, which no caller expects from a connect call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["unwrap_single"]


@contextmanager
def unwrap_single() -> Iterator[None]:
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = group.exceptions
        while len(leaves) == 1 and isinstance(leaves[0], BaseExceptionGroup):
            leaves = leaves[0].exceptions
        if len(leaves) == 1:
            raise leaves[0] from leaves[0].__cause__
        raise
