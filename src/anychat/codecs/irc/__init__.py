"""The server side of the IRC client protocol, as a subpackage of small modules with one job each.

- :mod:`.parse`: line syntax (tags, source, command, parameters) and back.
- :mod:`.state`: what one connection remembers; every change to it happens there.
- :mod:`.wire`: how lines to one client are spelled (server name, masks, numerics).
- :mod:`.codec`: :class:`IrcCodec` (feed/encode), registration, CAP and SASL.
- :mod:`.commands`: the commands of a registered client.
- :mod:`.render`: events as lines, pure (reads the state, never writes it).
- :mod:`.sasl`: the SASL PLAIN exchange.
"""

from __future__ import annotations

from .codec import CAPABILITIES, DEFAULT_IRC_LINE_BYTES, IrcCodec

__all__ = ["CAPABILITIES", "DEFAULT_IRC_LINE_BYTES", "IrcCodec"]
