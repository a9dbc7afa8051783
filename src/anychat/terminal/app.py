"""``anychat chat``: chat from a terminal, or send each line of a piped stdin.

Interactive (stdin and stdout are terminals): a prompt_toolkit prompt at the bottom of the
screen. Incoming lines are printed *above* it while the user types: prompt_toolkit erases the
prompt, prints, and redraws the prompt with the half-typed line and cursor where they were, so
nothing the user typed is garbled or lost. Everything printed is formatted text built by
:mod:`anychat.terminal.session` from strings it made safe first; no raw ANSI from other users ever
reaches the terminal. Tab completes ``/commands``, nicks and rooms; Up/Down walk the input history,
which is kept in memory only, so private messages never land in a file.

Piped (``printf 'hi\\n' | anychat chat --nick bot``): each line is sent (lines starting with ``/``
are commands) and its acknowledgement awaited before the next; at the end of the input the client
leaves and exits 0 (1 if the server refused any line). Incoming messages are printed as plain text.

Logging in (``--login``, or a token saved by an earlier login): see :mod:`anychat.terminal.login`.
The password is asked for without echo; lines typed with ``/register`` or ``/login`` are masked
while typed, erased once sent, and never kept in the input history.

Both modes run on asyncio, which prompt_toolkit requires, over the same :class:`ChatSession`.
"""

from __future__ import annotations

import os
import signal
import ssl
import sys
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Final, TextIO

import anyio
import anyio.from_thread
from anyio.abc import TaskStatus
from anyio.lowlevel import current_token
from anyio.streams.memory import MemoryObjectReceiveStream
from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import FormattedText, StyleAndTextTuples, fragment_list_to_text
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.shortcuts import CompleteStyle
from prompt_toolkit.styles import Style

from .. import model as m
from ..errors import ChatError, ConnectionClosed, NickRegistered
from .fullscreen import FullScreen, WindowSink
from .login import Credentials, LoginCancelled, password_from_environment, wants_login
from .render import LINE_STYLES
from .session import (
    COMMANDS,
    ChatSession,
    LineKind,
    error_line,
    is_secret,
    nick_style,
    safe,
)

__all__ = ["run_chat"]

#: In pipe mode, give up (exit 1) after this many failed reconnects in a row: a script should
#: fail rather than hang. Interactive sessions retry for as long as the user waits.
PIPE_MAX_ATTEMPTS: Final = 6
#: Lines typed ahead of the server's acknowledgements before the prompt waits.
_MAX_PENDING_LINES: Final = 100

STYLE: Final = Style.from_dict(LINE_STYLES)


def run_chat(
    *,
    host: str,
    port: int,
    nick: str | None,
    room: str,
    login: bool = False,
    show: bool = False,
    plain: bool = False,
    tls: ssl.SSLContext | None = None,
) -> int:
    """Run the terminal client until the user leaves; returns the exit status.

    0: the user left (``/quit``, Ctrl-D, Ctrl-C) or the piped input was all sent. 1: the server
    could not be reached or refused the nick or room at the start, or (pipe mode) refused a line
    or stayed away. 128 + N: signal N (SIGINT outside the prompt; SIGTERM or SIGHUP in pipe mode)
    stopped it before it was done; interactively SIGTERM and SIGHUP leave cleanly with 0.

    ``login``: log in to the account ``nick``, with the saved token or else a password (asked
    for on the terminal; ``$ANYCHAT_PASSWORD`` in pipe mode, where setting it also asks for a
    login). ``show``: pipe mode prints what it receives (by default only errors, on stderr).
    ``plain``: line mode on a terminal; the default there is the full-screen mode (windows per
    room), except on a dumb terminal. ``tls``: encrypt every connection.
    """
    interactive = sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()
    if interactive:
        windows = not plain and os.environ.get("TERM", "dumb") not in ("dumb", "unknown", "")
        mode = partial(
            _interactive,
            host=host,
            port=port,
            nick=nick,
            room=room,
            login=login,
            windows=windows,
            tls=tls,
        )
    else:
        mode = partial(
            _piped, host=host, port=port, nick=nick, room=room, login=login, show=show, tls=tls
        )
    try:
        return anyio.run(mode)
    except BaseException as exc:
        inner = _unwrap(exc)
        if isinstance(inner, KeyboardInterrupt):
            return 130
        if isinstance(inner, NickRegistered) and nick:
            print(f"anychat: nick {nick} is registered: add --login to log in", file=sys.stderr)
            return 1
        if isinstance(inner, ChatError):
            print(f"anychat: {inner}", file=sys.stderr)
            return 1
        raise


