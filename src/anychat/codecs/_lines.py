"""Splitting a byte stream into lines, with a hard bound on how much one line may buffer."""

from __future__ import annotations

from .. import model as m

__all__ = ["NOT_UTF8", "LineBuffer"]

#: What a line-based codec answers for a line that is not UTF-8 (the same words everywhere).
NOT_UTF8 = m.Invalid(code=m.ErrorCode.INVALID_UTF8, text="line was not valid UTF-8")


class LineBuffer:
    """Turns chunks of bytes into complete lines (LF or CRLF), without the terminator.

    A line longer than ``max_line_bytes`` is not buffered: it becomes one ``None`` in the output
    (so the codec can answer with an error) and everything up to the next newline is dropped.
    Buffered memory per connection is therefore bounded by ``max_line_bytes`` plus one chunk.
    """

    __slots__ = ("_discarding", "_pending", "max_line_bytes")

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._pending = b""
        self._discarding = False

    def too_long(self) -> m.Invalid:
        """The answer for a line past the limit (each ``None`` that :meth:`feed` returns)."""
        return m.Invalid(
            code=m.ErrorCode.LINE_TOO_LONG,
            text=f"line longer than {self.max_line_bytes} bytes was dropped",
        )

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete line waiting for its newline."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes | None]:
        if self._pending:
            data = self._pending + data
        parts = data.split(b"\n")
        rest = parts.pop()
        limit = self.max_line_bytes
        lines: list[bytes | None] = []
        if self._discarding and parts:
            # The first complete part is the tail of a line we already reported as too long.
            self._discarding = False
            del parts[0]
        for line in parts:
            if line.endswith(b"\r"):
                line = line[:-1]
            lines.append(line if len(line) <= limit else None)
        if self._discarding:
            rest = b""
        elif len(rest) > limit + rest.endswith(b"\r"):
            # (A CR at the very end may be half of the CRLF, which does not count.)
            lines.append(None)
            self._discarding = True
            rest = b""
        self._pending = rest
        return lines
