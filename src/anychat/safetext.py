"""Text from other people, made harmless to show on a terminal: the one sanitiser of anychat.

Everything a user chose (messages, topics, away texts, quit reasons) may carry characters that
act instead of showing: C0 and C1 controls (so ESC and the one-byte CSI, which start every
terminal escape sequence: clearing the screen, retitling the window, faking a prompt), DEL,
bidirectional overrides and isolates (they reorder what follows, so a line reads differently
from what was sent) and the Unicode line and paragraph separators (a second line that looks as
if someone else wrote it). Each becomes U+FFFD, a visible mark, so nothing is silently dropped
and the reader can see that something was there.

The plain-text codec, the terminal client and :attr:`anychat.Message.safe_text` all use
:func:`safe_text`, so what an ``nc`` user, a terminal user and a bot author see is the same.
IRC keeps its own, narrower rule (no line breaks or NULs inside a line), because IRC clients
render mIRC formatting controls themselves and their users send them on purpose.

Pure: no imports beyond the standard library.
"""

from __future__ import annotations

from typing import Final

__all__ = ["REPLACEMENT", "UNSAFE_CODEPOINTS", "safe_text"]

REPLACEMENT: Final = "\N{REPLACEMENT CHARACTER}"

#: Code points that never reach a screen as themselves.
UNSAFE_CODEPOINTS: Final = frozenset(
    [
        *range(0x00, 0x20),  # C0 controls (ESC, BEL, BS, CR, LF...)
        *range(0x7F, 0xA0),  # DEL and the C1 controls (CSI 0x9B, OSC 0x9D...)
        *range(0x202A, 0x202F),  # LRE RLE PDF LRO RLO: embeddings and overrides
        *range(0x2066, 0x206A),  # LRI RLI FSI PDI: isolates
        0x061C,  # ARABIC LETTER MARK: a directional mark that can hide in names
        0x2028,  # LINE SEPARATOR
        0x2029,  # PARAGRAPH SEPARATOR
    ]
)
_TABLE: Final = dict.fromkeys(UNSAFE_CODEPOINTS, REPLACEMENT)


def safe_text(text: str) -> str:
    """``text`` with every character in :data:`UNSAFE_CODEPOINTS` replaced by U+FFFD."""
    return text.translate(_TABLE)
