"""Consistent cuts of a recorded session: where a replay can start other than at the beginning.

A cut is one place in every node's stream — the seq of one of its state snapshots
(`edgetrace._snapshot`), or 0 for a node that starts afresh — such that no node's prefix holds
a message that was sent in another node's suffix: for every node B cut at `s_B` and every
other node A, the entry for A in B's clock at `s_B` is at most `s_A`. A replay can then restore
each node's state, re-send the messages that were in flight across the cut (sent in a prefix,
received in a suffix) and run only the suffixes.

Nodes snapshot independently (each when it is next idle after a period boundary), so the
latest snapshot of every node before some instant need not be consistent: the finder backs a
node off to its previous snapshot while its prefix received something sent after its sender's
cut, until the cut is consistent or a node runs out of snapshots.

    recorded snapshots ──► CutFinder (cut id | virtual time | span ref) ──► Cut ──► SimGrid.resume
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._errors import UsageError
from edgetrace._index import CausalIndex
from edgetrace._records import Span, parse_ref
from edgetrace._snapshot import RNG_BLOB, STATE_BLOB, is_snapshot
from edgetrace._units import format_duration, parse_duration

__all__ = ["Cut", "CutFinder", "at_text"]


@dataclass(frozen=True)
class Cut:
    """A consistent cut: per node, the seq of the snapshot its replay starts from (0: afresh)."""

    id: str
    at_ns: int  # the cut's time: its latest snapshot (`--from TIME` takes cuts at or before TIME)
    start_ns: int  # when the replay of the suffixes starts: its earliest snapshot
    seqs: dict[str, int] = field(default_factory=dict)

    def holds(self, node: str, seq: int) -> bool:
        """Whether record `node:seq` is before the cut (history a replay from it restores, not re-runs)."""
        return seq <= self.seqs.get(node, 0)

    def split(self, spans: Iterable[Span]) -> tuple[list[Span], list[Span]]:
        """(the records before the cut, those after it), each in the order given."""
        before: list[Span] = []
        after: list[Span] = []
        for span in spans:
            (before if self.holds(span.node, span.seq) else after).append(span)
        return before, after

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cut:
        """The cut a report names (`to_dict`'s form)."""
        seqs = {node: parse_ref(ref)[1] if ref else 0 for node, ref in data["nodes"].items()}
        return cls(str(data["id"]), int(data["at_ns"]), int(data["start_ns"]), seqs)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at_ns": self.at_ns, "at": at_text(self.at_ns), "start_ns": self.start_ns,
                "nodes": {node: (f"{node}:{seq}" if seq else "") for node, seq in sorted(self.seqs.items())}}


