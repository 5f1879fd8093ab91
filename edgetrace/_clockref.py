"""Clocks by reference: a record whose clock is another record's merged into its node's own.

A receive in a dense grid takes hundreds of clock entries from the message it merges, and
the record of the send already holds every one of them. A compacted session stores such a
receive as `merged` = the send's ref plus the few entries the merge does not explain
(`Span.vc`); its clock is, entry by entry,

    vc[k] if k in vc else max(previous[k], clock(merged)[k])        (k ≠ the record's node)

where `previous` is the clock of the node's record before it in seq order (none: all 0).
That is exact by construction — compaction computes the residual from the clocks it had —
and needs the merged record's full clock when it is read, so a reader resolves records in
dependency order (`Resolver`): the node's previous record and the merged one first.

`Rows` holds the current clock of every stream being resolved: numpy rows when the grid is
small enough for a dense matrix (streams × nodes named, ≤ `DENSE_CELLS`), dicts otherwise,
so a 60,000-node session costs what its entries cost, not 60,000².
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from edgetrace._errors import UsageError
from edgetrace._records import Span, parse_ref

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DENSE_CELLS", "Codes", "Expansion", "Resolver", "Rows"]

#: Streams × node codes up to this are resolved on dense int64 rows (32M cells: 256 MB).
DENSE_CELLS = 1 << 25

#: What a record's clock changed: (codes, values) of the entries that differ from its
#: node's previous clock, as int64 arrays (the causal index's change points).
Expansion = tuple["np.ndarray[Any, Any]", "np.ndarray[Any, Any]"]

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def clock_count(span: Span, other: str, value: object) -> int:
    """A clock entry as a 64-bit count, or the one error every clock reader gives."""
    try:
        count = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        count = 2**63
    if not _I64_MIN <= count <= _I64_MAX:
        raise UsageError(f"span {span.ref}: clock entry {other!r}={value!r} is not a 64-bit count")
    return count


class Codes(dict[str, int]):
    """Node name → a small integer, numbered as they are first seen; `names` is the inverse.

    A dict subclass so that a known name is looked up at C speed (`codes[name]`, or
    `map(codes.__getitem__, names)`); only a new one runs `__missing__`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __missing__(self, key: str) -> int:
        code = self[key] = len(self.names)
        self.names.append(key)
        return code


