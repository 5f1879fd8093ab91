"""The causal index of a session: happens-before without a full scan.

Built in one pass over the records, it keeps, per node stream, the sequence numbers at which
each *other* node's clock entry changed (the records' delta clocks say exactly that). Then:

- `happens_before(a, b)` is one bisect: a → b iff b's clock entry for a's node ≥ a's seq;
- the causal past of a is, per node, a prefix of that node's stream (bounded by a's clock);
- the causal future of a is, per node, a suffix (the first record whose entry reached a).

A span's own entry is its seq, so a local step needs no index entry at all.

The change points are packed arrays (`array("i")`, or `"q"` where a value needs 64 bits), built a batch at a time: a batch's clock
entries are gathered per stream at C speed and sorted by the node they name with numpy, so
building does not walk the (tens of millions of) entries of a dense session in Python. A batch
that needs care (records out of order or repeated, values that are not 64-bit counts or large
enough that a packed running sum could overflow) takes the record-at-a-time path, which is the
definition the packed one is tested against.
"""

from __future__ import annotations

import itertools
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where an index is built: importing edgetrace stays light
    import numpy as np

    from edgetrace._cindex import Query

from edgetrace import _clockref
from edgetrace._clockref import Codes, Expansion, Resolver, Rows, clock_count, dense_fits
from edgetrace._errors import UsageError
from edgetrace._records import Span, parse_ref
from edgetrace._vclock import VectorClock

__all__ = ["CausalIndex"]

_cindex: ModuleType | None
try:  # the whole build in C (setup.py builds it when a compiler is there)
    from edgetrace import _cindex
except ImportError:  # pragma: no cover - exercised where the extension is not built
    _cindex = None

SpanLike = Span | str

#: `happens_before` calls before a query table is built (plus one per 64 cells it will hold).
QUERY_AFTER = 64
#: Streams × node codes up to this get a query table (8 bytes a cell: 32 MB).
QUERY_CELLS = 1 << 22

#: Clock values up to this take the packed path: the running sums of a stream then stay far
#: inside 64 bits (they telescope to at most one value per node named).
_PACKED_MAX = 1 << 40


def _stable_order(code: np.ndarray[Any, Any], known: int) -> np.ndarray[Any, Any]:
    """Entries by node, seq order kept within each (numpy's radix sort, when the codes fit 16 bits)."""
    import numpy as np

    return np.argsort(code.astype(np.int16) if known < 1 << 15 else code, kind="stable")


def _packed_array(values: np.ndarray[Any, Any]) -> array[int]:
    """Values as a packed array: 32-bit when they all fit (a dense mesh holds ~100M of them)."""
    import numpy as np

    narrow = not len(values) or (int(values.min()) >= -(2**31) and int(values.max()) < 2**31)
    found = array("i" if narrow else "q")
    found.frombytes(values.astype(np.int32 if narrow else np.int64, copy=False).tobytes())
    return found


def _unpacked(values: array[int]) -> np.ndarray[Any, Any]:
    import numpy as np

    return np.frombuffer(values, dtype=np.int32 if values.typecode == "i" else np.int64).astype(np.int64)


