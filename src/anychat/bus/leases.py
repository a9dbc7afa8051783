"""The cluster bus's leases: heartbeats, dead nodes, the directory read, a clean leave.

A mixin of :class:`~anychat.bus.redis.RedisBus`, kept apart so each module stays small enough
to hold in mind; it uses only the bus state declared below. Every node renews its lease and
its nicks every lease/4, checks the other nodes' leases as often, and clears a dead node out
of Redis (its users quit, its nicks are free again); a node that stops cleanly goes at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio

from .. import model as m
from .directory import Directory, RemoteUser
from .scripts import NODES, PREFIX, fence_key

__all__ = ["Leases"]

logger = logging.getLogger("anychat.cluster")


class Leases:
    """Leases, dead nodes and the directory of the others (mixed into the Redis bus)."""

    url: str
    node: str
    lease_seconds: float
    directory: Directory
    mine: Directory
    _owned: set[str]
    _releasing: set[str]
    _nick_lock: anyio.Lock
    _scripts: dict[str, Any]
    _client: Any
    on_users_gone: Callable[[list[RemoteUser]], None]
    on_nick_lost: Callable[[str], None]

    async def _heartbeats(self) -> None:
        while True:
            await anyio.sleep(self.lease_seconds / 4)
            await self._heartbeat_once()
            await self._find_dead_nodes()

    async def _heartbeat_once(self) -> None:
        owned = sorted(self._owned)
        async with self._nick_lock:
            lost = await self._scripts["heartbeat"](
                keys=[self._lease_key(self.node), NODES, PREFIX + "nick:"],
                args=[
                    self.node,
                    int(self.lease_seconds * 750),
                    int(self.lease_seconds * 1000),
                    *owned,
                ],
            )
            for nick in lost or ():
                self._owned.discard(nick)
        for nick in lost or ():
            logger.warning("nick %s is held by another node now: its session here ends", nick)
            self.on_nick_lost(nick)

    async def _find_dead_nodes(self) -> None:
        client = self._client
        nodes = set(await client.smembers(NODES)) | self.directory.nodes()
        nodes.discard(self.node)
        for node in sorted(nodes):
            if await client.exists([self._lease_key(node)]):
                continue
            logger.warning("node %s stopped renewing its lease: its users have quit", node)
            await self._bury(client, node)
            self._drop_node(node)

    async def _bury(self, client: Any, node: str) -> None:
        """Clear a dead node out of Redis: its nicks are free now, not when their keys expire."""
        users_key = self._users_key(node)
        nicks = set(await client.hkeys(users_key))
        nicks.update(m.casefold(u.nick) for u in self.directory.users.values() if u.node == node)
        args = [x for nick in sorted(nicks) for x in ("R", nick, node)]
        if args:
            await self._scripts["batch"](keys=[users_key, PREFIX + "nick:"], args=args)
        await client.srem(NODES, [node])
        await client.delete([users_key, fence_key(node)])

    def _drop_node(self, node: str) -> None:
        gone = [u for u in self.directory.users.values() if u.node == node]
        if gone:
            self.on_users_gone(gone)

    async def _load_directory(self, client: Any) -> None:
        """Read every live node's users; forget (and announce as quit) whoever is gone."""
        users: list[RemoteUser] = []
        for node in sorted(set(await client.smembers(NODES)) - {self.node}):
            if not await client.exists([self._lease_key(node)]):
                await self._bury(client, node)
                continue
            for raw in (await client.hgetall(self._users_key(node))).values():
                try:
                    users.append(RemoteUser.from_json(node, json.loads(raw)))
                except (ValueError, TypeError, KeyError) as exc:
                    logger.warning("skipped a bad directory entry of node %s: %s", node, exc)
        now = {(m.casefold(u.nick), u.node) for u in users}
        gone = [u for key, u in self.directory.users.items() if (key, u.node) not in now]
        if gone:
            self.on_users_gone(gone)
        self.directory.replace(u for u in users if m.casefold(u.nick) not in self.mine.users)

    async def _leave(self) -> None:
        """A clean stop: the lease goes at once, so the others announce our users now."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            try:
                import coredis

                async with coredis.Redis.from_url(self.url, decode_responses=True) as client:
                    await client.delete([self._lease_key(self.node)])
                    await client.srem(NODES, [self.node])
                    await client.delete([self._users_key(self.node), fence_key(self.node)])
                    for nick in sorted(self._owned | self._releasing):
                        await self._release_now(client, nick)
            except Exception as exc:
                logger.info(
                    "could not leave the cluster bus cleanly: %s", f"{type(exc).__name__}: {exc}"
                )

    async def _release_now(self, client: Any, nick: str) -> None:
        key = PREFIX + "nick:" + nick
        if await client.get(key) == self.node:
            await client.delete([key])

    @staticmethod
    def _lease_key(node: str) -> str:
        return f"{PREFIX}node:{node}"

    @staticmethod
    def _users_key(node: str) -> str:
        return f"{PREFIX}users:{node}"
