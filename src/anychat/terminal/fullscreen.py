"""The full-screen terminal client: a window per room and per private chat.

::

    #general: release on friday                                   ada on 127.0.0.1:3000
     1 #general    | 12:01 <bob> morning                               | ada
     2 #rust (3)   | 12:02 * carol waves                               | bob
     3 dave [1]    | 12:03 <ada> hi all                                | carol
    #general ada> _

The title line shows the current window's topic; the left column lists the windows with unread
counts (``(3)``) and a mark for a mention of your nick (``[1]``, highlighted); the right column
the room's members. Each window keeps its own scrollback: PgUp/PgDn scroll it, and scrolling
past its top loads earlier messages from the server; entering a private chat for the first time
loads its history. Alt+1..9 and Ctrl+N/Ctrl+P switch windows, as ``/join #room`` does (and a
message from a new nick opens a window for it). Plain lines go to the current window, a room or
the nick of a private chat.

It is prompt_toolkit's full-screen layout over the same :class:`~.session.ChatSession` as the
line mode: the session hands each line with the chats it belongs to (``where``), and this module
only files it into windows and draws them. Everything drawn went through :func:`~.render.safe`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Final

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream
from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import Completer
from prompt_toolkit.data_structures import Point
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples, fragment_list_to_text
from prompt_toolkit.history import History
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import HSplit, Layout, VSplit, Window
from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
from prompt_toolkit.layout.processors import BeforeInput, ConditionalProcessor, PasswordProcessor
from prompt_toolkit.styles import Style

from .. import model as m
from ..commands import is_secret, parse_line
from ..errors import ChatError
from .render import LINE_STYLES, message_line, notice, safe
from .session import ChatSession, LineKind

__all__ = ["ChatWindow", "FullScreen", "WindowSink"]

#: Lines kept per window; older ones are dropped (``/history`` or PgUp fetch them again).
MAX_LINES: Final = 5000
#: Messages fetched when entering a private chat or scrolling past the top of a window.
EARLIER_PAGE: Final = 50
ROOM_COLUMN: Final = 18
MEMBER_COLUMN: Final = 16

STYLE: Final = Style.from_dict(
    {
        "title": "reverse",
        "title.topic": "reverse bold",
        "column": "",
        "column.current": "reverse",
        "column.unread": "bold",
        "column.mention": "ansiyellow bold",
        "separator": "ansibrightblack",
        "more": "ansibrightblack reverse",
        **LINE_STYLES,
    }
)


@dataclasses.dataclass(eq=False)
class ChatWindow:
    """One room or private chat: its scrollback and what the user has not read yet."""

    name: str
    lines: list[StyleAndTextTuples] = dataclasses.field(default_factory=list)
    #: Messages arrived while another window was shown, and whether one named us.
    unread: int = 0
    mentioned: bool = False
    #: The lowest message id shown, so earlier pages continue from it.
    first_id: int = 0
    #: Every earlier message has been fetched (the server returned a short page).
    complete: bool = False
    #: History was fetched on entering (private chats) or replayed on joining (rooms).
    entered: bool = False
    #: Lines scrolled back from the bottom (0 = following new lines).
    offset: int = 0

    @property
    def is_room(self) -> bool:
        return m.is_room(self.name)

    def add(self, line: StyleAndTextTuples, msg_id: int = 0) -> None:
        self.lines.append(line)
        if msg_id and (not self.first_id or msg_id < self.first_id):
            self.first_id = msg_id
        if self.offset:
            self.offset += 1  # keep the same lines on screen while scrolled back
        del self.lines[:-MAX_LINES]


class WindowSink:
    """Files the session's lines into windows (the :class:`~.session.Sink` of this mode)."""

    def __init__(self, me: Callable[[], str]) -> None:
        self._me = me
        self.windows: list[ChatWindow] = []
        self.current: ChatWindow | None = None
        #: Called after every change, to redraw.
        self.changed: Callable[[], None] = lambda: None

    def find(self, name: str) -> ChatWindow | None:
        key = m.casefold(name)
        for window in self.windows:
            if m.casefold(window.name) == key:
                return window
        return None

    def window(self, name: str) -> ChatWindow:
        """The window of ``name``, opened (at the end of the list) if there is none yet."""
        found = self.find(name)
        if found is None:
            found = ChatWindow(name)
            self.windows.append(found)
            if self.current is None:
                self.current = found
        return found

    def select(self, window: ChatWindow) -> None:
        self.current = window
        window.unread = 0
        window.mentioned = False
        self.changed()

    def close(self, window: ChatWindow) -> None:
        self.windows.remove(window)
        if self.current is window:
            self.current = self.windows[-1] if self.windows else None
        self.changed()

    def show(
        self,
        line: StyleAndTextTuples,
        kind: LineKind = "info",
        where: tuple[str, ...] = (),
        msg_id: int = 0,
    ) -> None:
        targets = [self.window(name) for name in where] if where else [self._current()]
        for window in targets:
            window.add(line, msg_id)
            if window is not self.current and kind == "message":
                window.unread += 1
                window.mentioned |= self._mentions_me(line)
        self.changed()

    def problem(self, line: StyleAndTextTuples) -> None:
        self._current().add(line)
        self.changed()

    def _current(self) -> ChatWindow:
        if self.current is None:
            self.current = self.window("(server)")
        return self.current

    def _mentions_me(self, line: StyleAndTextTuples) -> bool:
        me = self._me()
        if not me:
            return False
        text = fragment_list_to_text(line)
        # The message text follows the sender: "<bob> hi ada" or "* bob waves at ada".
        said = text.split("> ", 1)[1] if "> " in text else text
        return re.search(rf"(?<![\w-]){re.escape(me)}(?![\w-])", said, re.IGNORECASE) is not None