class _Stream:
    """One node's records, in seq order, with the change points of every other entry.

    The change points of all other entries are two packed arrays sorted by (entry, seq) —
    `ch_seq[lo:hi]`, `ch_val[lo:hi]` for the segment `at[other]` = (lo, hi) — so a stream is
    three objects however many nodes its clocks name, not two arrays per node.
    """

    __slots__ = ("_pending", "at", "ch_seq", "ch_val", "clock", "seqs", "spans", "sums", "total", "wide")

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.spans: list[Span] = []
        self.sums: list[int] = []
        self.at: dict[str, tuple[int, int]] = {}
        self.ch_seq: array[int] = array("q")
        self.ch_val: array[int] = array("q")
        self.clock: dict[str, int] = {}
        self.total = 0
        #: a clock value beyond `_PACKED_MAX` was taken record at a time: from then on the
        #: running sums may pass 64 bits, so every later batch must take that path too
        self.wide = False
        self._pending: tuple[list[str], list[int], list[int]] = ([], [], [])

    @classmethod
    def built(cls, seqs: list[int], spans: list[Span], sums: list[int], at: dict[str, tuple[int, int]],
              ch_seq: bytes, ch_val: bytes, clock: dict[str, int], total: int) -> _Stream:
        """A stream as `_cindex.build` made it (what `extend` of a new stream leaves; its change
        points are 32-bit, as the C build takes nothing wider)."""
        stream = cls()
        stream.seqs, stream.spans, stream.sums, stream.at = seqs, spans, sums, at
        stream.ch_seq, stream.ch_val = array("i", ch_seq), array("i", ch_val)
        stream.clock, stream.total = clock, total
        return stream

    def add(self, span: Span, expansion: Expansion | None = None, names: list[str] | None = None) -> None:
        """The definition, a record at a time: its entries wait in `_pending` until `_merge`.

        A record by reference (`Span.merged`) brings the entries its resolved clock changed
        (`expansion`, in the index's node codes) instead of its own `vc`."""
        if self.seqs and span.seq <= self.seqs[-1]:
            if span.seq in self.seqs:
                return  # a duplicate delivery of the same record: keep the first
            raise UsageError(
                f"records of node {span.node!r} out of order: seq {span.seq} after {self.seqs[-1]}"
            )
        keys, seqs, values = self._pending
        entries: Iterable[tuple[str, Any]] = span.vc.items()
        if expansion is not None and names is not None:
            entries = zip([names[c] for c in expansion[0].tolist()], expansion[1].tolist(), strict=True)
        for other, value in entries:
            count = clock_count(span, other, value)
            if not -_PACKED_MAX <= count <= _PACKED_MAX:
                self.wide = True
            keys.append(other)
            seqs.append(span.seq)
            values.append(count)
            self.total += value - self.clock.get(other, 0)
            self.clock[other] = value
        self.seqs.append(span.seq)
        self.spans.append(span)
        self.sums.append(self.total + span.seq)

    def extend(self, items: list[Span], codes: Codes, names: list[str],
               expanded: dict[int, Expansion] | None = None) -> None:
        """Add records in seq order: vectorised when the batch allows, record at a time otherwise."""
        expanded = expanded or {}
        if not self._packed(items, codes, names, expanded):
            for span in items:
                self.add(span, expanded.get(span.seq), names)
            keys, seqs, values = self._pending
            if keys:
                import numpy as np

                self._pending = ([], [], [])
                code = np.fromiter(map(codes.__getitem__, keys), dtype=np.int64, count=len(keys))
                self._merge(code, np.array(seqs, dtype=np.int64), np.array(values, dtype=np.int64), codes, names)

    def _packed(self, items: list[Span], codes: Codes, names: list[str], expanded: dict[int, Expansion]) -> bool:
        import numpy as np

        if self.wide:
            return False
        prev = self.seqs[-1] if self.seqs else 0
        keys: list[str] = []
        values: list[int] = []
        counts: list[int] = []
        seqs: list[int] = []
        chunks: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []

        def plain() -> bool:  # the entries gathered since the last record by reference, as codes
            if keys:
                vals = np.array(values)
                if vals.dtype != np.int64:
                    return False
                chunks.append((np.fromiter(map(codes.__getitem__, keys), dtype=np.int64, count=len(keys)), vals))
                keys.clear()
                values.clear()
            return True

        for span in items:
            seq = span.seq
            if seq <= prev:
                return False  # a repeat or a step back: the careful path says which
            prev = seq
            expansion = expanded.get(seq) if expanded else None
            if expansion is not None:
                if not plain():
                    return False
                chunks.append(expansion)
                counts.append(len(expansion[0]))
            else:
                vc = span.vc
                if vc:
                    keys.extend(vc)
                    values.extend(vc.values())
                counts.append(len(vc))
            seqs.append(seq)
        if not plain():
            return False
        n = sum(len(c) for c, _ in chunks)
        if not n:
            self.sums.extend([self.total + seq for seq in seqs])
        else:
            if len(chunks) == 1:
                code, vals = chunks[0]
            else:
                code = np.concatenate([c for c, _ in chunks])
                vals = np.concatenate([v for _, v in chunks])
            if int(vals.min()) < -_PACKED_MAX or int(vals.max()) > _PACKED_MAX:
                return False
            seq_e = np.repeat(np.array(seqs, dtype=np.int64), counts)
            # the running sum of the stream's clock: each entry adds what it raised its node by
            order = _stable_order(code, len(codes))
            code_s, val_s = code[order], vals[order]
            first = np.flatnonzero(np.concatenate(([True], code_s[1:] != code_s[:-1])))
            prev_s = np.empty_like(val_s)
            prev_s[1:] = val_s[:-1]
            prev_s[first] = [self.clock.get(names[c], 0) for c in code_s[first].tolist()]
            delta = np.empty_like(val_s)
            delta[order] = val_s - prev_s
            after = np.concatenate(([0], np.cumsum(delta)))[np.cumsum(counts)]
            self.sums.extend((after + np.array(seqs, dtype=np.int64) + self.total).tolist())
            self.total += int(after[-1])
            last = np.append(first[1:], n) - 1
            self.clock.update(zip([names[c] for c in code_s[first].tolist()], val_s[last].tolist(), strict=True))
            if self.at:
                self._merge(code, seq_e, vals, codes, names)
            else:  # a new stream (the whole session, on a first read): sorted already
                ends = last + 1
                self.ch_seq = _packed_array(seq_e[order])
                self.ch_val = _packed_array(val_s)
                self.at = dict(zip([names[c] for c in code_s[first].tolist()],
                                   zip(first.tolist(), ends.tolist(), strict=True), strict=True))
        self.seqs.extend(seqs)
        self.spans.extend(items)
        return True

    def _merge(self, code: np.ndarray[Any, Any], seq: np.ndarray[Any, Any], val: np.ndarray[Any, Any],
               codes: Codes, names: list[str]) -> None:
        """Add entries (in seq order) to the packed change points, which stay sorted by (entry, seq)."""
        import numpy as np

        if self.at:  # what is there already comes first in each entry's segment: a stable sort keeps it so
            old = sorted(self.at.items(), key=lambda kv: kv[1])
            lengths = [hi - lo for _, (lo, hi) in old]
            old_code = np.repeat(np.array([codes[k] for k, _ in old], dtype=np.int64), lengths)
            code = np.concatenate((old_code, code))
            seq = np.concatenate((_unpacked(self.ch_seq), seq))
            val = np.concatenate((_unpacked(self.ch_val), val))
        order = _stable_order(code, len(codes))
        code_s = code[order]
        first = np.flatnonzero(np.concatenate(([True], code_s[1:] != code_s[:-1])))
        ends = np.append(first[1:], len(code_s))
        self.ch_seq = _packed_array(seq[order])
        self.ch_val = _packed_array(val[order])
        self.at = dict(zip([names[c] for c in code_s[first].tolist()],
                           zip(first.tolist(), ends.tolist(), strict=True), strict=True))

    def entry(self, other: str, seq: int) -> int:
        """This stream's clock entry for `other` as of its record `seq`."""
        seg = self.at.get(other)
        if seg is None:
            return 0
        lo, hi = seg
        i = bisect_right(self.ch_seq, seq, lo, hi) - 1
        return self.ch_val[i] if i >= lo else 0


