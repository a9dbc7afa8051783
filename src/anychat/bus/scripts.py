"""What the cluster bus keeps in Redis: its key names, and the Lua scripts it runs there (each
one atomic; bus/redis.py says what each key holds)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BATCH",
    "CLAIM",
    "HEARTBEAT",
    "IDS",
    "NODES",
    "PREFIX",
    "PRESENCE",
    "RAN_MS",
    "RESOLVE",
    "RESTATE",
    "ROOM_CHANNELS",
    "SEED",
    "fence_key",
    "node_channel",
    "ran_key",
    "room_channel",
    "room_state_key",
]

PREFIX: Final = "anychat:"
PRESENCE: Final = PREFIX + "presence"
IDS: Final = PREFIX + "ids"
NODES: Final = PREFIX + "nodes"
ROOM_CHANNELS: Final = PREFIX + "room:"
#: How long Redis keeps the record of a batch that numbered messages (its first id): long
#: enough for a node that lost its connection before the answer to reconnect and read it.
RAN_MS: Final = 30_000


def room_channel(room: str) -> str:
    return ROOM_CHANNELS + room


def node_channel(node: str) -> str:
    return f"{PREFIX}to:{node}"


def room_state_key(room: str) -> str:
    """A room's settings (:mod:`anychat.roomstate`), for the nodes that open it later."""
    return f"{PREFIX}chan:{room}"


def fence_key(node: str) -> str:
    """The token of ``node``'s current connection: a batch of another one does nothing."""
    return f"{PREFIX}fence:{node}"


def ran_key(node: str, token: str) -> str:
    """Prefix of the records of the batches ``node`` sent on its connection ``token``, by the
    first sequence number of each."""
    return f"{PREFIX}ran:{node}:{token}:"


# Take a nick if free (or already ours); 1 = ours now.
CLAIM: Final = """
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# The ids go on past ARGV[1] (what this node has numbered, heard or stored); past ARGV[2] if
# the counter is gone (Redis restarted empty: other nodes may have numbered more meanwhile).
SEED: Final = """
local c = redis.call('GET', KEYS[1])
if not c then redis.call('SET', KEYS[1], ARGV[2])
elseif tonumber(c) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""
# Renew the node's lease and its nicks; returns the nicks another node holds now.
HEARTBEAT: Final = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
local lost = {}
for i = 4, #ARGV do
  local key = KEYS[3] .. ARGV[i]
  local v = redis.call('GET', key)
  if v and v ~= ARGV[1] then
    table.insert(lost, ARGV[i])
  else
    redis.call('SET', key, ARGV[1], 'PX', ARGV[3])
  end
end
return lost
"""
# A batch of queued work, in order: P channel payload | N channel head NUL tail (numbered:
# published as head .. id .. tail) | M channel head NUL tail (the same, and head .. id to the
# sender's own channel KEYS[4], which tells it the id in order) | H nick json | D nick |
# R nick node | C key state (a room's settings) | K key state (the same, only if the key is
# missing) | X key prefix (deleted if its value begins with prefix) | B record head NUL tail
# (last, when the batch numbers messages: head .. first id .. tail to KEYS[4], which the
# sender hears after every message of the batch it hears at all, and the first id kept a
# while under the key ``record``). A batch from a node's bus
# connection begins with F token: unless KEYS[5] holds that token (the node reconnected since,
# and read what ran), the batch does nothing and fails. Returns the first id.
BATCH: Final = """
if ARGV[1] == 'F' and redis.call('GET', KEYS[5]) ~= ARGV[2] then
  return redis.error_reply('FENCED a newer connection of this node took over')
end
local n = 0
for i = 1, #ARGV, 3 do
  if ARGV[i] == 'N' or ARGV[i] == 'M' then n = n + 1 end
end
local id = 0
if n > 0 then id = redis.call('INCRBY', KEYS[3], n) - n end
local first = id + 1
for i = 1, #ARGV, 3 do
  local op, a, b = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'N' or op == 'M' then
    id = id + 1
    local at = string.find(b, '\\0', 1, true)
    local head = string.sub(b, 1, at - 1) .. string.format('%d', id)
    redis.call('PUBLISH', a, head .. string.sub(b, at + 1))
    if op == 'M' then redis.call('PUBLISH', KEYS[4], head) end
  elseif op == 'B' then
    local at = string.find(b, '\\0', 1, true)
    local note = string.sub(b, 1, at - 1) .. string.format('%d', first)
    redis.call('PUBLISH', KEYS[4], note .. string.sub(b, at + 1))
    redis.call('SET', a, first, 'PX', RAN_MS)
  elseif op == 'P' then redis.call('PUBLISH', a, b)
  elseif op == 'H' then redis.call('HSET', KEYS[1], a, b)
  elseif op == 'D' then redis.call('HDEL', KEYS[1], a)
  elseif op == 'C' then redis.call('SET', a, b)
  elseif op == 'K' then redis.call('SET', a, b, 'NX')
  elseif op == 'X' then
    local v = redis.call('GET', a)
    if v and string.sub(v, 1, #b) == b then redis.call('DEL', a) end
  elseif op == 'R' then
    local key = KEYS[2] .. a
    if redis.call('GET', key) == b then redis.call('DEL', key) end
  end
end
return first
""".replace("RAN_MS", str(RAN_MS))
# A node's new connection: the fence KEYS[1] moves from ARGV[1] (the last connection's token)
# to ARGV[2], and for each further ARGV (the first sequence number of a batch of the last
# connection whose answer never came) the first id it numbered, or 0 if it did not run.
# Nothing of the last connection runs after this. Returns false if the fence did not hold
# ARGV[1] (Redis lost it: restarted, or flushed): then what ran is unknown.
RESOLVE: Final = """
local held = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2])
if held ~= ARGV[1] then return false end
local ids = {}
for i = 3, #ARGV do
  table.insert(ids, tonumber(redis.call('GET', KEYS[2] .. ARGV[i]) or '0'))
end
return ids
"""
# Restate this node's users: the hash is replaced whole.
RESTATE: Final = """
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""
