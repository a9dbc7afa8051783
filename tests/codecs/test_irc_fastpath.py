"""The IRC codec's fast routes (plain PRIVMSG lines in, live messages out) match the general ones."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from anychat import model as m
from anychat.codecs.irc.render import render

from .test_irc import registered

# Targets and texts as clients type them, spaces, colons, commas and non-ASCII included.
words = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"), max_size=30
)
CAPS = ("", "message-tags", "server-time", "echo-message", "message-tags server-time account-tag")


@given(target=words, text=words, caps=st.sampled_from(CAPS))
def test_privmsg_lines_parse_as_the_general_route_does(target: str, text: str, caps: str) -> None:
    line = f"PRIVMSG {target} :{text}\r\n".encode()
    fast, general = registered("ada", *caps.split()), registered("ada", *caps.split())
    # A leading space is legal and sends the line down the general route (parse_line strips it).
    assert fast.feed(line) == general.feed(b" " + line)
    assert fast.state.client_tags == general.state.client_tags == ""


@given(rest=st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b))
def test_any_bytes_after_privmsg_parse_as_the_general_route_does(rest: bytes) -> None:
    line = b"PRIVMSG " + rest + b"\r\n"  # invalid UTF-8 too (read as Latin-1)
    assert registered().feed(line) == registered().feed(b" " + line)


def test_privmsg_fast_route_keeps_the_general_answers() -> None:
    for line in (b"PRIVMSG #a,#b :hi\r\n", b"PRIVMSG  #a :hi\r\n", b"PRIVMSG #a hi\r\n"):
        fast, general = registered(), registered()
        assert fast.feed(line) == general.feed(b" " + line)
    unregistered = registered()
    unregistered.state.hello_sent = False
    (refusal,) = unregistered.feed(b"PRIVMSG #a :hi\r\n")
    assert b" 451 " in refusal.data  # type: ignore[union-attr]


@given(
    id_=st.integers(1, 2**40),
    sender=st.sampled_from(["bob", "b_2", "Zoë"]),
    user=st.sampled_from(["", "bob", "~x"]),
    target=st.sampled_from(["#general", "ada"]),
    text=words,
    kind=st.sampled_from(m.Kind),
    account=st.sampled_from(["", "bob"]),
    tags=st.sampled_from(["", "+typing=active"]),
    caps=st.sampled_from(CAPS),
)
def test_live_message_bytes_match_render(
    id_: int,
    sender: str,
    user: str,
    target: str,
    text: str,
    kind: m.Kind,
    account: str,
    tags: str,
    caps: str,
) -> None:
    codec = registered("ada", *caps.split())
    msg = m.Message(
        id=id_,
        time=1795822920.25,
        sender=sender,
        target=target,
        text=text,
        kind=kind,
        user=user,
        account=account,
        tags=tags,
    )
    lines = render(codec.wire, msg, codec.state.observe(msg))
    assert codec.encode(msg) == ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace")