def _unwrap(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


# ---------------------------------------------------------------------- interactive


class _NoSink:
    """A placeholder until the real sink, which needs the session, exists."""

    def show(
        self,
        line: StyleAndTextTuples,
        kind: LineKind = "info",
        where: tuple[str, ...] = (),
        msg_id: int = 0,
    ) -> None:
        pass

    def problem(self, line: StyleAndTextTuples) -> None:
        pass


class _PromptSink:
    """Lines printed above the prompt (prompt_toolkit redraws the prompt under them)."""

    def show(
        self,
        line: StyleAndTextTuples,
        kind: LineKind = "info",
        where: tuple[str, ...] = (),
        msg_id: int = 0,
    ) -> None:
        print_formatted_text(FormattedText(line), style=STYLE)

    def problem(self, line: StyleAndTextTuples) -> None:
        print_formatted_text(FormattedText(line), style=STYLE)


class ChatCompleter(Completer):
    """Tab completion: ``/commands`` at the start of a line, ``#rooms``, and nicks seen.

    A nick completed at the start of a line gets ``": "`` after it, the usual way to address
    someone in a room.
    """

    def __init__(self, chat: ChatSession) -> None:
        self.chat = chat

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and " " not in before:
            typed = before[1:].lower()
            for name in COMMANDS:
                if name.startswith(typed):
                    yield Completion(f"/{name} ", -len(before), display=f"/{name}")
            return
        word = document.get_word_before_cursor(WORD=True)
        folded = m.casefold(word)
        if word.startswith("#"):
            candidates = sorted({*self.chat.rooms, *self.chat.members}, key=m.casefold)
            suffix = ""
        else:
            candidates = self.chat.known_nicks()
            suffix = ": " if before == word else ""
        for name in candidates:
            if m.casefold(name).startswith(folded):
                yield Completion(safe(name) + suffix, -len(word), display=safe(name))


class _SecretFreeHistory(InMemoryHistory):
    """Input history (Up/Down) without the lines that carry a password."""

    def append_string(self, string: str) -> None:
        if not is_secret(string):
            super().append_string(string)


def _quiet_terminal() -> tuple[Input | None, AbstractContextManager[None]]:
    """Terminal input that never lets the terminal echo keys, and the mode to hold meanwhile.

    prompt_toolkit switches the terminal back to cooked mode (echo on) while it prints above the
    prompt, and leaves it cooked between two prompts; a key pressed in that instant is echoed by
    the terminal itself, unmasked, so part of a password typed after ``/login`` could show. The
    input returned stays raw while printing, and the context returned keeps the echo off
    between prompts (signals stay on there, so Ctrl-C still stops a slow first connection).
    ``(None, nullcontext())`` where this does not apply (Windows' console).
    """
    if sys.platform == "win32":
        return None, nullcontext()
    import termios

    from prompt_toolkit.input.vt100 import Vt100Input, raw_mode

    class QuietInput(Vt100Input):
        def cooked_mode(self) -> AbstractContextManager[None]:
            return nullcontext()  # printing needs no cooked mode; the echo would leak keys

    class NoEcho(raw_mode):
        @classmethod
        def _patch_lflag(cls, attrs: int) -> int:
            return attrs & ~(termios.ECHO | termios.ICANON)

    return QuietInput(sys.stdin), NoEcho(sys.stdin.fileno())


async def _ask_password(nick: str, *, quiet: Input | None = None) -> str:
    """The password, typed without echo (and erased from the screen once entered)."""
    session: PromptSession[str] = PromptSession(erase_when_done=True, input=quiet)
    try:
        return await session.prompt_async(f"password for {safe(nick)}: ", is_password=True)
    except EOFError:
        raise LoginCancelled("no password given") from None


def _prompt(chat: ChatSession) -> StyleAndTextTuples:
    """``#general ada> ``, or ``(offline) #general ada> `` while reconnecting."""
    line: StyleAndTextTuples = []
    if chat.client is None:
        line.append(("class:offline", "(offline) "))
    line.append(("class:room", safe(chat.room or "(no room)") + " "))
    me = chat.me
    line += [(nick_style(me) + " bold", safe(me)), ("", "> ")]
    return line


async def _interactive(
    *,
    host: str,
    port: int,
    nick: str | None,
    room: str,
    login: bool,
    windows: bool,
    tls: ssl.SSLContext | None,
) -> int:
    quiet, no_echo = _quiet_terminal()
    credentials = Credentials(
        host, port, login=login, ask=partial(_ask_password, quiet=quiet), tls=tls
    )
    if windows:
        chat = ChatSession(
            _NoSink(), host=host, port=port, nick=nick, room=room, credentials=credentials
        )
        sink = WindowSink(lambda: chat.me)
        for name in chat.rooms:  # the first lines (connecting) go to the first room's window
            sink.window(name)
        chat.sink = sink
        chat.windows = True
        with no_echo:
            return await _in_windows(chat, sink, quiet)
    chat = ChatSession(
        _PromptSink(), host=host, port=port, nick=nick, room=room, credentials=credentials
    )
    with no_echo:
        return await _chat_at_prompt(chat, host=host, port=port, quiet=quiet)


async def _chat_at_prompt(chat: ChatSession, *, host: str, port: int, quiet: Input | None) -> int:
    async with anyio.create_task_group() as tg:
        # The first connection happens before anything is drawn: if it fails, the error is
        # raised from here and run_chat prints one line.
        await tg.start(chat.maintain)
        await tg.start(_leave_on_signal, chat, tg.cancel_scope, [])
        session: PromptSession[str] = PromptSession(
            completer=ChatCompleter(chat),
            complete_style=CompleteStyle.READLINE_LIKE,
            complete_while_typing=False,
            history=_SecretFreeHistory(),
            # A password typed after /register or /login shows as stars.
            is_password=Condition(lambda: is_secret(session.default_buffer.text)),
            style=STYLE,
            # The sent line is shown once the server acked it, as everyone else sees it.
            erase_when_done=True,
            input=quiet,
        )
        # Lines are executed by a worker, one after another, while the prompt stays up: typing
        # never waits for the server (nor echoes through a terminal in cooked mode meanwhile).
        lines, pending = anyio.create_memory_object_stream[str](_MAX_PENDING_LINES)
        tg.start_soon(_execute_lines, chat, pending, tg.cancel_scope)
        with patch_stdout(raw=True):
            async with lines:
                while True:
                    try:
                        line = await session.prompt_async(partial(_prompt, chat))
                    except EOFError:  # Ctrl-D: leave once the lines typed so far are sent
                        break
                    except KeyboardInterrupt:  # Ctrl-C: leave now
                        await chat.quit()
                        tg.cancel_scope.cancel()
                        break
                    await lines.send(line)
            await anyio.sleep_forever()  # until the worker has finished and cancels
    return 0


async def _in_windows(chat: ChatSession, sink: WindowSink, quiet: Input | None) -> int:
    """The full-screen mode: the first connection, then the application until the user leaves."""
    async with anyio.create_task_group() as tg:
        await tg.start(chat.maintain)  # fails before anything is drawn, as at the prompt
        await tg.start(_leave_on_signal, chat, tg.cancel_scope, [])
        lines, pending = anyio.create_memory_object_stream[str](_MAX_PENDING_LINES)
        screen = FullScreen(
            chat,
            sink,
            lines,
            tg,
            completer=ChatCompleter(chat),
            history=_SecretFreeHistory(),
            quiet=quiet,
        )
        tg.start_soon(_execute_window_lines, chat, screen, pending)
        await screen.app.run_async()
        await chat.quit()
        tg.cancel_scope.cancel()
    return 0


async def _execute_window_lines(
    chat: ChatSession, screen: FullScreen, pending: MemoryObjectReceiveStream[str]
) -> None:
    """Execute typed lines in order, following ``/join`` to its window; leave at the end."""
    async with pending:
        async for line in pending:
            before = chat.room
            try:
                if not await chat.execute(line):
                    break
            except ConnectionClosed as exc:
                chat.sink.problem(error_line(f"not sent (Up recalls it): {safe(exc.reason)}"))
            screen.follow(line, before)
    await chat.quit()
    if screen.app.is_running:
        screen.app.exit()


async def _execute_lines(
    chat: ChatSession, pending: MemoryObjectReceiveStream[str], scope: anyio.CancelScope
) -> None:
    """Execute typed lines in order; leave after ``/quit`` or the end of input."""
    async with pending:
        async for line in pending:
            try:
                if not await chat.execute(line):
                    break
            except ConnectionClosed as exc:
                chat.sink.problem(error_line(f"not sent (Up recalls it): {safe(exc.reason)}"))
    await chat.quit()
    scope.cancel()


async def _leave_on_signal(
    chat: ChatSession,
    scope: anyio.CancelScope,
    caught: list[int],
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """SIGTERM or SIGHUP (terminal closed): say goodbye and unwind, which also restores the
    terminal from the prompt's raw mode instead of leaving it unusable. The signal number is
    appended to ``caught``."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        task_status.started()
        async for signum in signals:
            caught.append(signum)
            with anyio.move_on_after(1):
                await chat.quit("terminal closed" if signum == signal.SIGHUP else "")
            scope.cancel()
            return


# ---------------------------------------------------------------------- piped


class _PlainSink:
    """Pipe mode: problems to stderr, no colour; messages and command results to stdout only
    when asked (``--show``): a cron job's mail or a CI log gets no replayed history."""

    def __init__(self, *, show: bool = False) -> None:
        self._show = show

    def show(
        self,
        line: StyleAndTextTuples,
        kind: LineKind = "info",
        where: tuple[str, ...] = (),
        msg_id: int = 0,
    ) -> None:
        if self._show and kind in ("message", "info"):
            _write(sys.stdout, fragment_list_to_text(line))

    def problem(self, line: StyleAndTextTuples) -> None:
        _write(sys.stderr, fragment_list_to_text(line))


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):  # a closed pipe (``| head``) must not stop the sending
        pass


def _stdin_lines() -> MemoryObjectReceiveStream[str]:
    """Lines of stdin, read by a daemon thread (stdin may be a pipe, a file or a terminal).

    The thread waits for each line to be taken, so a slow server slows the reading; being a
    daemon, a thread blocked on a read that never ends does not keep the process alive.
    """
    send, receive = anyio.create_memory_object_stream[str](16)
    token = current_token()

    def pump() -> None:
        try:
            if sys.stdin is not None:
                for raw in sys.stdin.buffer:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    anyio.from_thread.run(send.send, line, token=token)
        except (anyio.RunFinishedError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return
        finally:
            try:
                anyio.from_thread.run_sync(send.close, token=token)
            except anyio.RunFinishedError:
                pass

    threading.Thread(target=pump, name="anychat-stdin", daemon=True).start()
    return receive


async def _piped(
    *,
    host: str,
    port: int,
    nick: str | None,
    room: str,
    login: bool,
    show: bool,
    tls: ssl.SSLContext | None,
) -> int:
    credentials = Credentials(
        host, port, login=wants_login(login), ask=password_from_environment, tls=tls
    )
    chat = ChatSession(
        _PlainSink(show=show),
        host=host,
        port=port,
        nick=nick,
        room=room,
        max_attempts=PIPE_MAX_ATTEMPTS,
        credentials=credentials,
    )
    caught: list[int] = []
    async with anyio.create_task_group() as tg:
        await tg.start(chat.maintain)
        await tg.start(_leave_on_signal, chat, tg.cancel_scope, caught)
        if chat.client is not None:  # scripts' logs say who posted (stdout stays quiet)
            who = credentials.identity(chat.client)
            _write(sys.stderr, f"anychat: connected to {host}:{port} as {who}")
        async with _stdin_lines() as lines:
            async for line in lines:
                if not await _send_line(chat, line):
                    break
        await chat.settle()  # a line whose ack was lost goes again after the reconnect
        await chat.quit()
        tg.cancel_scope.cancel()
    if caught:  # interrupted before the input was all sent
        return 128 + caught[0]
    return 1 if chat.failures else 0


async def _send_line(chat: ChatSession, line: str) -> bool:
    """Execute one piped line, retrying it on a new connection if none was up.

    A message whose acknowledgement was lost with the connection is not retried here: the
    session's outbox sends it again after the reconnect, with its idempotency key, so once.
    """
    client = chat.client
    while True:
        try:
            return await chat.execute(line)
        except ConnectionClosed:
            client = await chat.wait_for_new_client(client)
