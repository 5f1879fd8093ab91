"""What a session knows of each node's stream: its incarnations and where their spans went.

An agent numbers its spans locally, per spool; each start of an agent (and each rebase) is a
new *incarnation* with a random id and the local seq it starts at. The hub stores a node's
spans as one contiguous stream, so it maps every incarnation's local numbers onto stored ones
with an offset: 0 when the incarnation continues where the stream is (the usual restart), >0
when its numbers are ones the stream already holds (a lost or rolled-back spool: Kafka's
producer epoch, here as an id). That mapping is the dedup key: (incarnation, local seq), so
a resend of what the hub holds is dropped and a *new* span with a reused number is stored.

The session file records it with `Incarnation` markers (edgetrace._records), written before
the first span they cover, so a restarted hub rebuilds this from the file (`NodeStream`), and
readers find every restart of a node without decoding a record (`Session.incarnations`).
Spools written before incarnations existed (format 1) are the incarnation "" from seq 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgetrace._records import Incarnation

__all__ = ["IncState", "NodeStream", "confirmed"]


@dataclass
class IncState:
    """One incarnation as the hub has stored it: `offset` maps local seqs to stored ones."""

    offset: int
    local_last: int  # the last local seq stored (or accounted for: lost, refused)


@dataclass
class NodeStream:
    """One node of a session: the stored high mark, its incarnations, the current one."""

    high: int = 0
    current: str | None = None
    incarnations: dict[str, IncState] = field(default_factory=dict)

    def state(self, incarnation: str) -> IncState | None:
        return self.incarnations.get(incarnation)

    def absorb_marker(self, marker: Incarnation) -> None:
        """A stored Incarnation marker: from `base` on, the node's spans are that incarnation's."""
        self.incarnations[marker.id] = IncState(marker.base - marker.start, marker.start - 1)
        self.current = marker.id

    def absorb_span(self, seq: int) -> None:
        """A stored span (recovery): it belongs to the current incarnation ("" in format 1)."""
        if self.current is None:
            self.current = ""
            self.incarnations[""] = IncState(0, 0)
        state = self.incarnations[self.current]
        state.local_last = max(state.local_last, seq - state.offset)
        self.high = max(self.high, seq)

    def local_high(self, incarnation: str) -> int:
        """The last local seq of `incarnation` the hub holds, or 0."""
        state = self.incarnations.get(incarnation)
        return state.local_last if state is not None else 0


def confirmed(stream: NodeStream | None, incarnations: list[tuple[str, int, int]]) -> int:
    """The cursor a hello's spool may resume after: every local seq up to it is stored.

    `incarnations` is the spool's list, oldest first, each (id, first local seq, last local
    seq, 0 while it is still being written); a spool's incarnations never overlap (a rollback
    cuts the old one short, a rebase jumps ahead). Walk them: one the hub holds to its last
    seq lets the walk go on to the next (so does an open one a newer incarnation followed: it
    was shipped to its end before the newer one, spans ship in order); the first one it does
    not hold to the end ends the walk. A hello without a list (an older agent) is the
    incarnation "" from 1.
    """
    if not incarnations:
        incarnations = [("", 1, 0)]
    cursor = incarnations[0][1] - 1
    for i, (inc, first, last) in enumerate(incarnations):
        state = stream.incarnations.get(inc) if stream is not None else None
        held = max(state.local_last if state is not None else first - 1, first - 1)
        if last and held >= last:
            cursor = last  # all of it (or more: the hub held spans a rollback cut from the spool)
            continue
        cursor = max(cursor, held)
        if not last and i + 1 < len(incarnations):
            continue
        break
    return cursor
