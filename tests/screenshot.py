"""Render a pyte screen as SVG: the README's picture of the terminal client is what a test saw.

Each cell keeps its character, colours, bold and reverse video; runs of cells with the same
look become one ``<text>`` element. No font or image library is needed, and the picture scales.
"""

from __future__ import annotations

from typing import Final
from xml.sax.saxutils import escape

import pyte

__all__ = ["svg_of"]

#: A dark theme (the xterm palette, softened).
_PALETTE: Final = {
    "black": "#2e3436",
    "red": "#cc0000",
    "green": "#4e9a06",
    "brown": "#c4a000",
    "blue": "#3465a4",
    "magenta": "#75507b",
    "cyan": "#06989a",
    "white": "#d3d7cf",
    "brightblack": "#888a85",
    "brightred": "#ef2929",
    "brightgreen": "#8ae234",
    "brightbrown": "#fce94f",
    "brightblue": "#729fcf",
    "brightmagenta": "#ad7fa8",
    "brightcyan": "#34e2e2",
    "brightwhite": "#eeeeec",
}
_FOREGROUND: Final = "#d3d7cf"
_BACKGROUND: Final = "#1e1e1e"
CELL_WIDTH: Final = 8.4
CELL_HEIGHT: Final = 17.0


def _colour(name: str, default: str) -> str:
    if name == "default":
        return default
    if len(name) == 6 and all(c in "0123456789abcdefABCDEF" for c in name):
        return f"#{name}"
    return _PALETTE.get(name, default)


def svg_of(screen: pyte.Screen) -> str:
    width, height = screen.columns * CELL_WIDTH, screen.lines * CELL_HEIGHT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height:.1f}" font-family="DejaVu Sans Mono, Menlo, '
        f'Consolas, monospace" font-size="14px">',
        f'<rect width="100%" height="100%" fill="{_BACKGROUND}"/>',
    ]
    for y in range(screen.lines):
        row = screen.buffer[y]
        x = 0
        while x < screen.columns:
            cell = row[x]
            look = (cell.fg, cell.bg, cell.bold, cell.reverse)
            end = x + 1
            while end < screen.columns and (
                (row[end].fg, row[end].bg, row[end].bold, row[end].reverse) == look
            ):
                end += 1
            fg = _colour(cell.fg, _FOREGROUND)
            bg = _colour(cell.bg, _BACKGROUND)
            if cell.reverse:
                fg, bg = bg, fg
            left, top = x * CELL_WIDTH, y * CELL_HEIGHT
            if bg != _BACKGROUND:
                out.append(
                    f'<rect x="{left:.1f}" y="{top:.1f}" width="{(end - x) * CELL_WIDTH:.1f}" '
                    f'height="{CELL_HEIGHT:.1f}" fill="{bg}"/>'
                )
            text = "".join(row[i].data for i in range(x, end))
            if text.strip():
                weight = ' font-weight="bold"' if cell.bold else ""
                out.append(
                    f'<text x="{left:.1f}" y="{top + CELL_HEIGHT * 0.78:.1f}" fill="{fg}"'
                    f'{weight} xml:space="preserve" textLength="{(end - x) * CELL_WIDTH:.1f}" '
                    f'lengthAdjust="spacingAndGlyphs">{escape(text)}</text>'
                )
            x = end
    out.append("</svg>")
    return "\n".join(out) + "\n"
