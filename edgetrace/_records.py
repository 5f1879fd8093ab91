"""The record model: what one recorded step of a reasoning chain looks like.

A `Span` is written by the recorder on the node where the step ran, shipped to the hub,
stored in a session and read back by the replayer and the explorer. Records are frozen,
typed msgspec structs encoded as MessagePack arrays; the schema-evolution rule is that every
field added after `blobs` has a default, so old sessions decode with new code.

The types are also the rules of what a record may hold, enforced by the one decoder that
the hub validates with and every reader reads with (edgetrace._codec): sequence numbers
from 1, clock entries ≥ 0, times within ±2^62 ns (±146 years), attribute values that are
JSON values (null, booleans, 64-bit integers, floats, strings, lists, maps with string keys)
nested at most `ATTR_DEPTH` deep — no extension types, no binary, no non-string keys.
Markers (`Incarnation`, `Lost`) are what a session says about a node's stream besides its
records: where an agent restarted, what was lost or refused and why.
"""

from __future__ import annotations

import enum
import hashlib
import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar, Union

import msgspec

__all__ = [
    "ATTR_DEPTH",
    "CLOCK_REF_VERSION",
    "FORMAT_VERSION",
    "READS_VERSIONS",
    "Incarnation",
    "Lost",
    "Manifest",
    "Marker",
    "Span",
    "SpanKind",
    "Status",
    "blob_id",
    "is_session_id",
    "parse_ref",
    "span_ref",
]

T = TypeVar("T")

#: Integer version of the session and spool formats written live (see docs/format.md).
FORMAT_VERSION = 2
#: The version of a session whose records may hold a clock by reference (`Span.merged`):
#: written only by compaction and merge, which check every reference they write. A build
#: that reads only version 2 would ignore the field and rebuild wrong clocks, so it refuses
#: the file instead.
CLOCK_REF_VERSION = 3
#: Versions this build reads: 1 (no markers, no incarnations), 2 and 3 (clock references).
READS_VERSIONS = (1, 2, 3)
#: How deeply attribute values may nest (lists and maps inside the attribute map).
ATTR_DEPTH = 8

_I64 = 2**63 - 1
Seq = Annotated[int, msgspec.Meta(ge=1, le=_I64)]
Count = Annotated[int, msgspec.Meta(ge=0, le=_I64)]
Nanos = Annotated[int, msgspec.Meta(ge=-(2**62), le=2**62)]


def _json_value(depth: int) -> Any:
    """The type of a JSON value nested at most `depth` deep (msgspec checks it in C)."""
    value: Any = Union[None, bool, int, float, str]  # noqa: UP007 (built at run time)
    for _ in range(depth):
        value = Union[None, bool, int, float, str, list[value], dict[str, value]]  # noqa: UP007
    return value


if TYPE_CHECKING:
    AttrValue = Any
else:
    AttrValue = _json_value(ATTR_DEPTH)


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


class Span(msgspec.Struct, frozen=True, array_like=True, kw_only=True, gc=False):
    """One recorded step.

    Not tracked by the cyclic garbage collector (`gc=False`): a span holds strings, numbers
    and maps of JSON values, never a reference back to itself, and a hub or an explorer
    holding a million of them would otherwise pay for the collector walking them all (the
    hub's ingest rate rose ≈ 1.6× on log-sized records; bench/bench_live.py).

    `vc` holds only the entries of *other* nodes that changed since this node's previous
    record; the node's own entry is `seq`. Use the session's causal index for full clocks.
    `merged`, when set, is the ref of another node's record whose clock this one merged (a
    receive's send): the clock is then the entry-wise max of the node's previous clock and
    that record's, with the entries in `vc` taking their value from `vc` instead. A receive
    in a dense grid changes hundreds of entries that its send already holds; compaction
    stores them by reference (docs/format.md, "Clocks by reference").
    Times are local nanoseconds on the node's clock, so they may be skewed between nodes;
    causal order comes from the clocks, never from the times.
    """

    node: str
    seq: Seq
    kind: SpanKind
    name: str
    trace: str = ""
    parent: str = ""
    cause: str = ""
    start: Nanos = 0
    end: Nanos = 0
    vc: dict[str, Count] = {}
    attrs: dict[str, AttrValue] = {}
    status: Status = Status.OK
    error: str = ""
    blobs: dict[str, str] = {}
    merged: Annotated[str, msgspec.Meta(pattern=r"\A(?:[^\n]+:[1-9][0-9]{0,18})?\Z")] = ""

    @property
    def ref(self) -> str:
        return f"{self.node}:{self.seq}"  # span_ref, inlined: asked for on every recorded step

    @property
    def duration(self) -> int:
        return max(0, self.end - self.start)

    @property
    def failed(self) -> bool:
        return self.status is Status.ERROR


