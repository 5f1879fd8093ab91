"""Periodic snapshots of one node's state, taken while it is quiescent (`edgetrace._snapshot`).

A coroutine cannot be saved, so a snapshot is only taken when none of the node's handlers is
running: once a period boundary (a multiple of the period on the node's own clock, so the
nodes of a grid aim at the same instants) has passed, the first moment the node finishes
what it was doing and is idle, and then at every idle moment for a quarter of the period (the
window). Nodes do not coordinate, so one node's snapshot may hold a reply that another sent
after its own; several places to cut in per node let the replayer find a consistent set
(`replay/_cuts.py`). A node that is never idle defers its snapshot until it is; a node with
nothing to do takes none (its state has not changed). State that is not plain data
(an object in `ctx.local`) cannot be stored as data: the node records the snapshot as skipped,
with the reason, and carries on.

The same object runs live and in a simulated recording. A replay never takes snapshots of its
own: it writes the recorded ones back at their places (`replay/_world.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgetrace import _attrs as attr
from edgetrace._records import SpanKind
from edgetrace._snapshot import RNG_BLOB, SNAPSHOT, STATE_BLOB, SnapshotState, plain_data_problem

if TYPE_CHECKING:
    from edgetrace.agents._node import NodeRuntime

__all__ = ["MAX_STATE_BYTES", "Snapshotter"]

#: The largest state document a snapshot stores (the hub's frames are 16 MiB at most).
MAX_STATE_BYTES = 4 * 1024 * 1024


class Snapshotter:
    """Decides when one node takes a snapshot, takes it, and restores one."""

    def __init__(self, runtime: NodeRuntime, period_ns: int) -> None:
        self._runtime = runtime
        self.period_ns = max(0, int(period_ns))
        # after each boundary the node snapshots at every idle moment for a quarter of the period:
        # nodes snapshot independently, and more places to cut in make a consistent cut likely (a
        # state host answering a stream of calls needs one between each caller's exchanges)
        self.window_ns = self.period_ns // 4
        self._round = 0
        self._window_end = 0
        self._last_seq = -1

    def poke(self) -> None:
        """The node just finished something: take the snapshot that is due, if it is idle now."""
        runtime = self._runtime
        if not self.period_ns or runtime.tasks or runtime.recorder.seq == self._last_seq:
            return
        now = runtime.world.now_ns()
        boundary = now // self.period_ns
        if boundary > self._round:  # the first idle moment after a boundary (deferred if busy)
            self._round = boundary
            self._window_end = boundary * self.period_ns + self.window_ns
        elif now >= self._window_end:
            return
        self.take(boundary, now)

    def capture(self, round_: int) -> tuple[SnapshotState | None, str]:
        """The node's state now, or why it cannot be stored as data."""
        runtime = self._runtime
        problem = plain_data_problem(runtime.local, "ctx.local")
        store = runtime.state.store if runtime.node == runtime.state.host else None
        if not problem and store is not None:
            problem = plain_data_problem(store, "the state store")
        if problem:
            return None, problem
        version, words, gauss = runtime.rng.getstate()
        return SnapshotState(node=runtime.node, round=round_, local=runtime.local,
                             store=store, rng=(version, words, gauss),
                             next_call=runtime.messaging.next_call), ""

    def take(self, round_: int, now: int) -> None:
        """Record one snapshot (or its skipping) as a record in the node's stream."""
        runtime = self._runtime
        state, problem = self.capture(round_)
        attrs: dict[str, object] = {attr.SNAPSHOT_ROUND: round_}
        blobs: dict[str, str] = {}
        if state is not None:
            data, rng = state.encode()
            if len(data) > MAX_STATE_BYTES:  # a blob travels in one frame to the hub: keep it far below
                problem = f"the state is {len(data):,} bytes, over the {MAX_STATE_BYTES:,} a snapshot may hold"
            else:
                attrs[attr.SNAPSHOT_BYTES] = len(data) + len(rng)
                blobs[STATE_BLOB] = runtime.recorder.blob(data)
                blobs[RNG_BLOB] = runtime.recorder.blob(rng)  # its own blob: an unused rng is stored once
        span = runtime.recorder.record(SpanKind.LOG, SNAPSHOT, start=now, attrs=attrs, blobs=blobs,
                                       error=f"snapshot skipped: {problem}" if problem else "")
        self._last_seq = span.seq

    def restore(self, state: SnapshotState) -> None:
        """Put a snapshot's state back (a replay from a cut; seq, clock and step numbering are
        restored from the snapshot's place in the recording, not from here)."""
        runtime = self._runtime
        runtime.local.clear()
        runtime.local.update(state.local)
        if state.store is not None:
            runtime.state.store.clear()
            runtime.state.store.update(state.store)
        version, words, gauss = state.rng
        runtime.rng.setstate((version, tuple(words), gauss))
        runtime.messaging.next_call = state.next_call
