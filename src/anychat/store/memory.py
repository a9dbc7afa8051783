"""The memory store: dicts and a list, for tests and servers that need no history after a stop.

It answers every query exactly as the SQLite store does (the shared contract tests check), so a
test on ``memory://`` says something true about ``sqlite:///``.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Sequence

from .. import model as m
from ..errors import StoreError
from . import Account, AccountChange, check_query, pick_conversations, visible

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._messages: list[m.Message] = []
        self._ids: list[int] = []
        self._closed = False
        self._changes: list[AccountChange] = []

    def _changed(self, nick: str, *, registered: bool) -> None:
        self._changes.append(
            AccountChange(id=len(self._changes) + 1, nick=nick, registered=registered)
        )

    def _check(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    async def create_account(self, account: Account) -> bool:
        self._check()
        key = m.casefold(account.nick)
        if key in self._accounts:
            return False
        self._accounts[key] = account
        self._changed(account.nick, registered=True)
        return True

    async def get_account(self, nick: str) -> Account | None:
        self._check()
        return self._accounts.get(m.casefold(nick))

    async def list_accounts(self) -> list[Account]:
        self._check()
        return sorted(self._accounts.values(), key=lambda a: m.casefold(a.nick))

    async def set_password(self, nick: str, password_hash: str) -> bool:
        self._check()
        key = m.casefold(nick)
        account = self._accounts.get(key)
        if account is None:
            return False
        self._accounts[key] = dataclasses.replace(account, password_hash=password_hash)
        return True

    async def delete_account(self, nick: str) -> bool:
        self._check()
        account = self._accounts.pop(m.casefold(nick), None)
        if account is None:
            return False
        self._changed(account.nick, registered=False)
        return True

    async def append_messages(self, messages: Sequence[m.Message]) -> None:
        self._append(messages)

    def instant_append(self) -> Callable[[Sequence[m.Message]], None] | None:
        # A subclass that changes append_messages (a test's failing or slow store) is awaited.
        if type(self).append_messages is not MemoryStore.append_messages:
            return None
        return self._append

    def background_append(self) -> None:
        return None  # appends never wait: see instant_append

    def _append(self, messages: Sequence[m.Message]) -> None:
        self._check()
        last = self._ids[-1] if self._ids else 0
        for msg in messages:
            if msg.id <= last:
                raise StoreError(f"message id {msg.id} is not above the last stored id {last}")
            last = msg.id
        # Kept as relayed; marked as history when read (a copy per message read, not per
        # message stored: reads are rare, and this store is the one benchmarks run on).
        self._messages.extend(messages)
        self._ids.extend(msg.id for msg in messages)

    async def history(
        self,
        target: str,
        *,
        viewer: str | None = None,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
        before_time: float | None = None,
        after_time: float | None = None,
    ) -> list[m.Message]:
        self._check()
        limit = check_query(target, viewer, limit)
        out: list[m.Message] = []
        if limit == 0:
            return out
        low = float("-inf") if after_time is None else after_time
        high = float("inf") if before_time is None else before_time

        def wanted(msg: m.Message) -> bool:
            return low < msg.time < high and visible(msg, target, viewer)

        if after is not None or after_time is not None:
            start = 0 if after is None else bisect.bisect_right(self._ids, after)
            end = len(self._ids) if before is None else bisect.bisect_left(self._ids, before)
            for msg in self._messages[start:end]:
                if wanted(msg):
                    out.append(msg)
                    if len(out) == limit:
                        break
            return _as_history(out)
        end = len(self._ids) if before is None else bisect.bisect_left(self._ids, before)
        for msg in reversed(self._messages[:end]):
            if wanted(msg):
                out.append(msg)
                if len(out) == limit:
                    break
        out.reverse()
        return _as_history(out)

    async def conversations(
        self,
        *,
        rooms: Sequence[str],
        viewer: str | None,
        start: float,
        end: float,
        limit: int,
        private_since: int = 0,
    ) -> list[m.Conversation]:
        self._check()
        low, high = min(start, end), max(start, end)
        wanted = {m.casefold(room): room for room in rooms}
        me = m.casefold(viewer) if viewer is not None else None
        found: dict[str, m.Conversation] = {}
        for msg in reversed(self._messages):  # newest first: the first seen is the last one
            if not low < msg.time < high:
                continue
            to = m.casefold(msg.target)
            if m.is_room(msg.target):
                key, name = to, wanted.get(to)
            elif me is None or msg.id < private_since:
                continue
            elif m.casefold(msg.sender) == me:
                key, name = to, msg.target
            elif to == me:
                key, name = m.casefold(msg.sender), msg.sender
            else:
                continue
            if name is not None and key not in found:
                found[key] = m.Conversation(target=name, time=msg.time, id=msg.id)
        return pick_conversations(found.values(), start, end, limit)

    async def keyed_messages(self, limit: int) -> list[m.Message]:
        self._check()
        out: list[m.Message] = []
        for msg in reversed(self._messages):
            if len(out) >= limit:
                break
            if msg.key is not None:
                out.append(msg)
        out.reverse()
        return _as_history(out)

    async def last_message_id(self) -> int:
        self._check()
        return self._ids[-1] if self._ids else 0

    async def account_changes(self, after: int | None = None) -> tuple[int, list[AccountChange]]:
        self._check()
        if after is None:
            return len(self._changes), []
        return len(self._changes), self._changes[after:]

    async def aclose(self) -> None:
        self._closed = True


def _as_history(messages: list[m.Message]) -> list[m.Message]:
    return [dataclasses.replace(msg, history=True) for msg in messages]
