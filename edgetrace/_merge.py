"""Merging sessions: one run recorded by more than one hub, put back together exactly.

A fleet too large (or too spread out) for one hub ships to several; each hub's session holds
the streams of the nodes that reached it. Every record is identified by (node, seq) and
carries its own vector-clock delta, and blobs are content-addressed, so the parts combine
without guessing:

    A.ets ─┐  per node: records by seq (a record in both parts must be the same record)
    B.ets ─┼─► blobs by sha256 (checked against their content) ──► S.ets
      …   ─┘  manifest: identity fields must agree; nodes, models, policies, meta unite

Records keep each node's order; nodes are interleaved by recorded start time, as a single hub
would roughly have received them (readers and the replayer order by causality, never by file
position). A node's stream with a gap — the run continued on a hub that is not among the
parts — is refused, naming the node and the missing seqs, unless `allow_gaps`.

Parts compacted with clocks by reference (`Span.merged`) keep them: the output is then of
format 3 (`CLOCK_REF_VERSION`), and a record by reference is written after the record whose
clock it merges even when its start time is earlier (skewed clocks), so the output follows
the rule compaction keeps: every reference points back in the file.
"""

from __future__ import annotations

import heapq
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetrace._codec import encode
from edgetrace._errors import UsageError
from edgetrace._records import CLOCK_REF_VERSION, FORMAT_VERSION, Manifest, Span, blob_id
from edgetrace._session import Session, SessionWriter

__all__ = ["MergeResult", "merge_manifests", "merge_sessions"]

_IDENTITY = ("session_id", "app", "app_ref", "scenario", "profile", "seed")


@dataclass
class MergeResult:
    """What a merge wrote: records and blobs per part, duplicates dropped, the output."""

    out: Path
    records: int
    blobs: int
    nodes: list[str]
    duplicates: int = 0
    parts: list[dict[str, Any]] = field(default_factory=list)
    sealed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "records": self.records, "blobs": self.blobs, "nodes": self.nodes,
                "duplicates": self.duplicates, "sealed": self.sealed, "parts": self.parts}


def merge_manifests(manifests: Sequence[tuple[str, Manifest]]) -> Manifest:
    """One manifest for the parts of one run: identity fields agree (or are unset), the rest unite."""
    merged = Manifest()
    for name, m in manifests:
        for key in _IDENTITY:
            mine, theirs = getattr(merged, key), getattr(m, key)
            if mine not in ("", 0) and theirs not in ("", 0) and mine != theirs:
                raise UsageError(f"{name} is not part of the same run: its {key} is {theirs!r}, "
                                 f"the other parts' is {mine!r}")
        for kind in ("models", "policies"):
            ours, theirs = getattr(merged, kind), getattr(m, kind)
            for artifact, sha in theirs.items():
                if artifact in ours and ours[artifact] != sha:
                    raise UsageError(f"{name}: {kind[:-1] if kind == 'models' else 'policy'} {artifact!r} is "
                                     f"{sha[:12]}…, another part recorded {ours[artifact][:12]}…")
        for key, value in m.meta.items():
            if key in merged.meta and encode(merged.meta[key]) != encode(value):
                raise UsageError(f"{name}: manifest meta {key!r} is {value!r}, another part has "
                                 f"{merged.meta[key]!r}")
        merged = merged.merged(m)
    return merged


