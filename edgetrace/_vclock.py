"""Vector clocks: the causal order of a session.

Every recorded step ticks its node's entry; every received message merges the sender's
clock. A node's own entry therefore equals the step's per-node sequence number, which the
session format exploits: a record stores only the *other* entries that changed since the
same node's previous record (`delta`), so a local step costs an empty map and a receive
costs the entries the message brought in. `VectorClock` is immutable so a clock handed to a
record can never be changed behind its back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping

__all__ = ["Order", "VectorClock", "apply_delta", "delta"]


class Order(enum.StrEnum):
    """How two clocks relate in the happens-before partial order."""

    BEFORE = "before"
    AFTER = "after"
    EQUAL = "equal"
    CONCURRENT = "concurrent"


class VectorClock(Mapping[str, int]):
    """An immutable map node → counter; missing entries are 0."""

    __slots__ = ("_entries", "_hash")

    def __init__(self, entries: Mapping[str, int] | None = None) -> None:
        clean: dict[str, int] = {}
        if entries:
            for node, value in entries.items():
                if value < 0:
                    raise ValueError(f"vector clock entry {node!r} is negative: {value}")
                if value:
                    clean[node] = int(value)
        self._entries = dict(sorted(clean.items()))
        self._hash: int | None = None

    def __getitem__(self, node: str) -> int:
        return self._entries.get(node, 0)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, node: object) -> bool:
        return node in self._entries

    def __eq__(self, other: object) -> bool:
        if isinstance(other, VectorClock):
            return self._entries == other._entries
        if isinstance(other, Mapping):
            return self._entries == {k: v for k, v in other.items() if v}
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._entries.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"VectorClock({self._entries!r})"

    def __str__(self) -> str:
        """Compact form used in listings and OTLP attributes: ``hub=3,tractor-01=7``."""
        return ",".join(f"{k}={v}" for k, v in self._entries.items())

    @classmethod
    def parse(cls, text: str) -> VectorClock:
        entries: dict[str, int] = {}
        for part in filter(None, text.split(",")):
            node, sep, value = part.rpartition("=")
            if not sep or not node or not value.isdigit():
                raise ValueError(f"bad vector clock entry {part!r}: expected NODE=COUNT")
            entries[node] = int(value)
        return cls(entries)

    def as_dict(self) -> dict[str, int]:
        return dict(self._entries)

    def tick(self, node: str) -> VectorClock:
        entries = dict(self._entries)
        entries[node] = entries.get(node, 0) + 1
        return VectorClock(entries)

    def merge(self, other: Mapping[str, int]) -> VectorClock:
        """Least upper bound: the entry-wise maximum."""
        entries = dict(self._entries)
        for node, value in other.items():
            if value > entries.get(node, 0):
                entries[node] = value
        return VectorClock(entries)

    def compare(self, other: Mapping[str, int]) -> Order:
        less = greater = False
        for node in set(self._entries) | set(other):
            a, b = self[node], other.get(node, 0)
            if a < b:
                less = True
            elif a > b:
                greater = True
            if less and greater:
                return Order.CONCURRENT
        if less:
            return Order.BEFORE
        if greater:
            return Order.AFTER
        return Order.EQUAL

    def __le__(self, other: Mapping[str, int]) -> bool:
        return all(value <= other.get(node, 0) for node, value in self._entries.items())

    def __lt__(self, other: Mapping[str, int]) -> bool:
        return self <= other and self != other

    def __ge__(self, other: Mapping[str, int]) -> bool:
        return VectorClock(other) <= self

    def __gt__(self, other: Mapping[str, int]) -> bool:
        return VectorClock(other) < self

    def happens_before(self, other: Mapping[str, int]) -> bool:
        return self < other

    def concurrent(self, other: Mapping[str, int]) -> bool:
        return self.compare(other) is Order.CONCURRENT


def delta(previous: Mapping[str, int], current: Mapping[str, int], *, own: str = "") -> dict[str, int]:
    """Entries of `current` that differ from `previous`, leaving out the node's own entry.

    The own entry is implied by the record's sequence number, so it is never stored.
    Clocks only grow along one node's stream, so a delta never has to express a removal.
    """
    return {
        node: value
        for node, value in sorted(current.items())
        if node != own and value and value != previous.get(node, 0)
    }


def apply_delta(
    previous: Mapping[str, int], changes: Mapping[str, int], *, own: str = "", seq: int = 0
) -> VectorClock:
    """Inverse of :func:`delta`: rebuild a full clock from the previous one and a record."""
    entries = dict(previous)
    entries.update(changes)
    if own:
        entries[own] = seq
    return VectorClock(entries)
