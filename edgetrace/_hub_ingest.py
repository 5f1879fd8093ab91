"""One batch of an agent's spans into a session: validate, place, store, acknowledge.

This is the part of the hub protocol (edgetrace._hub_protocol) that decides what a batch
means, sans I/O:

1. **Validate** with the readers' own decoder (`decode_spans`): a record that does not
   validate is not stored but *refused*, with the decoder's reason, when it says which it is
   (node and seq): a `Lost(by="hub")` marker accounts for its seq, the ack lists it, and the
   agent quarantines it instead of resending it forever. A record holding a clock by
   reference (`Span.merged`) is refused the same way: only compaction writes those. A batch
   that is not even a list of records drops the connection.
2. **Place** it in the node's stream (edgetrace._streams): the batch's incarnation maps its
   local seqs to stored ones; what the stream holds already is a duplicate (a resend after a
   lost ack); at a gap only what is stored is acknowledged, so the agent resends from there;
   a new incarnation continues the stream, and one whose numbers the stream already holds
   (a lost or rolled-back spool) gets an offset — its spans are stored, not dropped, and the
   hub says so. Ranges the agent lost to spool damage are recorded as lost.
3. **Store** markers, blobs and records as one writer batch, synced per the fsync policy,
   *before* the ack exists; a full disk rolls the batch back and answers `Busy`. An all-new
   batch at offset 0 is stored as the agent's compressed bytes, never re-encoded.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from edgetrace._codec import decode_span_ids, decode_spans
from edgetrace._errors import FrameError, StorageError
from edgetrace._records import Incarnation, Lost, Span, blob_id, parse_ref, span_ref
from edgetrace._streams import confirmed
from edgetrace._text import printable
from edgetrace._wire import Ack, Busy, Hello, IncarnationRef, Records
from edgetrace._writer import SessionWriter

if TYPE_CHECKING:
    from edgetrace._hub_protocol import HubProtocol

__all__ = ["store_batch"]

log = logging.getLogger("edgetrace.hub")

_LEGACY = IncarnationRef("", 1)
#: Why a record from an agent with `Span.merged` is refused: only compaction and merge write
#: clock references (they check each one), and a live session stays version 2.
_NO_REFS = "clock references (merged) are written only by compaction, never by an agent"


def store_batch(protocol: HubProtocol, hello: Hello, incarnations: list[tuple[str, int, int]], writer: SessionWriter,
                msg: Records) -> Ack | Busy:
    """Store what `msg` adds to `hello.node`'s stream; the ack (or Busy when the disk refuses)."""
    stats = protocol.stats
    node = hello.node
    inc = msg.incarnation or _LEGACY
    if not any(i == inc.id for i, _, _ in incarnations):
        incarnations.append((inc.id, inc.start, 0))  # a rebase during this connection
    payload = _unpack(protocol.max_frame, node, msg)
    spans, refused = _validate(node, payload)
    stream = writer.stream(node)
    state = stream.state(inc.id)
    local_last = state.local_last if state is not None else inc.start - 1
    lost: list[tuple[int, int, str, str]] = []  # local first, last, reason, by
    rejected: list[tuple[int, str]] = []
    seqs = [s.seq for s in spans]
    in_order = not refused and not msg.missing and seqs == list(range(local_last + 1, local_last + 1 + len(seqs)))
    if in_order:  # the usual batch: all new, in order
        taken, local_last = spans, local_last + len(seqs)
    else:
        taken = []
        items: list[tuple[int, int, Span | None, str, str]] = [(s.seq, s.seq, s, "", "") for s in spans]
        items += [(seq, seq, None, why, "hub") for seq, why in refused]
        items += [(a, b, None, why, "agent") for a, b, why in msg.missing if 1 <= a <= b]
        items.sort(key=lambda item: item[0])
        for first, last, span, why, by in items:
            if last <= local_last:
                stats.duplicates += last - first + 1
            elif first <= local_last + 1:
                if span is not None:
                    taken.append(span)
                else:
                    lost.append((local_last + 1, last, why, by))
                    if by == "hub":
                        rejected.append((last, why[:500]))
                local_last = last
            else:
                stats.gaps += 1
                break  # never store out of order: ack what we have, the agent resends from there
    if not taken and not lost:
        return Ack(node=node, seq=confirmed(writer.streams.get(node), incarnations),
                   offset=state.offset if state is not None else 0)
    first_local = seqs[0] if in_order else min([s.seq for s in taken] + [a for a, _, _, _ in lost])
    marker = None
    if state is None or stream.current != inc.id:
        offset, marker = _place(writer, node, inc, first_local, stream.high, stream.current)
    else:
        offset = state.offset
    stored = taken if offset == 0 else [_translate(s, offset) for s in taken]
    all_new = offset == 0 and in_order  # stored as the agent's bytes only if sent all new, in order
    try:
        with writer.batch():
            if marker is not None:
                writer.write_marker(marker)
            for a, b, why, by in lost:
                writer.write_marker(Lost(node=node, first=a + offset, last=b + offset, reason=why[:500], by=by))
            if taken:
                for sha, data in msg.blobs:
                    if blob_id(data) != sha:
                        raise FrameError(f"blob {sha[:12]}… from {node!r} does not match its content")
                    writer.put_blob(data, sha)
                if all_new:
                    writer.append_encoded(payload, stored, zlib_packed=msg.spans if msg.zlib else None,
                                          last=(node, local_last))
                else:
                    writer.append(stored)
            protocol.commit(writer)
    except StorageError as exc:
        stats.busy += 1
        log.error("%s", exc)
        return Busy(reason=str(exc), retry_after=1.0)
    if marker is not None and marker.reused:
        stats.rollbacks += 1
    stats.records += len(taken)
    stats.bytes += len(msg.spans)
    stats.rejected += len(rejected)
    stats.lost += sum(b - a + 1 for a, b, _, by in lost if by == "agent")
    for a, b, why, by in lost:
        log.warning("session %s: %s %s seq %d–%d: %s", hello.session,
                    "refused" if by == "hub" else "the agent lost", printable(node, limit=60), a + offset,
                    b + offset, printable(why, limit=200))
    if taken:
        protocol.forward(hello.session, lambda: stored)
    return Ack(node=node, seq=confirmed(writer.streams.get(node), incarnations), offset=offset, rejected=rejected)


