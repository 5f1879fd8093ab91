"""Replay from a consistent cut: equal to the suffix of a full replay, faithful and faulted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgetrace import CausalIndex
from edgetrace._records import Span
from edgetrace._snapshot import SNAPSHOT, STATE_BLOB
from edgetrace.agents._snapshot import Snapshotter
from edgetrace.replay import Replayer
from edgetrace.replay._cuts import Cut
from edgetrace.replay._resume import CutStart
from edgetrace.replay.testing import GridHarness

sys.path.insert(0, str(Path(__file__).parent))
import cutapp


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    grid = GridHarness(cutapp.app, cutapp.NODES, profile=cutapp.PROFILE, seed=3, snapshot_every="10s")
    grid.inputs(cutapp.inputs(minutes=2))
    run = grid.run(until="150s")
    return run.save(tmp_path_factory.mktemp("cut") / "cutapp.ets")


@pytest.fixture(scope="module")
def replayer(recorded: Path) -> Replayer:
    return Replayer(recorded, app=cutapp.app)


def suffix(spans: list[Span], cut: Cut) -> list[Span]:
    return sorted((s for s in spans if s.seq > cut.seqs.get(s.node, 0)), key=lambda s: (s.node, s.seq))


def by_stream(spans: list[Span]) -> list[Span]:
    return sorted(spans, key=lambda s: (s.node, s.seq))


def test_snapshots_are_records_that_a_faithful_replay_writes_back(replayer: Replayer) -> None:
    recorded = [s for s in replayer.recording.spans if s.name == SNAPSHOT]
    assert len(recorded) > 20 and all(STATE_BLOB in s.blobs for s in recorded)
    report, run = replayer.run()
    assert report.fidelity == 1.0 and not report.divergences
    replayed = {s.ref: s for s in run.spans if s.name == SNAPSHOT}
    assert sorted(replayed) == sorted(s.ref for s in recorded)  # at the same places, not as steps
    # written back where the recording took them (once idle), so every clock is the recorded one
    replayed_index, recorded_index = CausalIndex(run.spans), replayer.session.index
    assert [(s.ref, s.start, s.end, replayed_index.clock(s)) for s in by_stream(run.spans)] == \
        [(s.ref, s.start, s.end, recorded_index.clock(s)) for s in by_stream(replayer.recording.spans)]
    assert report.steps_recorded == len(replayer.recording.keys)


def test_the_session_has_consistent_cuts_with_messages_in_flight(replayer: Replayer) -> None:
    cuts = replayer.cuts.cuts()
    assert len(cuts) >= 5
    flying = [len(CutStart.build(replayer.recording, replayer.session.index, c).in_flight) for c in cuts]
    assert any(flying), "no cut has a message in flight across it: the test would not test re-sending"


def test_replay_from_every_cut_equals_the_suffix_of_a_full_replay(replayer: Replayer) -> None:
    _, full = replayer.run()
    for cut in replayer.cuts.cuts():
        report, run = replayer.run(start=cut)
        assert by_stream(run.spans) == suffix(full.spans, cut), cut.id
        assert report.fidelity == 1.0 and not report.divergences
        assert report.steps_recorded == len(suffix([s for s in full.spans if s.ref in full.keys], cut))


@pytest.mark.parametrize("faults", [
    ["latency(op=state.put, delay=2s, at={at})"],
    ["drop(link=rover-*->rover-*, p=0.5, at={at})", "jitter(link=*->hub, amount=300ms, at={at})"],
    ["crash(node=rover-2, at={at}, restart={later})"],
])
def test_replay_from_a_cut_under_faults_after_it_equals_the_full_replay_suffix(
        replayer: Replayer, faults: list[str]) -> None:
    from edgetrace.replay.faults import FaultPlan

    cuts = replayer.cuts.cuts()
    cut = cuts[len(cuts) // 2]
    at, later = f"{cut.at_ns // 1_000_000 + 1}ms", f"{cut.at_ns // 1_000_000 + 9001}ms"  # after every snapshot
    plan = FaultPlan.parse([f.format(at=at, later=later) for f in faults])
    # the recording's seed: another one re-seeds ctx.rng from the start, so a full replay would
    # differ before the cut already, while the cut restores the recorded rng (docs/replay.md)
    _, full = replayer.run(plan=plan)
    report, run = replayer.run(plan=plan, start=cut)
    assert full.faults_applied > 0
    assert by_stream(run.spans) == suffix(full.spans, cut)
    assert report.faults_applied == sum(1 for s in suffix(full.spans, cut) if s.kind.value == "fault")


def test_without_restoring_state_the_suffix_diverges(replayer: Replayer, monkeypatch: pytest.MonkeyPatch) -> None:
    cut = replayer.cuts.cuts()[-2]
    monkeypatch.setattr(Snapshotter, "restore", lambda self, state: None)
    report, _ = replayer.run(start=cut)
    assert report.divergences and report.fidelity < 1.0


def test_the_same_cut_plan_and_seed_give_the_same_report_bytes(replayer: Replayer) -> None:
    from edgetrace.replay.faults import FaultPlan

    cut = replayer.cuts.cuts()[-3]
    plan = FaultPlan.parse(["jitter(link=*->hub, amount=500ms, p=0.5)"])
    first = replayer.run(plan=plan, start=cut.id)[0].to_json()
    again = Replayer(replayer.session.path, app=cutapp.app).run(plan=plan, start=cut.id)[0].to_json()
    assert first == again
    assert b'"from_cut"' in first


def test_a_time_or_a_span_picks_the_latest_cut_at_or_before_it(replayer: Replayer) -> None:
    cuts = replayer.cuts.cuts()
    middle = cuts[len(cuts) // 2]
    assert replayer.cut(f"{middle.at_ns}ns").id == middle.id
    assert replayer.cut(f"{middle.at_ns - 1}ns").at_ns < middle.at_ns
    later = [s for s in replayer.recording.spans if s.node == "rover-1" and s.seq > middle.seqs["rover-1"]]
    picked = replayer.cut(later[0].ref)
    assert picked.seqs["rover-1"] < later[0].seq
    assert all(replayer.session.get(f"{n}:{s}").start <= later[0].start  # type: ignore[union-attr]
               for n, s in picked.seqs.items() if s)


def test_a_node_whose_memory_is_not_plain_data_records_why_it_skipped(tmp_path: Path) -> None:
    from edgetrace.agents import App, Context

    app = App("odd", state_host="a")

    @app.on("tick", nodes="a")
    async def tick(ctx: Context, n: int) -> None:
        ctx.local["pair"] = (n, n + 1)  # a tuple would come back a list

    grid = GridHarness(app, ["a"], snapshot_every="1s")
    for i in range(5):
        grid.input("a", "tick", i, at=i * 0.6)
    run = grid.run(until="5s")
    skipped = [s for s in run.spans if s.name == SNAPSHOT]
    assert skipped and all(s.error.startswith("snapshot skipped: ctx.local['pair'] is a tuple") for s in skipped)
    assert not any(s.blobs for s in skipped)
    assert len([s for s in run.spans if s.name == "tick"]) == 5  # the app carried on
