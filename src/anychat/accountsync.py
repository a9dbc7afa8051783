"""Follow account changes made outside the server (``anychat users add|delete``) while it runs.

The admin commands write to the same database from another process; the server polls the
store's change log (:meth:`anychat.store.Store.account_changes`, one indexed query a second) and
applies each change to the broker: an added account protects its nick at once (guests can no
longer take it), a deleted one frees the nick and logs out whoever was logged in to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Final, TypeVar

import anyio

from .broker import Broker, Effect
from .errors import StoreError
from .store import Store

__all__ = ["POLL_SECONDS", "follow_account_changes"]

logger = logging.getLogger("anychat.server")

#: How often the store's change log is read.
POLL_SECONDS: Final = 1.0

P = TypeVar("P")


async def follow_account_changes(
    store: Store,
    broker: Broker[P],
    apply: Callable[[Iterable[Effect[P]]], None],
    *,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Apply account changes to ``broker`` until cancelled; ``apply`` carries out the effects
    (a logged-out user's notice). A failing store is logged and retried, never fatal."""
    cursor: int | None = None
    while True:
        try:
            if cursor is None:
                cursor, _ = await store.account_changes()
            else:
                cursor, changes = await store.account_changes(cursor)
                for change in changes:
                    if change.registered:
                        broker.add_registered(change.nick)
                        logger.info("account %s added: its nick is protected", change.nick)
                    else:
                        apply(broker.account_deleted(change.nick))
                        logger.info("account %s deleted: logged out", change.nick)
        except StoreError as exc:
            logger.warning("cannot read account changes: %s", exc)
        await anyio.sleep(poll_seconds)
