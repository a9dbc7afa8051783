"""The protocol-neutral vocabulary shared by codecs, broker, server and client.

Commands travel from a client to the server (imperative names: ``Join``, ``Say``); events travel
from the server to clients (facts: ``Joined``, ``Message``). Codecs translate between these and
bytes; the broker only ever sees these objects, never bytes or sockets. Every class is a frozen,
slotted, keyword-only dataclass so an instance cannot change after a codec produced it, which is
what lets the server encode one event once and hand the same bytes to many recipients.

Fields declared with ``compare=False`` are presentation details (the parts of an IRC hostmask,
counts shown at registration): two events that differ only there describe the same fact.

``ref`` is an optional client-chosen correlation value: the server copies it from a command onto
the reply (ack, error, member list...) so a client can match replies to requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final, TypeAlias

from .model_history import Conversation, ConversationList, Conversations, History
from .model_names import (
    MAX_NICK_LENGTH,
    MAX_ROOM_LENGTH,
    casefold,
    is_room,
    valid_nick,
    valid_room,
)
from .model_ops import (
    FLAG_MODES,
    LIST_MODES,
    MAX_BANS,
    ROOM_MODES,
    SETTING_MODES,
    STATUS_MODES,
    STATUS_PREFIXES,
    Ban,
    BanList,
    Invite,
    Invited,
    Kick,
    Kicked,
    Mode,
    ModeChange,
    ModeChanged,
    RoomModes,
    ServerStats,
    Stats,
)
from .model_presence import (
    MAX_CLIENT_TAGS,
    MAX_WATCHED,
    USERLEN,
    AccountChanged,
    AwayChanged,
    Presence,
    PresenceCommand,
    PresenceEvent,
    RealnameChanged,
    SetRealname,
    Tagged,
    TagMsg,
    Watch,
    WatchList,
    clean_username,
)
from .quickinit import quick_init
from .safetext import safe_text

__all__ = [
    "FLAG_MODES",
    "LIST_MODES",
    "MAX_BANS",
    "MAX_CLIENT_TAGS",
    "MAX_KEY_LENGTH",
    "MAX_NICK_LENGTH",
    "MAX_ROOM_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_TOPIC_LENGTH",
    "MAX_WATCHED",
    "PROTOCOL_VERSION",
    "ROOM_MODES",
    "SETTING_MODES",
    "STATUS_MODES",
    "STATUS_PREFIXES",
    "USERLEN",
    "AccountChanged",
    "Ack",
    "Away",
    "AwayChanged",
    "AwayStatus",
    "Ban",
    "BanList",
    "Bye",
    "Command",
    "Conversation",
    "ConversationList",
    "Conversations",
    "Error",
    "ErrorCode",
    "Event",
    "Hello",
    "History",
    "HistoryPage",
    "Invalid",
    "Invite",
    "Invited",
    "Join",
    "Joined",
    "Kick",
    "Kicked",
    "Kind",
    "ListRooms",
    "LoggedIn",
    "Login",
    "Member",
    "Members",
    "Message",
    "Mode",
    "ModeChange",
    "ModeChanged",
    "Nick",
    "NickChanged",
    "Part",
    "Parted",
    "Ping",
    "Pong",
    "Presence",
    "Quit",
    "Quitted",
    "RealnameChanged",
    "Ref",
    "Register",
    "RoomInfo",
    "RoomList",
    "RoomModes",
    "RoomTopic",
    "Say",
    "ServerStats",
    "SetRealname",
    "Stats",
    "TagMsg",
    "Tagged",
    "Topic",
    "UserInfo",
    "Watch",
    "WatchList",
    "Welcome",
    "Who",
    "Whois",
    "casefold",
    "clean_username",
    "is_room",
    "valid_nick",
    "valid_room",
]

#: Bumped whenever a change to the JSON-lines protocol could break an existing client.
PROTOCOL_VERSION: Final = 1
#: Leaves room for the IRC prefix and command within RFC 2812's 512-byte line.
MAX_TEXT_LENGTH: Final = 400
#: The IRC ``TOPICLEN`` advertised; also bounds away messages.
MAX_TOPIC_LENGTH: Final = 300
#: An idempotency key (:attr:`Say.key`) is a client-chosen token, such as a UUID.
MAX_KEY_LENGTH: Final = 100

Ref: TypeAlias = str | int | None


class Kind(str, Enum):
    """How a message is meant to be shown."""

    #: An ordinary line of chat.
    PLAIN = "plain"
    #: ``/me waves``: shown as ``* alice waves``.
    ACTION = "action"
    #: Never answered automatically by bots (as IRC NOTICE).
    NOTICE = "notice"


class ErrorCode(str, Enum):
    """Stable machine-readable error codes; docs/protocol.md describes each one."""

    BAD_COMMAND = "bad_command"
    UNKNOWN_COMMAND = "unknown_command"
    LINE_TOO_LONG = "line_too_long"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_NICK = "invalid_nick"
    NICK_IN_USE = "nick_in_use"
    INVALID_ROOM = "invalid_room"
    NO_SUCH_ROOM = "no_such_room"
    NO_SUCH_NICK = "no_such_nick"
    NOT_MEMBER = "not_member"
    NO_ROOM = "no_room"
    EMPTY_MESSAGE = "empty_message"
    TEXT_TOO_LONG = "text_too_long"
    HELLO_REQUIRED = "hello_required"
    ALREADY_REGISTERED = "already_registered"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    TOO_MANY_ROOMS = "too_many_rooms"
    SEND_QUEUE_EXCEEDED = "send_queue_exceeded"
    SHUTDOWN = "shutdown"
    #: The nick belongs to an account: log in, or pick another nick.
    NICK_REGISTERED = "nick_registered"
    #: This server admits only logged-in users.
    LOGIN_REQUIRED = "login_required"
    #: Wrong nick or password (deliberately vague: the same for every cause).
    LOGIN_FAILED = "login_failed"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_INVALID = "token_invalid"
    WEAK_PASSWORD = "weak_password"
    ACCOUNT_EXISTS = "account_exists"
    #: The message store failed: the message was relayed live but not saved.
    STORE_UNAVAILABLE = "store_unavailable"
    #: Goodbye to an older connection when its account logs in again (a dropped link's ghost).
    LOGGED_IN_ELSEWHERE = "logged_in_elsewhere"
    #: The account this session was logged in to was deleted by an administrator.
    ACCOUNT_DELETED = "account_deleted"
    #: Only a room operator may do that (set modes, kick, lock the topic, invite to +i).
    NOT_OPERATOR = "not_operator"
    #: The nick named is not in the room (kick, op, voice).
    TARGET_NOT_MEMBER = "target_not_member"
    #: The nick invited is already in the room.
    ALREADY_MEMBER = "already_member"
    #: A mode letter the server does not know (``subject`` is the letter).
    UNKNOWN_MODE = "unknown_mode"
    #: Joining needs an invite (+i), the key (+k), a free place (+l), or is banned (+b).
    INVITE_ONLY = "invite_only"
    BAD_KEY = "bad_key"
    ROOM_FULL = "room_full"
    BANNED = "banned"
    #: The room is moderated (+m), or closed to non-members (+n), or the sender is banned.
    CANNOT_SEND = "cannot_send"
    #: Plaintext refused: the server requires TLS, or a password or token came unencrypted.
    TLS_REQUIRED = "tls_required"
    #: Several nodes serve this chat and their bus (Redis) is out of reach: local chat goes
    #: on, but what needs the other nodes (messages, new nicks) waits until it is back.
    CLUSTER_UNAVAILABLE = "cluster_unavailable"


# ---------------------------------------------------------------- commands (client -> server)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """Register a connection: choose a nick (``None`` = give me a guest nick)."""

    nick: str | None = None
    #: Join the server's default rooms after registering (bots may prefer not to).
    autojoin: bool = True
    ref: Ref = None
    #: Log in to the account ``nick`` with its password, or with a token from :class:`LoggedIn`
    #: (then ``nick`` may be ``None``). Never shown in reprs, so never in logs.
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    #: IRC's ``USER``: a username shown in hostmasks (``""`` = the nick) and a real name.
    user: str = ""
    realname: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Join:
    room: str
    ref: Ref = None
    #: The room's key, when it has one (+k).
    key: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Part:
    """Leave ``room`` (``None`` = the room the client spoke in or joined last)."""

    room: str | None = None
    reason: str = ""
    ref: Ref = None


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Say:
    """Send ``text`` to a room or a nick (``None`` = the client's current room)."""

    target: str | None
    text: str
    kind: Kind = Kind.PLAIN
    ref: Ref = None
    #: Idempotency key: a resend with a key this nick used recently is answered with the
    #: original message's ack and is neither relayed nor stored again (docs/protocol.md).
    key: str | None = None
    #: IRC client-only tags, escaped (``+typing=active;+draft/reply=7``): relayed, not stored.
    tags: str = ""
    #: Whether ``ref`` is the client's own, so that a repeat of it on this connection is a
    #: resend (JSON lines). A codec that numbers its requests itself (IRC, plain text) never
    #: repeats a ref, and remembering each one would be work for nothing. Where the command
    #: came from, not what it says: left out of comparisons.
    resend_by_ref: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Nick:
    nick: str
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Who:
    """Ask for the members of a room (``None`` = the current room)."""

    room: str | None = None
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListRooms:
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    token: str = ""
    ref: Ref = None
    #: Added by a codec after a labeled command, to learn when every answer to it is in (IRC
    #: labeled-response); the client never sent it, so flood control does not count it.
    fence: bool = False

    def reply(self) -> Pong:
        return Pong(token=self.token, ref=self.ref)


@dataclass(frozen=True, slots=True, kw_only=True)
class Quit:
    reason: str = ""
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Invalid:
    """Produced by a codec for input it could not turn into a command.

    Not an exception: one bad line is answered with an :class:`Error` and the connection lives on.
    """

    code: ErrorCode
    text: str
    ref: Ref = None

    def reply(self) -> Error:
        return Error(code=self.code, text=self.text, ref=self.ref)


@dataclass(frozen=True, slots=True, kw_only=True)
class Topic:
    """Ask for a room's topic (``text=None``) or set it (``""`` clears it); members only may set.

    ``room`` ``None`` = the current room.
    """

    room: str | None
    text: str | None = None
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    """Claim the current nick as an account protected by ``password``."""

    password: str = field(repr=False)
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Away:
    """Mark yourself away with a message (``""`` = back again)."""

    text: str = ""
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    """Log in to account ``nick`` (password) or to the account a token names (``nick`` optional)."""

    nick: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    ref: Ref = None
    #: A connection that has not said hello yet also registers with the account's nick; with
    #: ``False`` it only logs in and says hello later (IRC's SASL runs before registration).
    hello: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Whois:
    """Ask about one connected nick."""

    nick: str
    ref: Ref = None


Command: TypeAlias = (
    Hello
    | Join
    | Part
    | Say
    | Nick
    | Who
    | ListRooms
    | Ping
    | Quit
    | Invalid
    | Topic
    | Away
    | Whois
    | Register
    | Login
    | History
    | Conversations
    | Mode
    | Kick
    | Invite
    | Stats
    | PresenceCommand
)


# ------------------------------------------------------------------- events (server -> client)


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome:
    """First event of a registered connection: who you are and what this server is."""

    nick: str
    server: str
    version: str
    protocol: int = PROTOCOL_VERSION
    ref: Ref = None
    #: The server's counts as this connection registered (IRC shows them as LUSERS).
    stats: ServerStats | None = field(default=None, compare=False)


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A line of chat as the server stored and relayed it."""

    id: int
    #: Server time, seconds since the epoch (UTC).
    time: float
    sender: str
    #: A room (``#general``) or, for a private message, the recipient's nick.
    target: str
    text: str
    kind: Kind = Kind.PLAIN
    #: True when replayed from history rather than relayed live.
    history: bool = False
    #: The sender's idempotency key (:attr:`Say.key`), kept with the stored message so a
    #: restarted server still knows it; never sent to other clients.
    key: str | None = field(default=None, compare=False, repr=False)
    #: The sender's username (IRC hostmasks; ``""`` = unknown, shown as the nick).
    user: str = field(default="", compare=False)
    #: The sender's account when it was logged in (IRC ``account-tag``); never stored.
    account: str = field(default="", compare=False)
    #: The sender's client-only tags (:attr:`Say.tags`); never stored.
    tags: str = field(default="", compare=False)

    @property
    def safe_text(self) -> str:
        """:attr:`text` fit to print on a terminal: ``text`` is whatever the sender typed,
        escape sequences included; here controls, bidi overrides and line separators are
        U+FFFD (:func:`anychat.safetext.safe_text`)."""
        return safe_text(self.text)


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """Tells a sender its message was accepted, with the id and time everyone else sees."""

    id: int
    time: float
    target: str
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Joined:
    room: str
    nick: str
    ref: Ref = None
    #: Who joined, for IRC hostmasks and ``extended-join`` (details: not compared).
    user: str = field(default="", compare=False)
    realname: str = field(default="", compare=False)
    account: str = field(default="", compare=False)
    #: The joiner's away message, for IRC ``away-notify`` clients ("" = present).
    away: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Parted:
    room: str
    nick: str
    reason: str = ""
    ref: Ref = None
    user: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Quitted:
    """``nick`` left the server; sent once to everyone who shared a room with it."""

    nick: str
    reason: str = ""
    user: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class NickChanged:
    old: str
    new: str
    ref: Ref = None
    user: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One member of a room as WHO and NAMES show it."""

    nick: str
    #: Status letters held, highest first (``"ov"``, ``"o"``, ``"v"`` or ``""``).
    status: str = ""
    user: str = ""
    realname: str = ""
    account: str = ""
    away: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Members:
    room: str
    nicks: tuple[str, ...]
    ref: Ref = None
    #: The same members in the same order, with their status and identity.
    details: tuple[Member, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomInfo:
    name: str
    members: int
    topic: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomList:
    rooms: tuple[RoomInfo, ...] = field(default_factory=tuple)
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    token: str = ""
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomTopic:
    """A room's topic: the answer to a query, on joining, or (to every member) a change."""

    room: str
    text: str
    #: Who set it ("" = never set), and when (seconds since the epoch).
    setter: str = ""
    time: float = 0.0
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AwayStatus:
    """Confirms an :class:`Away` command: ``text`` is the away message, ``""`` = back."""

    text: str = ""
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    """The answer to :class:`Whois`."""

    nick: str
    rooms: tuple[str, ...] = ()
    away: str = ""
    #: When the nick registered (seconds since the epoch).
    since: float = 0.0
    #: Seconds since it last sent a message (since registering, if it has sent none).
    idle: float = 0.0
    ref: Ref = None
    #: Status letters in each of ``rooms`` (same order), username, real name, account.
    statuses: tuple[str, ...] = field(default=(), compare=False)
    user: str = field(default="", compare=False)
    realname: str = field(default="", compare=False)
    account: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    """A refusal or a complaint about input; the connection stays open."""

    code: ErrorCode
    text: str
    ref: Ref = None
    #: What the error is about, when the command named several things (a nick, a mode letter).
    subject: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye:
    """The server is closing this connection, and why. Always the last event."""

    code: ErrorCode | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedIn:
    """The connection is now logged in to account ``nick``; ``token`` logs in next time."""

    nick: str
    token: str = field(repr=False)
    #: Seconds since the epoch when the token stops working.
    expires: float = 0.0
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryPage:
    """Reply to :class:`History`: stored messages in id order, each marked ``history``."""

    target: str
    messages: tuple[Message, ...] = ()
    ref: Ref = None


Event: TypeAlias = (
    Welcome
    | LoggedIn
    | HistoryPage
    | ConversationList
    | Message
    | Ack
    | Joined
    | Parted
    | Quitted
    | NickChanged
    | Members
    | RoomList
    | Pong
    | Error
    | Bye
    | RoomTopic
    | AwayStatus
    | UserInfo
    | ServerStats
    | RoomModes
    | ModeChanged
    | BanList
    | Kicked
    | Invited
    | PresenceEvent
)
