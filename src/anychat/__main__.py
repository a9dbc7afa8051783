"""``python -m anychat``: the same as the ``anychat`` command."""

from __future__ import annotations

from .cli import main

main()