def merge_sessions(parts: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                   allow_gaps: bool = False, compress: bool | str = "zstd") -> MergeResult:
    """Write the session that combines `parts` (sessions of one run from different hubs) to `out`."""
    if len(parts) < 2:
        raise UsageError("merge needs at least two sessions")
    out = Path(out)
    paths = [Path(p) for p in parts]
    if any(out.resolve() == p.resolve() for p in paths if p.exists()):
        raise UsageError(f"--out {out} is one of the sessions being merged")
    sessions = [Session.open(p) for p in paths]
    manifest = merge_manifests([(str(s.path), s.manifest) for s in sessions])
    streams: dict[str, dict[int, Span]] = {}
    encoded: dict[tuple[str, int], bytes] = {}
    duplicates = 0
    info = []
    for session in sessions:
        info.append({"session": str(session.path), "records": len(session.spans), "sealed": session.sealed,
                     "torn": session.torn})
        for span in session.spans:
            stream = streams.setdefault(span.node, {})
            known = stream.get(span.seq)
            if known is None:
                stream[span.seq] = span
                continue
            mine = encoded.setdefault((span.node, span.seq), encode(known))
            if encode(span) != mine:
                raise UsageError(f"{session.path}: record {span.ref} differs from the record {span.ref} of "
                                 "another part: these are not parts of the same run")
            duplicates += 1
    for node, stream in sorted(streams.items()):
        seqs = sorted(stream)
        missing = sorted(set(range(1, seqs[-1] + 1)) - set(seqs))
        if missing and not allow_gaps:
            shown = ", ".join(str(n) for n in missing[:8]) + (" …" if len(missing) > 8 else "")
            raise UsageError(f"node {node!r}: records {shown} are in none of the sessions (another hub's "
                             "part is missing?); pass --allow-gaps to merge what there is")
    blobs: dict[str, tuple[Session, str]] = {}
    for session in sessions:
        for sha in sorted(session.blob_ids()):
            blobs.setdefault(sha, (session, sha))
    ordered: Iterable[Span] = heapq.merge(*(
        [stream[seq] for seq in sorted(stream)] for _, stream in sorted(streams.items())
    ), key=lambda s: (s.start, s.node, s.seq))
    by_reference = any(span.merged for stream in streams.values() for span in stream.values())
    if by_reference:
        ordered = _references_back(ordered)
    sealed = all(s.sealed for s in sessions)
    tmp = out.with_name(f".{out.name}.merging")
    tmp.unlink(missing_ok=True)
    records = 0
    try:
        with SessionWriter(tmp, manifest, compress=compress,
                           format_version=CLOCK_REF_VERSION if by_reference else FORMAT_VERSION) as writer:
            for sha, (session, _) in sorted(blobs.items()):
                data = session.blob(sha)
                if blob_id(data) != sha:
                    raise UsageError(f"{session.path}: blob {sha[:12]}… does not match its content")
                writer.put_blob(data, sha)
            batch: list[Span] = []
            for span in ordered:
                batch.append(span)
                if len(batch) == 2000:
                    writer.append(batch)
                    records += len(batch)
                    batch = []
            writer.append(batch)
            records += len(batch)
            if sealed:
                writer.seal()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return MergeResult(out, records, len(blobs), sorted(streams), duplicates, info, sealed)


def _references_back(ordered: Iterable[Span]) -> Iterator[Span]:
    """`ordered` with each record by reference held back until the record it merges is out.

    A node's records behind a held one wait with it (each node's order is kept). A reference
    to a record none of the parts holds cannot be satisfied: such records come out last, in
    node order (readers then name the missing record)."""
    out: set[tuple[str, int]] = set()
    held: dict[str, deque[Span]] = {}  # node → its records waiting, in order
    waiting: dict[tuple[str, int], list[str]] = {}  # record → the nodes whose next record merges it
    work: deque[str] = deque()  # nodes whose first waiting record may go now

    def emitted(span: Span) -> None:
        key = (span.node, span.seq)
        out.add(key)
        work.extend(waiting.pop(key, ()))

    for span in ordered:
        queue = held.get(span.node)
        if queue is not None:
            queue.append(span)
            continue
        target = _target(span)
        if target is not None and target not in out:
            held[span.node] = deque([span])
            waiting.setdefault(target, []).append(span.node)
            continue
        yield span
        emitted(span)
        while work:
            node = work.popleft()
            queue = held[node]
            while queue:
                first = queue[0]
                target = _target(first)
                if target is not None and target not in out:
                    waiting.setdefault(target, []).append(node)
                    break
                yield queue.popleft()
                emitted(first)
            if not queue:
                del held[node]
    for node in sorted(held):
        yield from held[node]


def _target(span: Span) -> tuple[str, int] | None:
    if not span.merged:
        return None
    node, _, seq = span.merged.rpartition(":")
    return (node, int(seq)) if node and seq.isdigit() else None
