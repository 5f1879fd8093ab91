"""The simulated network: how long each message takes, whether it arrives, and in what order.

A message the recording also sent takes the recorded delay (or is lost again, if it was lost
then); a message the recording never sent (a retry, a new message after a policy swap) is
timed by the grid profile, drawn from a per-link RNG seeded by (seed, link). The fault
injector then adjusts the delay (or drops, duplicates, holds) and each adjustment is
recorded as a FAULT span on the sender. Arrival respects the receiving node's lifecycle: a
crashed node loses what arrives, a paused node receives it when it resumes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from edgetrace import _attrs as attr
from edgetrace._records import Span
from edgetrace._stepkey import StepKey
from edgetrace.agents._grid import GridProfile
from edgetrace.agents._message import Message
from edgetrace.replay._loop import VirtualLoop
from edgetrace.replay.faults import FaultInjector, MessageFacts

if TYPE_CHECKING:
    from edgetrace.replay._recording import Recording

__all__ = ["Lifecycle", "SimNetwork"]


class Lifecycle:
    """Which nodes are down (crashed) and until when each is paused (virtual ns)."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.paused_until: dict[str, int] = {}

    def held_until(self, node: str) -> int:
        return self.paused_until.get(node, 0)


class SimNetwork:
    """Routes messages between the simulated nodes on the virtual loop."""

    def __init__(self, loop: VirtualLoop, *, seed: int, profile: GridProfile, injector: FaultInjector,
                 lifecycle: Lifecycle, positions: Mapping[str, StepKey], recording: Recording | None,
                 fault: Callable[[str, str, str, str, dict[str, object]], None]) -> None:
        self._loop = loop
        self._seed = seed
        self._profile = profile
        self._injector = injector
        self._lifecycle = lifecycle
        self._positions = positions
        self._recording = recording
        self._fault = fault  # (sender, fault, spec, trace, attrs): a FAULT span on the sender
        self._link_rngs: dict[tuple[str, str], random.Random] = {}
        self._deliver: dict[str, Callable[[Message], None]] = {}

    def attach(self, node: str, deliver: Callable[[Message], None]) -> None:
        self._deliver[node] = deliver

    def _link_rng(self, src: str, dst: str) -> random.Random:
        rng = self._link_rngs.get((src, dst))
        if rng is None:
            rng = self._link_rngs[(src, dst)] = random.Random(f"{self._seed}/link/{src}->{dst}")
        return rng

    def route(self, sender: str, msg: Message, span: Span, *, hold_ns: int = 0) -> None:
        """Send `msg` (recorded as `span`) from `sender`, leaving `hold_ns` from now."""
        if msg.dst not in self._deliver:
            self._fault(sender, "unroutable", f"no node {msg.dst!r}", msg.trace, {})
            return
        key = self._positions.get(span.ref)
        recording = self._recording
        base: int | None
        known, base = recording.delay(key) if (recording is not None and key) else (False, None)
        if not known:
            base = self._profile.link(msg.src, msg.dst).draw(self._link_rng(msg.src, msg.dst))
            if base is None and recording is not None:
                base = recording.link_median.get((msg.src, msg.dst))
        if base is None:
            return  # lost in the recording (or by the profile): lost again
        now = self._loop.time_ns() + hold_ns
        op = msg.kind.value
        delays = self._injector.message(MessageFacts(msg.src, msg.dst, op, msg.topic, msg.payload, now, base, key))
        if delays != [base]:
            effect = "dropped" if not delays else (
                f"duplicated ×{len(delays)}" if len(delays) > 1 else f"delayed {(delays[0] - base) / 1e6:+.0f} ms")
            self._fault(sender, "network", f"{op} {msg.src}→{msg.dst} {effect}", msg.trace,
                        {attr.FAULT_MESSAGE: span.ref, attr.FAULT_TO: msg.dst})
        for delay in delays:
            self._loop.call_at_ns(now + max(0, int(delay)), self._arrive, msg)

    def arrive_at(self, at_ns: int, msg: Message) -> None:
        """A message already on its way (sent before a cut) arrives at `at_ns`."""
        self._loop.call_at_ns(max(at_ns, self._loop.time_ns()), self._arrive, msg)

    def _arrive(self, msg: Message) -> None:
        if msg.dst in self._lifecycle.down:
            return
        held = self._lifecycle.held_until(msg.dst)
        if held > self._loop.time_ns():
            self._loop.call_at_ns(held, self._arrive, msg)
            return
        self._deliver[msg.dst](msg)
