"""The text codec's kept member-list rendering (``MemberNames``): always what rendering the
whole list afresh gives, and only the added name's work when a list grows by one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from anychat import model as m
from anychat.codecs.text import MemberNames, TextCodec
from anychat.safetext import safe_text


def _fresh(nicks: tuple[str, ...]) -> str:
    return safe_text(", ".join(nicks))


def test_a_growing_list_renders_each_name_once() -> None:
    names = MemberNames()
    nicks: tuple[str, ...] = ()
    for i in range(300):
        nicks = nicks + (f"guest{i}",)  # noqa: RUF005 (a new tuple each time, as the broker's)
        assert names.names("#general", nicks) == _fresh(nicks)
    assert names.rendered == 300


def test_any_other_change_renders_the_list_anew() -> None:
    names = MemberNames()
    names.names("#r", ("a", "b", "c"))
    assert names.names("#r", ("a", "c")) == "a, c"  # a part
    assert names.names("#r", ("a", "x", "c")) == "a, x, c"  # same length + 1, other content
    assert names.names("#r", ("z", "x", "c", "d")) == "z, x, c, d"  # not an extension
    assert names.rendered == 3 + 2 + 3 + 4


def test_rooms_are_kept_apart_and_bounded() -> None:
    names = MemberNames()
    for i in range(MemberNames.MAX_ROOMS + 10):
        assert names.names(f"#r{i}", (f"n{i}",)) == f"n{i}"
    assert names.names("#r0", ("n0", "m")) == "n0, m"  # forgotten: rendered anew, still right
    assert len(names._rooms) <= MemberNames.MAX_ROOMS


_NICK = st.text(alphabet=st.sampled_from("ab\x1b\u202e\x9bz_"), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["join", "part", "rename", "same"]), _NICK, st.integers(0, 9)),
        max_size=40,
    )
)
def test_random_changes_render_as_afresh(steps: list[tuple[str, str, int]]) -> None:
    names = MemberNames()
    nicks: tuple[str, ...] = ()
    for op, nick, where in steps:
        if op == "join":
            nicks = nicks + (nick,)  # noqa: RUF005
        elif op == "part" and nicks:
            i = where % len(nicks)
            nicks = nicks[:i] + nicks[i + 1 :]
        elif op == "rename" and nicks:
            i = where % len(nicks)
            nicks = (*nicks[:i], nick, *nicks[i + 1 :])
        room = "#a" if where % 3 else "#b"
        assert names.names(room, nicks) == _fresh(nicks)


def test_the_codec_line_is_unchanged() -> None:
    codec = TextCodec()
    nicks = ("ada", "b\x1b[2Job", "cy")
    line = codec.encode(m.Members(room="#general", nicks=nicks))
    assert line == f"* #general (3): {_fresh(nicks)}\r\n".encode()
    assert b"\x1b" not in line