class Manifest(msgspec.Struct, kw_only=True):
    """What a session is a recording of: enough to rebuild the grid and re-run it.

    Written as the first frame of a session; later manifest frames (an agent's hello, the
    recorder's seal) may only *add* to it, so a reader merges them in file order with
    `merged`: the identity fields (`IDENTITY`: session_id, app, app_ref, scenario, profile,
    created, python, edgetrace) are fixed by the first frame that sets them — the seed by the
    first frame that sets any of them (0 is a seed) — as is every
    `meta` key and the hash of every model and policy name; `nodes` accumulate, and models,
    policies and meta keys not named before are added. A frame appended later — by an agent, a
    hello from another process, or someone editing the file — cannot change what a session
    says it is.
    """

    session_id: str = ""
    app: str = ""
    app_ref: str = ""
    scenario: str = ""
    profile: str = ""
    seed: Annotated[int, msgspec.Meta(ge=-(2**63), le=_I64)] = 0
    nodes: list[str] = []
    models: dict[str, str] = {}
    policies: dict[str, str] = {}
    created: str = ""
    python: str = ""
    edgetrace: str = ""
    meta: dict[str, AttrValue] = {}

    #: Fields fixed by the first manifest frame that gives them a value.
    IDENTITY: ClassVar[tuple[str, ...]] = ("session_id", "app", "app_ref", "scenario", "profile", "seed",
                                           "created", "python", "edgetrace")

    def merged(self, other: Manifest) -> Manifest:
        """Combine with a later manifest frame: what is set stays, what is new is added."""
        def keep(a: T, b: T) -> T:
            return a if a not in ("", 0, None) else b

        return Manifest(
            session_id=keep(self.session_id, other.session_id),
            app=keep(self.app, other.app),
            app_ref=keep(self.app_ref, other.app_ref),
            scenario=keep(self.scenario, other.scenario),
            profile=keep(self.profile, other.profile),
            seed=self.seed if self.identified else other.seed,  # 0 is a seed too
            nodes=sorted(set(self.nodes) | set(other.nodes)),
            models={**other.models, **self.models},
            policies={**other.policies, **self.policies},
            created=keep(self.created, other.created),
            python=keep(self.python, other.python),
            edgetrace=keep(self.edgetrace, other.edgetrace),
            meta={**other.meta, **self.meta},
        )

    @property
    def identified(self) -> bool:
        """True once a frame has said what the session is (its seed is then fixed as well)."""
        return any(getattr(self, f) for f in self.IDENTITY if f != "seed")

    def conflicts(self, other: Manifest) -> list[str]:
        """Fields of `other` that a merge would ignore because this manifest fixed them otherwise."""
        found = [f for f in self.IDENTITY
                 if (getattr(self, f) not in ("", 0) or (f == "seed" and self.identified))
                 and getattr(other, f) not in ("", 0) and getattr(self, f) != getattr(other, f)]
        for name, table, theirs in (("models", self.models, other.models),
                                    ("policies", self.policies, other.policies),
                                    ("meta", self.meta, other.meta)):
            found += [f"{name}.{k}" for k in sorted(set(table) & set(theirs)) if table[k] != theirs[k]]
        return found


class Incarnation(msgspec.Struct, frozen=True, kw_only=True, tag="incarnation", tag_field="kind"):
    """A marker: from stored seq `base` on, `node`'s spans come from agent incarnation `id`.

    An incarnation is one run of an agent over one spool (Kafka's producer id + epoch): every
    agent start is a new one (`restart`), and so is a rebase (`restart` false), when a running
    agent renumbers to follow the hub after it learned its spool had been lost or rolled
    back. The agent numbers spans locally from `start`; the hub stores them from `base`
    (= start + the offset it chose, usually 0). `reused` > 0 means the hub already held
    that many seqs the incarnation reused: a rollback the hub detected and stored around.
    In a spool the same marker has node "" and base = start.
    """

    node: str
    id: str
    start: Seq
    base: Seq
    previous: str = ""
    reused: Count = 0
    restart: bool = True


class Lost(msgspec.Struct, frozen=True, kw_only=True, tag="lost", tag_field="kind"):
    """A marker: `node`'s seqs `first`..`last` are accounted for but not stored, and why.

    `by` is "agent" (damaged in its spool: it quarantined them) or "hub" (a record that did
    not validate: refused, not stored).
    """

    node: str
    first: Seq
    last: Seq
    reason: str
    by: str = "agent"

    @property
    def count(self) -> int:
        return self.last - self.first + 1


Marker = Incarnation | Lost


def blob_id(data: bytes) -> str:
    """Content address of a payload blob."""
    return hashlib.sha256(data).hexdigest()