class FullScreen:
    """The application: layout, keys, and the bridge from typed lines to the session."""

    def __init__(
        self,
        chat: ChatSession,
        sink: WindowSink,
        lines: MemoryObjectSendStream[str],
        tg: TaskGroup,
        *,
        completer: Completer,
        history: History,
        quiet: Input | None,
    ) -> None:
        self.chat = chat
        self.sink = sink
        self._lines = lines
        self._tg = tg
        for room in chat.rooms:  # the rooms of the command line, in order
            sink.window(room).entered = True
        if chat.room is not None:
            sink.select(sink.window(chat.room))
        self.buffer = Buffer(
            multiline=False,
            accept_handler=self._accept,
            completer=completer,
            complete_while_typing=False,
            history=history,
        )
        secret = Condition(lambda: is_secret(self.buffer.text))
        prompt = BufferControl(
            self.buffer,
            input_processors=[
                BeforeInput(self._prompt),
                ConditionalProcessor(PasswordProcessor(), secret),
            ],
        )
        body = VSplit(
            [
                Window(FormattedTextControl(self._window_list), width=ROOM_COLUMN),
                Window(width=1, char="│", style="class:separator"),
                Window(
                    # The (hidden) cursor sits on the last line drawn, so the window scrolls
                    # to keep it in view: the newest lines, or where PgUp stopped.
                    FormattedTextControl(
                        self._scrollback, get_cursor_position=lambda: Point(0, self._last_row)
                    ),
                    wrap_lines=True,
                    always_hide_cursor=True,
                ),
                Window(width=1, char="│", style="class:separator"),
                Window(FormattedTextControl(self._members), width=MEMBER_COLUMN),
            ]
        )
        root = HSplit(
            [
                Window(FormattedTextControl(self._title), height=1, style="class:title"),
                body,
                Window(prompt, height=1),
            ]
        )
        self.app: Application[None] = Application(
            layout=Layout(root, focused_element=prompt),
            key_bindings=self._keys(),
            style=STYLE,
            full_screen=True,
            input=quiet,
            mouse_support=False,
        )
        sink.changed = self.app.invalidate

    # ------------------------------------------------------------------ drawing

    def _title(self) -> StyleAndTextTuples:
        window = self.sink.current
        left: StyleAndTextTuples = []
        if window is None:
            left.append(("class:title", " anychat"))
        elif window.is_room:
            client = self.chat.client
            topic = client.topics.get(m.casefold(window.name)) if client is not None else None
            left.append(("class:title.topic", f" {safe(window.name)}"))
            text = safe(topic.text) if topic is not None and topic.text else "(no topic)"
            left.append(("class:title", f": {text}"))
        else:
            left.append(("class:title.topic", f" private chat with {safe(window.name)}"))
        state = "" if self.chat.client is not None else " (offline)"
        right = f"{safe(self.chat.me)} on {safe(self.chat.host)}:{self.chat.port}{state} "
        width = self.app.output.get_size().columns
        used = len(fragment_list_to_text(left))
        return [*left, ("class:title", " " * max(1, width - used - len(right)) + right)]

    def _window_list(self) -> StyleAndTextTuples:
        out: StyleAndTextTuples = []
        for number, window in enumerate(self.sink.windows, start=1):
            label = f"{number:>2} {safe(window.name)}"
            if window.mentioned:
                label += f" [{window.unread}]"
                style = "class:column.mention"
            elif window.unread:
                label += f" ({window.unread})"
                style = "class:column.unread"
            else:
                style = "class:column"
            if window is self.sink.current:
                style = "class:column.current"
            out.append((style, label[: ROOM_COLUMN - 1].ljust(ROOM_COLUMN - 1) + "\n"))
        return out

    def _scrollback(self) -> StyleAndTextTuples:
        window = self.sink.current
        if window is None:
            return []
        end = len(window.lines) - window.offset
        out: StyleAndTextTuples = []
        for line in window.lines[:end]:
            out += line
            out.append(("", "\n"))
        if window.offset:
            out.append(("class:more", f" -- {window.offset} more below (PgDn) -- "))
        elif out:
            out.pop()  # no empty line under the last one
        self._last_row = sum(text.count("\n") for _, text, *_ in out)
        return out

    _last_row = 0

    def _members(self) -> StyleAndTextTuples:
        window = self.sink.current
        if window is None:
            return []
        if not window.is_room:
            nicks = [window.name, self.chat.me]
        else:
            key = m.casefold(window.name)
            found = [n for room, n in self.chat.members.items() if m.casefold(room) == key]
            nicks = sorted(found[0], key=m.casefold) if found else []
        return [("", "".join(f"{safe(nick)[: MEMBER_COLUMN - 1]}\n" for nick in nicks))]

    def _prompt(self) -> StyleAndTextTuples:
        window = self.sink.current
        line: StyleAndTextTuples = []
        if self.chat.client is None:
            line.append(("class:offline", "(offline) "))
        line.append(("class:room", safe(window.name if window else "(no room)") + " "))
        return [*line, ("bold", safe(self.chat.me)), ("", "> ")]

    # ------------------------------------------------------------------ keys and lines

    def _keys(self) -> KeyBindings:
        keys = KeyBindings()

        for digit in "123456789":

            @keys.add("escape", digit)
            def _(event: KeyPressEvent, index: int = int(digit) - 1) -> None:
                if index < len(self.sink.windows):
                    self.enter(self.sink.windows[index])

        @keys.add("c-n")
        def _next(event: KeyPressEvent) -> None:
            self._cycle(1)

        @keys.add("c-p")
        def _previous(event: KeyPressEvent) -> None:
            self._cycle(-1)

        @keys.add("pageup")
        def _up(event: KeyPressEvent) -> None:
            self.scroll(+1)

        @keys.add("pagedown")
        def _down(event: KeyPressEvent) -> None:
            self.scroll(-1)

        @keys.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            self._lines.close()
            self.app.exit()

        @keys.add("c-d", filter=Condition(lambda: not self.buffer.text))
        def _end(event: KeyPressEvent) -> None:
            self._lines.close()  # the worker sends what was typed, then leaves

        return keys

    def _page(self) -> int:
        return max(1, self.app.output.get_size().rows - 3)

    def scroll(self, pages: int) -> None:
        window = self.sink.current
        if window is None:
            return
        page = self._page()
        top = max(0, len(window.lines) - page)
        window.offset = max(0, min(window.offset + pages * (page - 1), top))
        if pages > 0 and window.offset >= top and not window.complete:
            self._tg.start_soon(self.load_earlier, window)
        self.app.invalidate()

    def _cycle(self, step: int) -> None:
        windows = self.sink.windows
        if windows and self.sink.current in windows:
            index = windows.index(self.sink.current)
            self.enter(windows[(index + step) % len(windows)])

    def enter(self, window: ChatWindow) -> None:
        """Switch to ``window``; a room becomes where ``/part`` and ``/who`` point."""
        self.sink.select(window)
        if window.is_room:
            key = m.casefold(window.name)
            self.chat.room = next(
                (r for r in self.chat.rooms if m.casefold(r) == key), self.chat.room
            )
        if not window.entered:
            window.entered = True
            self._tg.start_soon(self.load_earlier, window)

    async def load_earlier(self, window: ChatWindow) -> None:
        """Put the page of messages before the window's first one at its top."""
        client = self.chat.client
        if client is None or window.complete:
            return
        try:
            page = await client.history(
                window.name, before=window.first_id or None, limit=EARLIER_PAGE
            )
        except ChatError as exc:
            window.add(notice(f"no earlier messages: {safe(str(exc))}"))
            window.complete = True
            self.sink.changed()
            return
        if len(page) < EARLIER_PAGE:
            window.complete = True
        shown = [
            message_line(dataclasses.replace(msg, history=True), me=self.chat.me, room=window.name)
            for msg in page
            if not window.first_id or msg.id < window.first_id
        ]
        if page:
            window.first_id = min(msg.id for msg in page)
        window.lines[:0] = shown
        self.sink.changed()  # offsets count from the bottom: the lines on screen stay put

    def _accept(self, buffer: Buffer) -> bool:
        text = buffer.text
        window = self.sink.current
        if window is not None and not window.is_room and text.strip():
            if text.startswith("//") or not text.startswith("/"):
                plain = text[1:] if text.startswith("//") else text
                text = f"/msg {window.name} {plain}"
        try:
            self._lines.send_nowait(text)
        except anyio.WouldBlock:
            self.sink.problem(notice("too many lines waiting for the server; try again"))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        if window is not None:
            window.offset = 0
        return False  # clear the line (the session shows it once the server acked it)

    def follow(self, line: str, before: str | None) -> None:
        """After a typed line: drop the windows of rooms left, and show the room that the
        line made current (``/join``), as irssi does."""
        joined = {m.casefold(r) for r in self.chat.rooms}
        for window in list(self.sink.windows):
            if window.is_room and m.casefold(window.name) not in joined:
                self.sink.close(window)
        room = self.chat.room
        if room is not None and (room != before or isinstance(parse_line(line), m.Join)):
            target = self.sink.window(room)
            target.entered = True
            if target is not self.sink.current:
                self.sink.select(target)
