"""The web codec: the page over HTTP/1.1 and the chat over WebSocket, on the main port.

:class:`~.http.WebCodec` is what a connection that starts with an HTTP request line gets. It is
sans-IO like every codec (h11 and wsproto are too): bytes in, replies and commands out. The page's
files are read once by :mod:`.assets`; :mod:`.origin` decides who may open a WebSocket;
:mod:`.websocket` carries JSON lines in text frames, framed by :mod:`.frames`.
"""

from __future__ import annotations

from .http import WS_PATH, WebCodec

__all__ = ["WS_PATH", "WebCodec"]