class CausalIndex:
    """Answers causal questions about a set of records from their delta clocks."""

    def __init__(self, spans: Iterable[Span] = (), *, lenient: bool = False) -> None:
        self._streams: dict[str, _Stream] = {}
        self._codes = Codes()
        self._names = self._codes.names
        #: a clock reference that cannot be resolved merges nothing instead of being an error
        #: (a salvaged session: a damaged frame may have held the record it names)
        self.lenient = lenient
        #: the records whose reference did not resolve (lenient only)
        self.unresolved: list[str] = []
        self._query: Query | None = None  # over the streams as they are, once asked enough
        self._asked = 0  # happens_before calls since the streams last changed
        self.extend(spans)

    def extend(self, spans: Iterable[Span]) -> None:
        self._query, self._asked = None, 0  # the streams change: a query table would be stale
        if _cindex is not None and not self._streams and not self.lenient:
            # a new index (a session read whole): built in C when it is the plain case
            items = spans if type(spans) is list else list(spans)
            built = _cindex.build(items, self._codes, self._names, _clockref.DENSE_CELLS)
            if built is not None:
                self._streams = {node: _Stream.built(*parts) for node, parts in built.items()}
                return
            spans = items
        pending: dict[str, list[Span]] = {}
        refs = False
        for span in spans:
            pending.setdefault(span.node, []).append(span)
            if span.merged:
                refs = True
        for items in pending.values():
            if any(b.seq < a.seq for a, b in itertools.pairwise(items)):
                items.sort(key=lambda s: s.seq)
        expanded = self._resolve(pending) if refs else {}
        for node, items in pending.items():
            stream = self._streams.get(node)
            if stream is None:
                stream = self._streams[node] = _Stream()
            stream.extend(items, self._codes, self._names, expanded.pop(node, None))

    def _resolve(self, pending: dict[str, list[Span]]) -> dict[str, dict[int, Expansion]]:
        """The change points of the records stored by reference, resolved in dependency order.

        Repeats of a record are dropped first (the first is kept, as the record-at-a-time path
        does): resolving one twice would merge onto a clock that already has it."""
        for node, items in pending.items():
            stream = self._streams.get(node)
            held = set(stream.seqs) if stream is not None and stream.seqs and items[0].seq <= stream.seqs[-1] else ()
            kept = [s for i, s in enumerate(items) if s.seq not in held and (i == 0 or s.seq != items[i - 1].seq)]
            if len(kept) != len(items):
                pending[node] = kept
        codes = self._codes
        for name in sorted(pending):
            codes[name]  # streams numbered first (in name order); others as the rows meet them
        streams = len(set(self._streams) | set(pending))
        rows = Rows(codes, dense=dense_fits(streams, max(len(codes), streams)))
        for node in pending:
            stream = self._streams.get(node)
            if stream is not None:
                rows.start(node, stream.clock)

        def earlier(node: str, seq: int) -> Any | None:
            stream = self._streams.get(node)
            if stream is None:
                return None
            i = bisect_left(stream.seqs, seq)
            if i == len(stream.seqs) or stream.seqs[i] != seq:
                return None
            clock = {other: stream.entry(other, seq) for other in stream.at}
            clock[node] = seq
            return rows.make(clock)

        found: dict[str, dict[int, Expansion]] = {}
        resolver = Resolver(rows, pending, earlier, lenient=self.lenient)
        for (node, seq), expansion in resolver.resolve().items():
            found.setdefault(node, {})[seq] = expansion
        self.unresolved += resolver.unresolved
        return found

    def __getstate__(self) -> dict[str, Any]:
        """Pickles without its query table (a C object over this process's memory)."""
        state = dict(self.__dict__)
        state["_query"], state["_asked"] = None, 0
        return state

    # --- lookups -------------------------------------------------------------------------

    def _locate(self, item: SpanLike) -> tuple[str, int]:
        if isinstance(item, Span):
            return item.node, item.seq
        try:
            return parse_ref(item)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def _stream(self, node: str) -> _Stream:
        stream = self._streams.get(node)
        if stream is None:
            raise UsageError(f"no node {node!r} in this session")
        return stream

    def span(self, ref: str) -> Span:
        node, seq = self._locate(ref)
        stream = self._stream(node)
        i = bisect_left(stream.seqs, seq)
        if i == len(stream.seqs) or stream.seqs[i] != seq:
            raise UsageError(f"no span {ref!r} in this session")
        return stream.spans[i]

    @property
    def nodes(self) -> list[str]:
        return sorted(self._streams)

    def clock(self, item: SpanLike) -> VectorClock:
        """The full vector clock of a record, rebuilt from the change points."""
        node, seq = self._locate(item)
        stream = self._stream(node)
        entries = {other: stream.entry(other, seq) for other in stream.at}
        entries[node] = seq
        return VectorClock(entries)

    def happens_before(self, a: SpanLike, b: SpanLike) -> bool:
        # the invariants, the races and the why of a finding ask this millions of times: in C
        # over one flat table (`_cindex.Query`) once it has been asked often enough to pay for
        # building it (≈ one query in 64 table cells), else, and for what C does not read, below
        query = self._query
        if query is None and _cindex is not None:
            self._asked += 1
            if self._asked > QUERY_AFTER + len(self._streams) * len(self._codes) // 64:
                query = self._query = _cindex.query(self._streams, self._codes, QUERY_CELLS)
                if query is None:  # too large, or not shaped for it: do not try again until it changes
                    self._asked = -(2**62)
        if query is not None:
            if type(a) is str and type(b) is str:
                found = query.happens_before(a, b)
            elif type(a) is Span and type(b) is Span:
                found = query.happens_before_at(a.node, a.seq, b.node, b.seq)
            else:
                found = None
            if found is not None:
                return found
        return self._happens_before(a, b)

    def _happens_before(self, a: SpanLike, b: SpanLike) -> bool:
        """The definition the C query is tested against."""
        if type(a) is str and type(b) is str:  # refs: split without the validating parser
            na, _, ta = a.rpartition(":")
            nb, _, tb = b.rpartition(":")
            if not (na and nb and ta.isdigit() and tb.isdigit()):
                self._locate(a), self._locate(b)  # raises the usual error
            sa, sb = int(ta), int(tb)
        else:
            na, sa = (a.node, a.seq) if type(a) is Span else self._locate(a)
            nb, sb = (b.node, b.seq) if type(b) is Span else self._locate(b)
        if na == nb:
            return sa < sb
        stream = self._streams.get(nb)
        if stream is None:
            return False
        seg = stream.at.get(na)
        if seg is None:
            return False
        lo, hi = seg
        i = bisect_right(stream.ch_seq, sb, lo, hi) - 1
        return i >= lo and stream.ch_val[i] >= sa

    def concurrent(self, a: SpanLike, b: SpanLike) -> bool:
        return (
            self._locate(a) != self._locate(b)
            and not self.happens_before(a, b)
            and not self.happens_before(b, a)
        )

    def causal_past(self, item: SpanLike, *, trace: str | None = None) -> list[Span]:
        """Every record that happened before `item` (not itself), in causal order."""
        node, seq = self._locate(item)
        clock = self.clock(f"{node}:{seq}")
        found: list[Span] = []
        for other, bound in clock.items():
            stream = self._streams.get(other)
            if stream is None:
                continue
            limit = seq if other == node else bound + 1
            found.extend(stream.spans[: bisect_left(stream.seqs, limit)])
        if trace is not None:
            found = [s for s in found if s.trace == trace]
        return self.causal_sort(found)

    def causal_future(self, item: SpanLike, *, trace: str | None = None) -> list[Span]:
        """Every record that `item` happened before, in causal order."""
        node, seq = self._locate(item)
        found: list[Span] = []
        for other, stream in self._streams.items():
            if other == node:
                found.extend(stream.spans[bisect_right(stream.seqs, seq) :])
                continue
            seg = stream.at.get(node)
            if seg is None:
                continue
            lo, hi = seg
            i = bisect_left(stream.ch_val, seq, lo, hi)
            if i < hi:
                first = stream.ch_seq[i]
                found.extend(stream.spans[bisect_left(stream.seqs, first) :])
        if trace is not None:
            found = [s for s in found if s.trace == trace]
        return self.causal_sort(found)

    def clock_sum(self, span: Span) -> int:
        stream = self._stream(span.node)
        i = bisect_left(stream.seqs, span.seq)
        if i == len(stream.seqs) or stream.seqs[i] != span.seq:
            raise UsageError(f"span {span.ref!r} is not in this index")
        return stream.sums[i]

    def causal_sort(self, spans: Iterable[Span]) -> list[Span]:
        """A linear extension of happens-before, the same on every run.

        If a → b then every entry of a's clock is ≤ b's and one is smaller, so the sum of
        entries strictly grows along every causal chain; ties break by node and seq.
        """
        return sorted(spans, key=lambda s: (self.clock_sum(s), s.node, s.seq))
