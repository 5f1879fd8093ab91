"""What a replay from a cut starts with: each node's state, and the messages in flight.

Built from the recording alone. A node cut at its snapshot `n:s` gets back the snapshot's
state document (`ctx.local`, the state store, `ctx.rng`, the call counter) and, from the
snapshot's place in its stream, the rest: seq `s`, the vector clock of `n:s` and the step
numbering of `n:1 … n:s`. A message is in flight across the cut when its send is in the
sender's prefix and its receipt in the receiver's suffix; it is rebuilt from the recorded send
(the exact payload blob a snapshotting node keeps when the preview is not the payload, else the
preview) and arrives when it arrived in the recording. Inputs after the cut come from the
recorded input schedule, as in any replay.

    Cut ──► CutStart (states, clocks, step counts, in-flight messages, inputs) ──► SimGrid.resume
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._codec import decode_any
from edgetrace._errors import ReplayError
from edgetrace._index import CausalIndex
from edgetrace._records import Span, SpanKind
from edgetrace._snapshot import MESSAGE_BLOB, RNG_BLOB, STATE_BLOB, SnapshotState
from edgetrace._stepkey import StepKey
from edgetrace.agents._message import Message, MessageKind
from edgetrace.replay._cuts import Cut
from edgetrace.replay._recording import RecordedInput, Recording, arrival, departure

__all__ = ["CutStart", "NodeStart"]


@dataclass
class NodeStart:
    """One node's place at the cut."""

    seq: int
    clock: dict[str, int]  # the full clock of its snapshot record, its own entry included
    counts: dict[tuple[str, str, str], int]  # steps taken per (trace, kind, name)
    state: SnapshotState


@dataclass
class CutStart:
    cut: Cut
    nodes: dict[str, NodeStart] = field(default_factory=dict)  # nodes cut at a snapshot
    prefix_keys: dict[str, StepKey] = field(default_factory=dict)  # the steps before the cut
    in_flight: list[tuple[int, Message]] = field(default_factory=list)  # (arrival ns, message)
    inputs: list[RecordedInput] = field(default_factory=list)

    @classmethod
    def build(cls, recording: Recording, index: CausalIndex, cut: Cut) -> CutStart:
        start = cls(cut)
        seqs = cut.seqs
        for ref, key in recording.keys.items():
            node, _, seq = ref.rpartition(":")
            if cut.holds(node, int(seq)):
                start.prefix_keys[ref] = key
        counts: dict[str, dict[tuple[str, str, str], int]] = {n: {} for n, s in seqs.items() if s}
        for trace, node, kind, name, occurrence in start.prefix_keys.values():
            slot = (trace, kind, name)
            if occurrence > counts[node].get(slot, 0):
                counts[node][slot] = occurrence
        for node, at in sorted(seqs.items()):
            if not at:
                continue
            snapshot = recording.session.get(f"{node}:{at}")
            if snapshot is None or STATE_BLOB not in snapshot.blobs or RNG_BLOB not in snapshot.blobs:
                raise ReplayError(f"cut {cut.id}: {node}:{at} is not a snapshot with a state")
            try:
                blob = recording.session.blob
                state = SnapshotState.decode(blob(snapshot.blobs[STATE_BLOB]), blob(snapshot.blobs[RNG_BLOB]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ReplayError(f"cut {cut.id}: the snapshot {node}:{at} cannot be read: {exc}") from None
            start.nodes[node] = NodeStart(at, dict(index.clock(snapshot)), counts[node], state)
        start.inputs = recording.inputs(after=seqs)
        start.in_flight = _in_flight(recording, index, seqs)
        return start


def _in_flight(recording: Recording, index: CausalIndex, seqs: dict[str, int]) -> list[tuple[int, Message]]:
    found: list[tuple[int, int, str, Message]] = []
    for received in recording.spans:
        if not received.cause or received.seq <= seqs.get(received.node, 0):
            continue
        src, _, sent_seq = received.cause.rpartition(":")
        if int(sent_seq) > seqs.get(src, 0):
            continue  # sent in the suffix too: the replay sends it again
        sent = recording.session.get(received.cause)
        if sent is None:
            continue
        msg = _message(recording, index, sent, received)
        if msg is not None:
            key = recording.keys.get(sent.ref)
            delay = recording.delays.get(key) if key is not None else None
            at = departure(sent) + delay if delay is not None else arrival(received)
            found.append((at, departure(sent), sent.ref, msg))
    found.sort(key=lambda item: (item[0], item[1], item[2]))
    return [(at, msg) for at, _, _, msg in found]


def _payload(recording: Recording, span: Span, shown: Any) -> Any:
    sha = span.blobs.get(MESSAGE_BLOB)
    if not sha:
        return shown
    try:
        return decode_any(recording.session.blob(sha))
    except ValueError as exc:  # msgspec's DecodeError is one: the blob is data from elsewhere
        raise ReplayError(f"the payload of {span.ref}, in flight across the cut, cannot be read: {exc}") from None


def _message(recording: Recording, index: CausalIndex, sent: Span, received: Span) -> Message | None:
    """The message `sent` carried to `received`, as the sender's runtime built it."""
    a = sent.attrs
    common: dict[str, Any] = {"src": sent.node, "dst": received.node, "trace": sent.trace,
                              "vc": dict(index.clock(sent)), "cause": sent.ref}
    call_id = received.attrs.get(attr.CALL_ID, a.get(attr.CALL_ID, 0))
    call_id = call_id if isinstance(call_id, int) else 0
    if sent.kind is SpanKind.SEND:
        payload = _payload(recording, sent, a.get(attr.PAYLOAD))
        if sent.name.endswith(":reply"):
            return Message(kind=MessageKind.REPLY, topic=sent.name.removesuffix(":reply"), payload=payload,
                           call_id=call_id, error=sent.error, **common)
        if attr.CALL_ID in a:
            return Message(kind=MessageKind.CALL, topic=str(a.get(attr.TOPIC, sent.name)), payload=payload,
                           call_id=call_id, **common)
        return Message(kind=MessageKind.SEND, topic=sent.name, payload=payload, **common)
    if sent.kind in (SpanKind.STATE_GET, SpanKind.STATE_PUT):
        op = sent.kind.value
        if sent.cause:  # the state host served a request: this is its reply
            value = _payload(recording, sent, a.get(attr.STATE_VALUE)) if sent.kind is SpanKind.STATE_GET else None
            return Message(kind=MessageKind.REPLY, topic=op, payload=value, call_id=call_id, error=sent.error,
                           **common)
        request: dict[str, Any] = {"key": a.get(attr.STATE_KEY, sent.name)}
        if sent.kind is SpanKind.STATE_PUT:
            request["value"] = _payload(recording, sent, a.get(attr.STATE_VALUE))
        return Message(kind=MessageKind(op), topic=op, payload=request, call_id=call_id, **common)
    return None
