"""The bookkeeping of a node's messages on their way through Redis (pure, no Redis): finished
in queue order whatever order they come back in, and sorted out when the connection drops."""

from __future__ import annotations

from typing import Any

from anychat import model as m
from anychat.bus.numbering import Unnumbered
from anychat.effects import Broadcast


def _sent(text: str) -> Broadcast[Any]:
    msg = m.Message(id=0, time=1.0, sender="ada", target="#a", text=text)
    return Broadcast(peer="ada", message=msg, room="#a", then=m.Say(target="#a", text=text))


def _texts(done: list[tuple[Broadcast[Any], int]]) -> list[tuple[str, int]]:
    return [(sent.message.text, msg_id) for sent, msg_id in done]


async def test_messages_finish_in_queue_order_a_lost_one_at_its_batch_note() -> None:
    waiting = Unnumbered()
    first, lost, third = (waiting.add(_sent(t)) for t in ("first", "lost", "third"))
    assert waiting.sent(3) == first
    waiting.answered(10)  # the answer alone finishes nothing: earlier ones may still come back
    assert waiting.heard(third, 12) == []  # waits for the two before it
    assert _texts(waiting.heard(first, 10)) == [("first", 10)]
    assert _texts(waiting.batch_heard(first, 3, 10)) == [("lost", 11), ("third", 12)]
    assert len(waiting) == 0 and lost == first + 1


async def test_a_drop_finishes_what_ran_refuses_what_never_went_and_doubts_the_rest() -> None:
    waiting = Unnumbered()
    answered = waiting.add(_sent("answered"))
    waiting.sent(1)
    waiting.answered(5)
    half = [waiting.add(_sent(t)) for t in ("half 1", "half 2")]
    waiting.sent(2)
    waiting.heard(half[1], 8)  # heard back, but its batch's answer and note never came
    doubt = waiting.add(_sent("doubt"))
    assert waiting.sent(1) == doubt
    waiting.add(_sent("unsent"))
    numbered, doubtful, unsent = waiting.drop()
    assert _texts(numbered) == [("answered", 5), ("half 1", 7), ("half 2", 8)]
    assert [(seq, [(i, s.message.text) for i, s in sents]) for seq, sents in doubtful] == [
        (doubt, [(0, "doubt")])
    ]
    assert [s.message.text for s in unsent] == ["unsent"]
    assert len(waiting) == 0 and answered == 1
