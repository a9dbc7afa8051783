"""IRCv3 ``labeled-response``: every answer to a labeled command carries its label.

A command sent with ``@label=x`` is answered by one line tagged ``label=x``, by a
``labeled-response`` batch (tagged with the label) around several lines, or by
``@label=x :server ACK`` when there is nothing to say. Local answers are wrapped at once. The
broker's answers arrive as events carrying the command's refs, possibly from slow work; to know
when the last one has come, the codec sends a :class:`~anychat.model.Ping` after the labeled
command (the *fence*): the broker answers in order and finishes a connection's slow work (logins,
history reads) before its next command, so by the fence's ``Pong`` every answer is in, except
the acknowledgement of a stored message, which arrives once it is on disk (its ``Ack`` or
``Error`` closes the label then). Most commands have one last answer the state recognises
(a JOIN's member list, a WHOIS's end): their label closes on it, without waiting for the fence;
MODE (several refusals) and MONITOR (``-`` has no answer) wait for the fence. :class:`Labels` keeps the labels in flight (state); the
wrapping itself (:func:`wrap`) is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from .parse import escape_tag

__all__ = ["MAX_LABEL", "LabelGroup", "wrap"]

#: IRCv3 labeled-response: labels longer than this are ignored (the command is not labeled).
MAX_LABEL: Final = 64


@dataclass(slots=True)
class LabelGroup:
    """One labeled command's answer as it is being collected."""

    label: str
    #: The batch name (unique on the connection).
    name: str
    #: Refs of the model commands the labeled line became; the fence's ref.
    refs: frozenset[int]
    fence: int
    lines: list[str] = field(default_factory=list)
    #: The fence's Pong came: every answer but a stored message's ack is in.
    fenced: bool = False
    #: Whether the last answer of each command may close the label before the fence.
    early: bool = True


def _tagged(line: str, tag: str) -> str:
    return f"@{tag};{line[1:]}" if line.startswith("@") else f"@{tag} {line}"


def wrap(server: str, label: str, name: str, lines: list[str], *, batch: bool) -> list[str]:
    """The labeled answer: ACK for none, the label on one line, or a batch around several
    (without ``batch`` negotiated, the label on each line)."""
    tag = "label=" + escape_tag(label)
    if not lines:
        return [f"@{tag} :{server} ACK"]
    if len(lines) == 1 or not batch:
        return [_tagged(line, tag) for line in lines]
    inner = [
        line if line.startswith("@batch=") else _tagged(line, f"batch={name}") for line in lines
    ]
    return [f"@{tag} :{server} BATCH +{name} labeled-response", *inner, f":{server} BATCH -{name}"]
