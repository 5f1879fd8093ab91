"""Plans and checks are checked against what they talk about, before anything runs.

A fault or an invariant that names a node, link, model, policy, topic, message kind or state key
that does not exist is a typo, and a typo must not pass as "no divergence, no violation": it is
bad input (exit 2) with a "did you mean" from the names that do exist. What exists comes from the
session (nodes, topics and keys seen) and the app (models, policies, handled topics, initial
state); a grid harness with no session offers its nodes and the app.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edgetrace import _attrs as attr
from edgetrace._errors import FaultSpecError, InvariantError
from edgetrace._records import Span, SpanKind
from edgetrace.replay.faults import FaultPlan
from edgetrace.replay.faults._params import Link

if TYPE_CHECKING:
    from edgetrace.agents._app import App
    from edgetrace.replay._invariants import Invariant

__all__ = ["Universe", "check_faults", "check_invariants"]

#: What a network fault's `op` can name: the kinds of messages between nodes.
MESSAGE_OPS = ("call", "reply", "send", "state.get", "state.put")
_WHAT = {"node": "node", "model": "model", "policy": "policy", "topic": "topic", "op": "message kind",
         "key": "state key"}


@dataclass
class Universe:
    """The names a plan or a check may refer to."""

    nodes: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    ops: set[str] = field(default_factory=lambda: set(MESSAGE_OPS))
    where: str = "the session"

    @classmethod
    def of(cls, app: App, nodes: Iterable[str], spans: Iterable[Span] = (), *, where: str = "the session") -> Universe:
        u = cls(nodes=set(nodes), models=set(app.models), policies=set(app.policies),
                topics=set(app.handled_topics()), keys=set(app.initial_state), where=where)
        for span in spans:
            u.nodes.add(span.node)
            if span.kind in (SpanKind.SEND, SpanKind.RECV, SpanKind.INPUT):
                u.topics.add(span.name.removesuffix(":reply"))
            elif span.kind in (SpanKind.STATE_GET, SpanKind.STATE_PUT):
                u.keys.add(span.name)
            elif span.kind is SpanKind.INFER:
                u.models.add(span.name)
            elif span.kind is SpanKind.DECIDE:
                u.policies.add(span.name)
            topic = span.attrs.get(attr.TOPIC)
            if isinstance(topic, str):
                u.topics.add(topic)
        return u

    def names(self, target: str) -> set[str]:
        return {"node": self.nodes, "model": self.models, "policy": self.policies, "topic": self.topics,
                "op": self.ops, "key": self.keys}[target]


def _unmatched(target: str, glob: str, universe: Universe) -> str | None:
    """Why `glob` names nothing of `target` in the universe (None when it matches something)."""
    names = universe.names(target)
    if any(fnmatch.fnmatchcase(name, glob) for name in names):
        return None
    what = _WHAT[target]
    known = sorted(names)
    close = difflib.get_close_matches(glob, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(known[:12]) + (" …" if len(known) > 12 else "") if known else "none"
    return f"{what} {glob!r} matches no {what} of {universe.where} ({listing}){hint}"


def check_faults(plan: FaultPlan, universe: Universe) -> None:
    """Raise FaultSpecError for the first fault target that matches nothing."""
    for fault in plan.faults:
        for target, key, value in fault.targets():
            globs: Sequence[tuple[str, str]]
            if target == "link":
                assert isinstance(value, Link)
                globs = [("node", value.src), ("node", value.dst)]
            elif isinstance(value, tuple):
                globs = [(target, g) for g in value]
            else:
                globs = [(target, str(value))]
            for what, glob in globs:
                problem = _unmatched(what, glob, universe)
                if problem is not None:
                    raise FaultSpecError(f"{fault}: {key}={value}: {problem}", spec=str(fault), token=glob)


_NAME_TARGET = {"infer": "model", "decide": "policy", "send": "topic", "recv": "topic", "input": "topic",
                "state.get": "key", "state.put": "key"}


def check_invariants(invariants: Sequence[Invariant], universe: Universe) -> None:
    """Raise InvariantError for the first selector whose node or step name matches nothing."""
    for inv in invariants:
        for selector in inv.selectors():
            problem = _unmatched("node", selector.node, universe) if selector.node != "*" else None
            target = _NAME_TARGET.get(selector.kind or "")
            if problem is None and target is not None and selector.name != "*":
                name = selector.name.removesuffix(":reply") if target == "topic" else selector.name
                problem = _unmatched(target, name, universe)
            if problem is not None:
                raise InvariantError(f"invariant {inv.name!r}: `{selector}`: {problem}")
