"""The record model: what one recorded step of a reasoning chain looks like.

A `Span` is written by the recorder on the node where the step ran, shipped to the hub,
stored in a session and read back by the replayer and the explorer. Records are frozen,
typed msgspec structs encoded as MessagePack arrays; the schema-evolution rule is that every
field added after `blobs` has a default, so old sessions decode with new code.
"""

from __future__ import annotations

import enum
import hashlib
import re
from typing import Any, TypeVar

import msgspec

__all__ = [
    "FORMAT_VERSION",
    "Manifest",
    "Span",
    "SpanKind",
    "Status",
    "blob_id",
    "is_session_id",
    "parse_ref",
    "span_ref",
]

T = TypeVar("T")

#: Integer version of the session and spool formats (see docs/format.md).
FORMAT_VERSION = 1


class SpanKind(enum.StrEnum):
    """What a step did. Values are the names used in fault specs and queries."""

    INPUT = "input"
    INFER = "infer"
    DECIDE = "decide"
    SEND = "send"
    RECV = "recv"
    STATE_GET = "state.get"
    STATE_PUT = "state.put"
    ACT = "act"
    LOG = "log"
    FAULT = "fault"
    OTEL = "otel"

    @classmethod
    def parse(cls, text: str) -> SpanKind:
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(k.value for k in cls)
            from edgetrace._errors import UsageError

            raise UsageError(f"unknown span kind {text!r}; expected one of: {valid}") from None


class Status(enum.StrEnum):
    OK = "ok"
    ERROR = "error"


_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_session_id(text: str) -> bool:
    """A session id names a file in the hub's data folder: no separators, no dot first."""
    return bool(_SESSION_ID.match(text))


def span_ref(node: str, seq: int) -> str:
    """The identity of a span within a session: its node and per-node sequence number."""
    return f"{node}:{seq}"


def parse_ref(ref: str) -> tuple[str, int]:
    node, sep, seq = ref.rpartition(":")
    if not sep or not node or not seq.isdigit():
        raise ValueError(f"bad span reference {ref!r}: expected NODE:SEQ")
    return node, int(seq)


class Span(msgspec.Struct, frozen=True, array_like=True, kw_only=True):
    """One recorded step.

    `vc` holds only the entries of *other* nodes that changed since this node's previous
    record; the node's own entry is `seq`. Use the session's causal index for full clocks.
    Times are local nanoseconds on the node's clock, so they may be skewed between nodes;
    causal order comes from the clocks, never from the times.
    """

    node: str
    seq: int
    kind: SpanKind
    name: str
    trace: str = ""
    parent: str = ""
    cause: str = ""
    start: int = 0
    end: int = 0
    vc: dict[str, int] = {}
    attrs: dict[str, Any] = {}
    status: Status = Status.OK
    error: str = ""
    blobs: dict[str, str] = {}

    @property
    def ref(self) -> str:
        return span_ref(self.node, self.seq)

    @property
    def duration(self) -> int:
        return max(0, self.end - self.start)

    @property
    def failed(self) -> bool:
        return self.status is Status.ERROR


class Manifest(msgspec.Struct, kw_only=True):
    """What a session is a recording of: enough to rebuild the grid and re-run it.

    Written as the first frame of a session; later manifest frames add to it (nodes seen
    later, models loaded later), so a reader merges them in file order.
    """

    session_id: str = ""
    app: str = ""
    app_ref: str = ""
    scenario: str = ""
    profile: str = ""
    seed: int = 0
    nodes: list[str] = []
    models: dict[str, str] = {}
    policies: dict[str, str] = {}
    created: str = ""
    python: str = ""
    edgetrace: str = ""
    meta: dict[str, Any] = {}

    def merged(self, other: Manifest) -> Manifest:
        """Combine with a later manifest frame: later scalars win, collections union."""
        def pick(a: T, b: T) -> T:
            return b if b not in ("", 0, None) else a

        return Manifest(
            session_id=pick(self.session_id, other.session_id),
            app=pick(self.app, other.app),
            app_ref=pick(self.app_ref, other.app_ref),
            scenario=pick(self.scenario, other.scenario),
            profile=pick(self.profile, other.profile),
            seed=pick(self.seed, other.seed),
            nodes=sorted(set(self.nodes) | set(other.nodes)),
            models={**self.models, **other.models},
            policies={**self.policies, **other.policies},
            created=pick(self.created, other.created),
            python=pick(self.python, other.python),
            edgetrace=pick(self.edgetrace, other.edgetrace),
            meta={**self.meta, **other.meta},
        )


def blob_id(data: bytes) -> str:
    """Content address of a payload blob."""
    return hashlib.sha256(data).hexdigest()
