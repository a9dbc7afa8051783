from __future__ import annotations

import inspect

import anychat


def test_all_lists_every_public_name_and_nothing_else() -> None:
    """The root resolves its names lazily: what it offers is what ``__all__`` lists."""
    assert set(anychat.__all__) == set(anychat._EXPORTS) | {"__version__"}
    assert dir(anychat) == sorted(anychat.__all__)
    assert isinstance(anychat.__all__, tuple)
    for name in anychat.__all__:
        assert not inspect.ismodule(getattr(anychat, name)), name


def test_every_error_is_a_chat_error() -> None:
    for name in anychat.__all__:
        obj = getattr(anychat, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, anychat.ChatError), name


def test_every_error_code_and_json_type_is_documented() -> None:
    from pathlib import Path

    from anychat.codecs import jsonl

    doc = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    missing = [code.value for code in anychat.ErrorCode if f"`{code.value}`" not in doc]
    missing += [name for name in jsonl._COMMAND_PARSERS if f"| `{name}` |" not in doc]
    missing += [name for name in jsonl._EVENT_PARSERS if f"| `{name}` |" not in doc]
    assert missing == []