def _place(writer: SessionWriter, node: str, inc: IncarnationRef, first_local: int, high: int,
           previous: str | None) -> tuple[int, Incarnation]:
    """Where an incarnation's spans go from `first_local` on: its offset and the marker that says so."""
    reused = max(0, high + 1 - first_local)  # stored seqs this incarnation's numbers would collide with
    marker = Incarnation(node=node, id=inc.id, start=first_local, base=first_local + reused,
                         previous=previous or "", reused=reused, restart=inc.restart)
    shown = printable(node, limit=60)
    if reused:
        log.warning("session %s: node %s reused seqs %d–%d that the session already holds (its spool was lost "
                    "or rolled back: incarnation %s); its spans are stored from seq %d on", writer.path.stem, shown,
                    first_local, high, printable(inc.id, limit=40), high + 1)
    elif first_local > high + 1 and high:
        log.warning("session %s: node %s continues at seq %d, the session holds up to %d: seqs %d–%d were "
                    "never shipped", writer.path.stem, shown, first_local, high, high + 1, first_local - 1)
    return reused, marker


def _translate(span: Span, offset: int) -> Span:
    """A span of an incarnation stored at an offset: its seq, and the refs to its own node's spans."""
    changes: dict[str, str | int] = {"seq": span.seq + offset}
    for field in ("parent", "cause"):
        ref = getattr(span, field)
        if ref:
            try:
                ref_node, ref_seq = parse_ref(ref)
            except ValueError:
                continue
            if ref_node == span.node:
                changes[field] = span_ref(ref_node, ref_seq + offset)
    return msgspec.structs.replace(span, **changes)


def _validate(node: str, payload: bytes) -> tuple[list[Span], list[tuple[int, str]]]:
    """The batch's valid records, and the seqs of those that are not (with the decoder's reason)."""
    try:
        spans = decode_spans(payload)
        refused: list[tuple[int, str]] = []
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        try:
            items = decode_span_ids(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise FrameError(f"records from {node!r} do not decode: {exc}") from None
        spans, refused = [], []
        for who, span, why in items:
            if span is not None:
                spans.append(span)
            elif who is not None and who.node == node and 1 <= who.seq < 2**63:
                refused.append((who.seq, why))
            else:
                raise FrameError(
                    f"a record from {node!r} does not validate and does not say which it is: {why}") from None
    _same_node(node, spans)
    if any(span.merged for span in spans):  # agents never write clock references (compaction does)
        refused += [(span.seq, _NO_REFS) for span in spans if span.merged]
        spans = [span for span in spans if not span.merged]
    return spans, refused


def _same_node(node: str, spans: Sequence[Span]) -> None:
    for span in spans:
        if span.node != node:
            raise FrameError(f"node {node!r} sent a span of {span.node!r}")


def _unpack(limit: int, node: str, msg: Records) -> bytes:
    """The batch's encoded spans; a compressed batch may not inflate past the frame limit."""
    if not msg.zlib:
        return msg.spans
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(msg.spans, limit)
    except zlib.error as exc:
        raise FrameError(f"records from {node!r} do not decompress: {exc}") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise FrameError(f"records from {node!r} inflate past the {limit}-byte frame limit or are cut short")
    return payload
