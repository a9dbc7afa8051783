"""anychat: a real-time chat server and client library on AnyIO (asyncio or trio)."""

from __future__ import annotations

__version__ = "0.1.0"
