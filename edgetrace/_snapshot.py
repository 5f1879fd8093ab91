"""State snapshots in a session: what one node's runtime held at a quiescent moment.

A node that records with a snapshot period writes, once per period and only when none of its
handlers is running, one record: a LOG span named `edgetrace.snapshot` (a name no app step
can take) whose `state` blob is a MessagePack document — `ctx.local`, the state store on the
state host, the position of `ctx.rng`, the next call id. The span's place in the node's stream
says the rest: its seq and vector clock, and the step numbering of everything before it. The
replayer restores a set of such snapshots that forms a consistent cut (`replay/_cuts.py`) and
runs only what follows.

A snapshot record is not a step: step numbering (`edgetrace._stepkey`) skips it, as it skips
fault records, and a replay writes the recorded one back at its recorded place, so a session
with snapshots replays exactly like one without. Old readers see an ordinary log span.

    recorded → snapshot records + state blobs → `edgetrace replay --from CUT` restores them
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import msgspec

from edgetrace._codec import decode_any, encode
from edgetrace._records import Span, SpanKind

__all__ = ["MESSAGE_BLOB", "RNG_BLOB", "SNAPSHOT", "STATE_BLOB", "SnapshotState", "is_snapshot", "plain_data_problem"]

#: The name of a snapshot record (kind `log`). The runtime's own log steps are named `log`,
#: `clock`, `unhandled` and the handler-error name, so no step can collide with it.
SNAPSHOT = "edgetrace.snapshot"
#: The blob roles of the encoded state document and of the rng's position (a blob of its own:
#: content-addressed, a node's unused or unchanged rng is stored once).
STATE_BLOB = "state"
RNG_BLOB = "rng"
#: The blob role of a message's exact payload, kept beside its preview when the preview is not
#: the payload (a replay from a cut re-sends the messages in flight across it).
MESSAGE_BLOB = "message"

_DOC_VERSION = 1
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what MessagePack holds


def is_snapshot(span: Span) -> bool:
    return span.kind is SpanKind.LOG and span.name == SNAPSHOT


def plain_data_problem(value: Any, where: str, depth: int = 0) -> str:
    """Why `value` would not come back equal from MessagePack ('' if it would).

    Only plain data survives a session file as itself: None, bool, int, float, str, bytes,
    lists and str-keyed dicts. A tuple would come back a list and an object not at all, so a
    snapshot holding one would restore something else; the node skips that snapshot instead.
    """
    kind = type(value)
    if value is None or kind in (bool, float, str, bytes):
        return ""
    if kind is int:
        return "" if _INT_MIN <= value <= _INT_MAX else f"{where} is an integer too large for MessagePack"
    if depth > 32:
        return f"{where} is nested more than 32 deep"
    if kind is list:
        for i, item in enumerate(value):
            found = plain_data_problem(item, f"{where}[{i}]", depth + 1)
            if found:
                return found
        return ""
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"{where} has a {type(key).__name__} key {key!r} (only str keys survive)"
            found = plain_data_problem(item, f"{where}[{key!r}]", depth + 1)
            if found:
                return found
        return ""
    return (f"{where} is a {kind.__name__}; snapshots keep plain data "
            "(dict with str keys, list, str, int, float, bool, None, bytes)")


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    """The state document's fields and types, checked before anything is restored from it."""

    v: int
    node: str
    round: int
    local: dict[str, Any]
    store: dict[str, Any] | None
    next_call: int


_RngPosition = tuple[int, list[int], float | None]


@dataclass
class SnapshotState:
    """One node's restorable state, as stored in a snapshot's `state` blob."""

    node: str
    round: int
    local: dict[str, Any]
    store: dict[str, Any] | None  # the state store, on the state host only
    rng: tuple[int, tuple[int, ...], float | None]  # random.Random.getstate()
    next_call: int

    def encode(self) -> tuple[bytes, bytes]:
        """(the state document, the rng's position), as MessagePack."""
        version, words, gauss = self.rng
        doc = encode({"v": _DOC_VERSION, "node": self.node, "round": self.round, "local": self.local,
                      "store": self.store, "next_call": self.next_call})
        return doc, encode([version, list(words), gauss])

    @classmethod
    def decode(cls, data: bytes, rng: bytes) -> SnapshotState:
        """Read a snapshot back, or raise ValueError saying what is wrong with it.

        A session file is data from elsewhere: every field is checked against its type, and the
        rng position against what `random.Random.setstate` accepts, here — not later, in the
        middle of restoring a grid.
        """
        doc = decode_any(data)
        if not isinstance(doc, dict) or doc.get("v") != _DOC_VERSION:
            found = doc.get("v") if isinstance(doc, dict) else type(doc).__name__
            raise ValueError(f"snapshot document version {found!r}; this build reads version {_DOC_VERSION}")
        try:
            fields = msgspec.convert(doc, _Document)
            version, words, gauss = msgspec.convert(decode_any(rng), _RngPosition)
        except msgspec.ValidationError as exc:
            raise ValueError(f"the snapshot does not hold what a snapshot holds: {exc}") from None
        position = (version, tuple(words), gauss)
        try:
            random.Random().setstate(position)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"the snapshot's rng position is not one random.Random can take: {exc}") from None
        return cls(node=fields.node, round=fields.round, local=fields.local, store=fields.store,
                   rng=position, next_call=fields.next_call)