def at_text(ns: int) -> str:
    """A virtual time as `--from` takes it, rounded up to the millisecond (so it names this cut)."""
    ms = -(-ns // 1_000_000)
    return f"{ms // 1000}.{ms % 1000:03d}s"


def _admitted(node: str, found: list[Span], ok: Callable[[str, Span], bool]) -> int:
    """How many of `node`'s snapshots `found` (a prefix of them) `ok` admits, by bisection."""
    lo, hi = 0, len(found)
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(node, found[mid]):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _round(span: Span) -> int:
    value = span.attrs.get(attr.SNAPSHOT_ROUND)
    return value if isinstance(value, int) else 0


class CutFinder:
    """Finds the latest consistent cut of a recording at or before a given point."""

    def __init__(self, spans: Iterable[Span], index: CausalIndex, nodes: Iterable[str]) -> None:
        self._index = index
        self.nodes = sorted(nodes)
        # only snapshots that hold a state document can be restored (a skipped one says why not)
        self._usable: dict[str, list[Span]] = {node: [] for node in self.nodes}
        first: dict[str, int] = {}
        for span in spans:
            if span.node not in first or span.start < first[span.node]:
                first[span.node] = span.start
            if is_snapshot(span) and STATE_BLOB in span.blobs and RNG_BLOB in span.blobs and not span.error:
                self._usable.setdefault(span.node, []).append(span)
        for found in self._usable.values():
            found.sort(key=lambda s: s.seq)
        self._first_start = first

    @property
    def has_snapshots(self) -> bool:
        return any(self._usable.values())

    def latest(self, allowed: Callable[[str, Span], bool], cut_id: str) -> Cut | None:
        """The latest consistent cut made of snapshots that `allowed(node, snapshot)` admits.

        `allowed` must admit a prefix of each node's snapshots (true, then false, along its
        stream — as "round ≤ k", "taken by time T" and "before seq s" do): it is bisected."""
        choices = self._usable
        pos = {node: _admitted(node, choices[node], allowed) - 1 for node in self.nodes}

        def seq(node: str) -> int:
            return choices[node][pos[node]].seq if pos[node] >= 0 else 0

        changed = True
        while changed:
            changed = False
            for b in self.nodes:  # sorted: the same cut whatever the order of discovery
                while pos[b] >= 0:
                    clock = self._index.clock(choices[b][pos[b]])
                    if all(clock.get(a, 0) <= seq(a) for a in self.nodes if a != b):
                        break
                    pos[b] -= 1  # b's prefix received a message sent after its sender's cut
                    changed = True
        chosen = {node: choices[node][pos[node]] for node in self.nodes if pos[node] >= 0}
        if not chosen:
            return None
        start = min(s.start for s in chosen.values())
        # a node restarted from nothing must have done nothing before the replay starts
        for node in self.nodes:
            if node not in chosen and self._first_start.get(node, start) < start:
                return None
        return Cut(cut_id, max(s.start for s in chosen.values()), start, {node: seq(node) for node in self.nodes})

    def cuts(self) -> list[Cut]:
        """Every distinct consistent cut, one per snapshot round (`c<round>`), in time order."""
        rounds = sorted({_round(s) for found in self._usable.values() for s in found})
        found: list[Cut] = []
        seen: set[tuple[tuple[str, int], ...]] = set()
        for k in rounds:
            cut = self.by_round(k)
            if cut is None:
                continue
            identity = tuple(sorted(cut.seqs.items()))
            if identity not in seen:
                seen.add(identity)
                found.append(cut)
        return found

    def by_round(self, k: int) -> Cut | None:
        return self.latest(lambda _node, s: _round(s) <= k, f"c{k}")

    def resolve(self, text: str) -> Cut:
        """`--from`: a cut id (`c12`), a virtual time (`59m`) or a span ref (`node:seq`)."""
        if not self.has_snapshots:
            raise UsageError("--from: the session has no state snapshots to start from; record it with "
                             "--snapshot-every (e.g. 10s)")
        text = text.strip()
        cut: Cut | None
        if text[:1] == "c" and text[1:].isdigit():
            listed = self.cuts()
            for known in listed:
                if known.id == text:
                    return known
            near = ", ".join(c.id for c in listed[-5:]) or "none"
            raise UsageError(f"--from {text}: no such cut; the session has {len(listed)} (latest: {near}; "
                             "list them with edgetrace show SESSION --cuts)")
        if ":" in text:
            try:
                node, seq = parse_ref(text)
                target = self._index.span(text)
            except (ValueError, UsageError) as exc:
                raise UsageError(f"--from {text}: {exc}") from None
            cut = self.latest(lambda n, s: s.start <= target.start and (n != node or s.seq < seq), text)
            what = f"before span {text}"
        else:
            try:
                at = parse_duration(text)
            except ValueError as exc:
                raise UsageError(f"--from {text!r}: expected a cut id (c12), a virtual time (59m) or a span "
                                 f"ref (node:seq); as a time: {exc}") from None
            cut = self.latest(lambda _n, s: s.start <= at, text)
            what = f"at or before {format_duration(at)}"
        if cut is None:
            raise UsageError(f"--from {text}: no consistent cut {what}; the first snapshots come later "
                             "(list the cuts with edgetrace show SESSION --cuts)")
        rounds = [_round(self._index.span(f"{n}:{q}")) for n, q in cut.seqs.items() if q]
        named = self.by_round(max(rounds))  # the same cut by its id, when the list has it
        return named if named is not None and named.seqs == cut.seqs else cut