class Rows:
    """The current full clock (other nodes' entries) of each stream, keyed by node name.

    `codes` numbers node names (the causal index's numbering, shared so change points need
    no renumbering). A row is a numpy int64 array indexed by code when dense, else a dict
    code → value; the operations below are the only ones either kind needs. `trusted`: the
    records come from the validating decoder (entries are 64-bit counts), so their values are
    taken as they are instead of checked one by one.
    """

    def __init__(self, codes: Codes, *, dense: bool, trusted: bool = False) -> None:
        self.codes = codes
        self.code = codes.__getitem__
        self.dense = dense
        self.trusted = trusted
        self._rows: dict[str, Any] = {}

    def name(self, code: int) -> str:
        return self.codes.names[code]

    def _fit(self, row: np.ndarray[Any, Any], size: int) -> np.ndarray[Any, Any]:
        """`row` with room for `size` codes (exactly `size` long if it had to grow)."""
        import numpy as np

        if len(row) >= size:
            return row
        return np.concatenate((row, np.zeros(size - len(row), dtype=np.int64)))

    def start(self, node: str, clock: Mapping[str, int]) -> None:
        """Begin `node`'s stream at a known clock (what an index already holds for it)."""
        self._rows[node] = self.make(clock)

    def make(self, clock: Mapping[str, int]) -> Any:
        """A row holding `clock` (a record's full clock from elsewhere)."""
        if self.dense:
            import numpy as np

            codes = [self.code(k) for k in clock]
            row = np.zeros(max(codes, default=-1) + 1, dtype=np.int64)
            if codes:
                row[codes] = list(clock.values())
            return row
        return {self.code(k): v for k, v in clock.items()}

    def current(self, node: str) -> Any:
        row = self._rows.get(node)
        if row is None:
            self.start(node, {})
            row = self._rows[node]
        return row

    def copy(self, node: str) -> Any:
        return self.current(node).copy()

    def snapshot(self, node: str, seq: int) -> Any:
        """`node`'s full clock as of its record `seq` (just resolved): its row and its own entry."""
        row = self.current(node).copy()
        own = self.code(node)
        if self.dense:
            row = self._fit(row, own + 1)
        row[own] = seq
        return row

    def apply(self, span: Span) -> None:
        """A record without a reference: its entries are set, the rest stay."""
        if not span.vc:
            return
        row = self.current(span.node)
        if self.dense:
            import numpy as np

            vc = span.vc
            keys = np.fromiter(map(self.code, vc), dtype=np.int64, count=len(vc))
            values = (vc.values() if self.trusted else [clock_count(span, k, v) for k, v in vc.items()])
            row = self._fit(row, int(keys.max()) + 1)
            row[keys] = np.fromiter(values, dtype=np.int64, count=len(vc))
            self._rows[span.node] = row
        else:
            for k, v in span.vc.items():
                row[self.code(k)] = clock_count(span, k, v)

    def merge(self, span: Span, merged: Any) -> Expansion:
        """A record by reference: its row becomes the merge; returns what changed."""
        import numpy as np

        node = span.node
        own = self.code(node)
        before = self.current(node)
        residual = [(self.code(k), clock_count(span, k, v)) for k, v in span.vc.items()]
        if self.dense:
            size = max(len(before), len(merged), own + 1, max((c for c, _ in residual), default=-1) + 1)
            before = self._fit(before, size)
            new = np.maximum(before, self._fit(merged, size))
            new[own] = before[own]
            for c, v in residual:
                new[c] = v
            changed = np.flatnonzero(new != before)
            self._rows[node] = new
            values = new[changed]
            # held until their stream is indexed (≈ 100M entries in a dense mesh): 32 bits where they fit
            if len(values) and int(values.min()) >= -(2**31) and int(values.max()) < 2**31:
                values = values.astype(np.int32)
            return changed.astype(np.int32), values
        new_map = dict(before)
        for c, v in merged.items():
            if c != own and v > new_map.get(c, 0):
                new_map[c] = v
        new_map.update(residual)
        changes = sorted((c, v) for c, v in new_map.items() if v != before.get(c, 0))
        self._rows[node] = new_map
        return (np.array([c for c, _ in changes], dtype=np.int64),
                np.array([v for _, v in changes], dtype=np.int64))

    def residual(self, span: Span, before: Any, merged: Any, after: Any) -> dict[str, int]:
        """The entries of `after` (the record's full clock) that merging `merged` into `before`
        does not give: what a record stored by reference to `merged` must still carry."""
        import numpy as np

        own = self.code(span.node)
        if self.dense:
            size = max(len(before), len(merged), len(after), own + 1)
            b, m, a = self._fit(before, size), self._fit(merged, size), self._fit(after, size)
            want = np.maximum(b, m)
            want[own] = b[own]
            differ = np.flatnonzero(want != a)
            return {self.name(int(c)): int(a[c]) for c in differ}
        want = dict(before)
        for c, v in merged.items():
            if c != own and v > want.get(c, 0):
                want[c] = v
        keys = set(want) | set(after)
        return {self.name(c): after.get(c, 0) for c in sorted(keys) if want.get(c, 0) != after.get(c, 0)}


