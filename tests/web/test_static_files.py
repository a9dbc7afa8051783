"""The page's static files, read without a browser: what may never appear in them.

Every piece of text from other people must reach the page as text. The cheapest guarantee is
that the page's code has no way to turn a string into markup or code at all, so these names may
not appear in it (not even with data we made ourselves: a later edit would not notice the
difference). The page must also work under a Content-Security-Policy without 'unsafe-inline',
so index.html may hold no inline script, style or event handler attributes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import anychat

STATIC = Path(anychat.__file__).parent / "web" / "static"
SCRIPTS = sorted(STATIC.glob("*.js"))

FORBIDDEN_JS = {
    "innerHTML": re.compile(r"\binnerHTML\b"),
    "outerHTML": re.compile(r"\bouterHTML\b"),
    "insertAdjacentHTML": re.compile(r"\binsertAdjacentHTML\b"),
    "document.write": re.compile(r"\bdocument\s*\.\s*write(ln)?\b"),
    "eval": re.compile(r"(?<![\w.$])eval\s*\("),
    "new Function": re.compile(r"\bnew\s+Function\b"),
    "Function(": re.compile(r"(?<![\w.$])Function\s*\("),
    "setTimeout with a string": re.compile(r"\bset(Timeout|Interval)\s*\(\s*['\"`]"),
    "createContextualFragment": re.compile(r"\bcreateContextualFragment\b"),
    "DOMParser": re.compile(r"\bDOMParser\b"),
    "srcdoc": re.compile(r"\bsrcdoc\b"),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def test_the_page_ships_its_files() -> None:
    for name in ("index.html", "app.js", "style.css"):
        assert (STATIC / name).is_file(), name
    assert len(SCRIPTS) >= 5  # small modules, not one huge file


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_no_html_or_code_from_strings(script: Path) -> None:
    source = script.read_text(encoding="utf-8")
    found = [name for name, pattern in FORBIDDEN_JS.items() if pattern.search(source)]
    assert found == [], f"{script.name} uses {found}"


def test_the_forbidden_patterns_catch_what_they_name() -> None:
    """The check above must not pass by being blind: each pattern finds its sink."""
    samples = {
        "innerHTML": "node.innerHTML = text",
        "outerHTML": "x.outerHTML",
        "insertAdjacentHTML": "n.insertAdjacentHTML('beforeend', s)",
        "document.write": "document.write(s)",
        "eval": "const f = eval(code)",
        "new Function": "new Function('return 1')",
        "Function(": "Function('return 1')()",
        "setTimeout with a string": "setTimeout('alert(1)', 10)",
        "createContextualFragment": "range.createContextualFragment(s)",
        "DOMParser": "new DOMParser()",
        "srcdoc": "frame.srcdoc = s",
        "javascript: URL": "a.href = 'JavaScript:alert(1)'",
    }
    assert samples.keys() == FORBIDDEN_JS.keys()
    for name, sample in samples.items():
        assert FORBIDDEN_JS[name].search(sample), name
    assert not FORBIDDEN_JS["eval"].search("retrieval(x); medieval (y)")


def test_index_html_has_no_inline_script_or_style() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    for tag in re.findall(r"<script\b[^>]*>", html, re.IGNORECASE):
        assert "src=" in tag, tag  # no inline script body
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html, re.IGNORECASE)
    assert not re.search(r"<style\b", html, re.IGNORECASE)
    assert not re.search(r"\sstyle\s*=", html, re.IGNORECASE)
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)
