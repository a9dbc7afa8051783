"""``anychat chat``: the terminal client (a prompt in line mode, or a window per room).

- :mod:`.app`: the two ways to run (interactive prompt, piped stdin) and the prompt itself.
- :mod:`.session`: one chat over reconnects, typed lines turned into client calls.
- :mod:`.render`: what the server says, drawn as formatted text made safe first.
- :mod:`.login`: saved token first, then a password asked for.
- :mod:`.tokenfile`: where tokens are kept between runs (owner-only).

The slash-command grammar is :mod:`anychat.commands`, shared with the plain-text codec.
"""

from __future__ import annotations

from .app import run_chat

__all__ = ["run_chat"]