class Resolver:
    """Full clocks of a batch of records with references, resolved in dependency order.

    `streams` holds each node's new records in seq order. `earlier(ref)` is the full clock
    row of a record from before this batch (the causal index's), or None if there is no such
    record. `resolve` returns each reference record's expansion, keyed by (node, seq).

    A reference that cannot be resolved (its record is missing, or references form a cycle)
    is an error — unless `lenient` (a salvaged session, whose damaged frames may have held
    the record): the reference then merges nothing and is listed in `unresolved`.
    """

    def __init__(self, rows: Rows, streams: Mapping[str, list[Span]],
                 earlier: Callable[[str, int], Any | None], *, lenient: bool = False) -> None:
        self.rows = rows
        self.streams = streams
        self.earlier = earlier
        self.lenient = lenient
        self.unresolved: list[str] = []
        self._give_up: set[tuple[str, int]] = set()

    def resolve(self) -> dict[tuple[str, int], Expansion]:
        streams = self.streams
        wanted: dict[tuple[str, int], int] = {}  # a record → how many records of the batch merge it
        for items in streams.values():
            for span in items:
                if span.merged:
                    target = self._target(span, note=False)
                    if target is not None and target[0] in streams:
                        wanted[target] = wanted.get(target, 0) + 1
        saved: dict[tuple[str, int], Any] = {}
        cursor = dict.fromkeys(streams, 0)
        waiting: dict[tuple[str, int], list[str]] = {}
        out: dict[tuple[str, int], Expansion] = {}
        ready = list(streams)
        while True:
            self._run(ready, cursor, saved, waiting, wanted, out)
            blocked = [(node, items[cursor[node]]) for node, items in streams.items() if cursor[node] < len(items)]
            if not blocked:
                return out
            node, span = blocked[0]
            if not self.lenient:
                target = _target(span)
                there = any(s.seq == target[1] for s in streams.get(target[0], ()))
                why = ("which is not in the session" if not there
                       else "which depends on it in turn (a cycle of references)")
                raise UsageError(f"span {span.ref} merges the clock of {span.merged}, {why}")
            self._give_up.add((node, span.seq))
            self.unresolved.append(span.ref)
            for followers in waiting.values():
                if node in followers:
                    followers.remove(node)
            ready = [node]

    def _run(self, ready: list[str], cursor: dict[str, int], saved: dict[tuple[str, int], Any],
             waiting: dict[tuple[str, int], list[str]], wanted: dict[tuple[str, int], int],
             out: dict[tuple[str, int], Expansion]) -> None:
        streams = self.streams
        while ready:
            node = ready.pop()
            items = streams[node]
            i = cursor[node]
            while i < len(items):
                span = items[i]
                if span.merged:
                    target = self._target(span)
                    # lenient, and the reference names no other node's record: it merges nothing
                    merged = saved.get(target) if target is not None else self.rows.make({})
                    if target is None:
                        pass
                    elif merged is not None:  # a saved clock is dropped once its last merger took it
                        left = wanted[target] - 1
                        if left:
                            wanted[target] = left
                        else:
                            del wanted[target], saved[target]
                    elif (node, span.seq) in self._give_up:
                        merged = self.rows.make({})
                    if merged is None and target is not None:
                        try:
                            merged = self._elsewhere(span, target, cursor)
                        except UsageError:
                            if not self.lenient:
                                raise
                            self.unresolved.append(span.ref)
                            merged = self.rows.make({})
                        if merged is None:  # not resolved yet: wait for the target's stream
                            waiting.setdefault(target, []).append(node)
                            break
                    out[(node, span.seq)] = self.rows.merge(span, merged)
                else:
                    self.rows.apply(span)
                i += 1
                key = (node, span.seq)
                if key in wanted and key not in saved:
                    saved[key] = self.rows.snapshot(node, span.seq)
                    ready.extend(waiting.pop(key, ()))
            cursor[node] = i

    def _target(self, span: Span, *, note: bool = True) -> tuple[str, int] | None:
        node, _, seq = span.merged.rpartition(":")  # the decoder checked the form: the fast way first
        if node and node != span.node and seq.isdigit() and seq[0] != "0":
            return node, int(seq)
        try:
            return _target(span)
        except UsageError:
            if not self.lenient:
                raise
            if note:
                self.unresolved.append(span.ref)
            return None

    def _elsewhere(self, span: Span, target: tuple[str, int], cursor: Mapping[str, int]) -> Any | None:
        """The target's clock when it is not one this batch saved: from before the batch, or an error."""
        node, seq = target
        items = self.streams.get(node)
        if items is not None and (not items or seq >= items[0].seq):
            # in this batch's part of the stream: saved when reached, unless no record has that seq
            i = cursor[node]
            if i < len(items) and items[i].seq <= seq:
                return None  # not reached yet
            raise UsageError(f"span {span.ref} merges the clock of {span.merged}, which is not in the session")
        found = self.earlier(node, seq)
        if found is None:
            raise UsageError(f"span {span.ref} merges the clock of {span.merged}, which is not in the session")
        return found


def _target(span: Span) -> tuple[str, int]:
    try:
        node, seq = parse_ref(span.merged)
    except ValueError:
        raise UsageError(f"span {span.ref}: bad clock reference {span.merged!r}") from None
    if node == span.node:
        raise UsageError(f"span {span.ref} merges the clock of its own node ({span.merged})")
    return node, seq


def dense_fits(streams: int, codes: int) -> bool:
    return streams * max(codes, 1) <= DENSE_CELLS
