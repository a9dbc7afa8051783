"""The web page's files, read once from package data and kept ready to send.

Serving a request must not touch the disk (a slow disk would stall the event loop for every
client), so :func:`load_assets` reads every file under ``anychat/web/static/`` once, at first
use, and precomputes what each response needs: the content type, a strong ``ETag`` (a hash of the
bytes, so it changes exactly when the file does) and, for text that shrinks enough, a gzip body
compressed once at the highest level. The HTTP codec only looks things up in the resulting
:class:`Assets`; this module is the only part of the web codec that reads files, and nothing
here runs per request.

Whatever files exist in the folder are served, under their path relative to it (``app.js`` at
``/app.js``), with ``index.html`` also at ``/``. Names starting with a dot and Python files are
skipped, so editor droppings and a package ``__init__.py`` never leak.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import mimetypes
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Final

__all__ = ["Asset", "Assets", "default_assets", "load_assets"]

#: Content types by extension. Text types say their charset: without it a browser may guess.
_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
}
_COMPRESSIBLE: Final = ("text/", "application/json", "application/manifest+json", "image/svg+xml")
#: Smaller files gain too little from gzip to pay for the header and the client's inflating.
_GZIP_MIN_BYTES: Final = 256
#: Keep the gzip body only if it saves at least this share of the bytes.
_GZIP_MIN_SAVING: Final = 0.1

#: Served at ``/`` when the package has no ``index.html`` (a source tree without the page).
_NO_PAGE: Final = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>anychat</title></head>
<body><h1>anychat</h1><p>This server is running, but its web page is not installed.
Connect with <code>nc</code>, an IRC client or <code>anychat chat</code>.</p></body></html>
"""


@dataclass(frozen=True, slots=True)
class Asset:
    """One file, ready to send: body, type, validator, and the gzip variant if it pays."""

    body: bytes
    content_type: str
    etag: str
    gzip_body: bytes | None = None

    @property
    def gzip_etag(self) -> str:
        """A different strong tag for the gzip body: RFC 9110 §8.8.3 wants one per
        representation, or a cache could hand gzip bytes to a client that cannot read them."""
        return self.etag[:-1] + '-gz"'

    @property
    def compressible(self) -> bool:
        return self.gzip_body is not None


def _etag(body: bytes) -> str:
    digest = hashlib.sha256(body).digest()[:15]
    return '"' + base64.urlsafe_b64encode(digest).decode() + '"'


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    known = _TYPES.get(suffix)
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def make_asset(body: bytes, content_type: str) -> Asset:
    gzip_body = None
    if len(body) >= _GZIP_MIN_BYTES and content_type.startswith(_COMPRESSIBLE):
        # mtime=0: the same file always gives the same bytes (and the same tag) across restarts.
        squeezed = gzip.compress(body, compresslevel=9, mtime=0)
        if len(squeezed) <= len(body) * (1 - _GZIP_MIN_SAVING):
            gzip_body = squeezed
    return Asset(body=body, content_type=content_type, etag=_etag(body), gzip_body=gzip_body)


class Assets:
    """The files of the page by URL path (``/``, ``/app.js``...); immutable once built."""

    __slots__ = ("_by_path",)

    def __init__(self, files: Mapping[str, bytes]) -> None:
        by_path = {
            "/" + name.lstrip("/"): make_asset(body, content_type(name))
            for name, body in files.items()
        }
        index = by_path.get("/index.html")
        by_path["/"] = index or make_asset(_NO_PAGE, _TYPES[".html"])
        self._by_path: Mapping[str, Asset] = by_path

    def get(self, path: str) -> Asset | None:
        return self._by_path.get(path)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_path)

    def __len__(self) -> int:
        return len(self._by_path)


def _walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.is_file() and not entry.name.endswith((".py", ".pyc")):
            yield prefix + entry.name, entry.read_bytes()


def load_assets(folder: Traversable | Path | None = None) -> Assets:
    """Read every file under ``folder`` (default: the package's ``web/static``), once."""
    if folder is None:
        folder = resources.files("anychat").joinpath("web", "static")
    files = dict(_walk(folder, "")) if folder.is_dir() else {}
    return Assets(files)


@cache
def default_assets() -> Assets:
    """The package's page, loaded on first use and shared by every connection."""
    return load_assets()
