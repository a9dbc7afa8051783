"""The page's files: read once from a folder, typed, tagged and compressed ahead of time."""

from __future__ import annotations

import gzip
from pathlib import Path

from anychat.codecs.web.assets import Assets, default_assets, load_assets


def test_a_folder_is_served_by_relative_path(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>" * 20)
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "app.js").write_text("console.log(1);\n" * 40)
    (tmp_path / "style.css").write_text("a{}")
    (tmp_path / "icon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "font.woff2").write_bytes(b"wOF2" + bytes(100))
    (tmp_path / ".secret").write_text("editor swap")
    (tmp_path / "__init__.py").write_text("")
    assets = load_assets(tmp_path)
    assert sorted(assets) == [
        "/",
        "/font.woff2",
        "/icon.svg",
        "/index.html",
        "/js/app.js",
        "/style.css",
    ]
    types = {path: asset.content_type for path in assets if (asset := assets.get(path))}
    assert types["/"] == types["/index.html"] == "text/html; charset=utf-8"
    assert types["/js/app.js"] == "text/javascript; charset=utf-8"
    assert types["/style.css"] == "text/css; charset=utf-8"
    assert types["/icon.svg"] == "image/svg+xml"
    assert types["/font.woff2"] == "font/woff2"
    script = assets.get("/js/app.js")
    assert script is not None and script.gzip_body is not None
    assert gzip.decompress(script.gzip_body) == script.body
    tiny = assets.get("/style.css")
    assert tiny is not None and tiny.gzip_body is None  # too small to pay


def test_etags_are_strong_and_change_with_the_bytes() -> None:
    one = Assets({"a.txt": b"one" * 200}).get("/a.txt")
    same = Assets({"b.txt": b"one" * 200}).get("/b.txt")
    other = Assets({"a.txt": b"two" * 200}).get("/a.txt")
    assert one is not None and same is not None and other is not None
    assert one.etag == same.etag != other.etag
    assert one.etag.startswith('"') and one.etag.endswith('"') and not one.etag.startswith("W/")
    assert one.gzip_etag != one.etag and one.gzip_etag.endswith('-gz"')


def test_incompressible_text_keeps_no_gzip_body() -> None:
    noise = bytes((i * 7919 + 13) % 251 for i in range(4000))
    asset = Assets({"n.txt": noise.hex().encode()[:300]}).get("/n.txt")
    random_like = Assets({"r.bin": noise}).get("/r.bin")
    assert random_like is not None and random_like.gzip_body is None
    assert random_like.content_type == "application/octet-stream"
    assert asset is not None  # hex text does compress somewhat; either way it is served


def test_without_an_index_the_root_says_the_page_is_missing(tmp_path: Path) -> None:
    root = load_assets(tmp_path / "missing").get("/")
    assert root is not None and b"not installed" in root.body


def test_the_package_page_is_loaded_once() -> None:
    assert default_assets() is default_assets()
    package_index = Path(__file__).parents[2] / "src" / "anychat" / "web" / "static" / "index.html"
    root = default_assets().get("/")
    assert root is not None
    if package_index.is_file():
        assert root.body == package_index.read_bytes()
    else:
        assert b"not installed" in root.body
