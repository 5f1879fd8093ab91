"""Network faults: what happens to one message between two nodes.

Each kind adjusts a message's `Fate` — its delivery delay, extra copies, or loss — and the
injector applies them in a fixed order whatever the plan's order: partition, drop, latency,
jitter, bandwidth, reorder, duplicate (a dropped message draws nothing more). Every kind but
partition applies with probability `p`, drawn from the sending node's fault RNG.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

from edgetrace.replay.faults._base import param, register
from edgetrace.replay.faults._params import (
    BOOL,
    COPIES,
    DELAY,
    DURATION,
    LINK,
    NODES,
    RATE,
    Delay,
    Link,
    Rate,
    glob,
)
from edgetrace.replay.faults._scope import Chance, Window

__all__ = ["Bandwidth", "Drop", "Duplicate", "Fate", "Jitter", "Latency", "MessageFacts", "MessageFault",
           "NetworkFault", "Partition", "Reorder"]


@dataclass(frozen=True)
class MessageFacts:
    """What a network fault may look at: the message's link, kind, payload and timing (ns)."""

    src: str
    dst: str
    op: str  # message kind: send, call, reply, state.get, state.put
    topic: str
    payload: object
    sent_at: int
    base_delay: int
    step: tuple[str, str, str, str, int] | None = None  # the step that sent it (a StepKey), if known

    @cached_property
    def size(self) -> int:
        """Bytes the payload takes on the link, roughly (only bandwidth faults ask)."""
        return len(repr(self.payload))


@dataclass
class Fate:
    """What becomes of one message: a delay, extra copies after it, or loss."""

    delay: int
    copies: list[int] = field(default_factory=list)
    dropped: bool = False

    def delays(self) -> list[int]:
        return [] if self.dropped else [self.delay, *self.copies]


_SCOPE = ("link", "nodes", "op", "topic", "at", "for", "until", "p")


@dataclass(frozen=True, kw_only=True)
class MessageFault(Window):
    """Scoped to messages by link, node group, message kind (op) and topic, in a time window."""

    stage: ClassVar[int]  # where in the fixed order of network effects this kind applies
    link: Link | None = param(LINK)
    nodes: tuple[str, ...] | None = param(NODES)
    op: str | None = param(glob("op"))
    topic: str | None = param(glob("topic"))

    def hits(self, msg: MessageFacts) -> bool:
        raise NotImplementedError

    def fires(self, rng: random.Random) -> bool:
        raise NotImplementedError

    def affect(self, fate: Fate, msg: MessageFacts, rng: random.Random) -> None:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class NetworkFault(Chance, MessageFault):
    """A message fault that applies with probability `p` to messages touching `nodes`."""

    def hits(self, msg: MessageFacts) -> bool:
        if self.link is not None and not self.link.matches(msg.src, msg.dst):
            return False
        if self.nodes is not None and not any(
                fnmatch.fnmatchcase(msg.src, g) or fnmatch.fnmatchcase(msg.dst, g) for g in self.nodes):
            return False
        if not self.active(msg.sent_at):
            return False
        if self.op is not None and not fnmatch.fnmatchcase(msg.op, self.op):
            return False
        return not (self.topic is not None and not fnmatch.fnmatchcase(msg.topic, self.topic))


@register
@dataclass(frozen=True, kw_only=True)
class Latency(NetworkFault):
    name = "latency"
    keys = ("delay", *_SCOPE)
    stage = 2
    delay: Delay = param(DELAY, required=True)

    def affect(self, fate: Fate, msg: MessageFacts, rng: random.Random) -> None:
        fate.delay += self.delay.draw(rng)


@register
@dataclass(frozen=True, kw_only=True)
class Jitter(NetworkFault):
    name = "jitter"
    keys = ("amount", *_SCOPE)
    stage = 3
    amount: int = param(DURATION, required=True)

    def affect(self, fate: Fate, msg: MessageFacts, rng: random.Random) -> None:
        fate.delay = max(0, fate.delay + rng.randint(-self.amount, self.amount))


@register
@dataclass(frozen=True, kw_only=True)
class Drop(NetworkFault):
    name = "drop"
    keys = _SCOPE
    stage = 1

    def affect(self, fate: Fate, msg: MessageFacts, rng: random.Random) -> None:
        fate.dropped = True


@register
@dataclass(frozen=True, kw_only=True)
class Duplicate(NetworkFault):
    name = "duplicate"
    keys = ("copies", "gap", *_SCOPE)
    stage = 6
    copies: int | None = param(COPIES)
    gap: int | None = param(DURATION)

    def affect(self, fate: Fate, msg: MessageFacts, rng: random.Random) -> None:
        gap = self.gap or 0
        fate.copies += [fate.delay + gap * (i + 1) for i in range(self.copies or 1)]


@register
@dataclass(frozen=True, kw_only=True)
class Reorder(NetworkFault):
    name = "reorder"
    keys = ("window", *_SCOPE)
    stage = 5
    window: int = param(DURATION, required=True)

    def affect(self, fate: Fate, msg: MessageFacts, rng: random.Random) -> None:
        fate.delay += rng.randint(0, self.window)


@register
@dataclass(frozen=True, kw_only=True)
class Bandwidth(NetworkFault):
    name = "bandwidth"
    keys = ("rate", *_SCOPE)
    stage = 4
    rate: Rate = param(RATE, required=True)

    def affect(self, fate: Fate, msg: MessageFacts, rng: random.Random) -> None:
        fate.delay += int(msg.size * 8 / self.rate.bps * 1e9)


@register
@dataclass(frozen=True, kw_only=True)
class Partition(MessageFault):
    """Cut nodes off (`nodes=a` from everyone else, `nodes=a|b` between two groups, or a `link`).

    Messages sent while cut are held until the partition heals, then delivered; with no end
    the partition never heals and they are lost. Always applies (no `p`).
    """

    name = "partition"
    keys = ("nodes", "link", "oneway", "op", "topic", "at", "for", "until")
    stage = 0
    oneway: bool | None = param(BOOL)

    def fires(self, rng: random.Random) -> bool:
        return True

    def hits(self, msg: MessageFacts) -> bool:
        if not self.active(msg.sent_at):
            return False
        if self.op is not None and not fnmatch.fnmatchcase(msg.op, self.op):
            return False
        if self.topic is not None and not fnmatch.fnmatchcase(msg.topic, self.topic):
            return False
        if self.link is not None and not self.link.matches(msg.src, msg.dst):
            return False
        groups = self.nodes
        if groups is None:
            return self.link is not None
        ends = (msg.src, msg.dst)
        if len(groups) > 1:  # a|b: cut between the two groups
            in_a = [fnmatch.fnmatchcase(n, groups[0]) for n in ends]
            in_b = [any(fnmatch.fnmatchcase(n, g) for g in groups[1:]) for n in ends]
            return (in_a[0] and in_b[1]) or (in_b[0] and in_a[1] and not self.oneway)
        side = [fnmatch.fnmatchcase(n, groups[0]) for n in ends]
        if self.oneway:
            return side[0] and not side[1]
        return side[0] != side[1]

    def affect(self, fate: Fate, msg: MessageFacts, rng: random.Random) -> None:
        heal = self.heal_time()
        if heal is None:
            fate.dropped = True
            return
        fate.delay = max(fate.delay, heal - msg.sent_at + msg.base_delay)
