"""One runtime, any world: NodeRuntime run on the in-memory world, and the live world's parts."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from edgetrace import SpanKind
from edgetrace import _attrs as attrs_names
from edgetrace.agents import App, Context, FunctionRunner, MemoryWorld, NodeRuntime, RegoPolicy
from edgetrace.agents._message import MessageKind


def test_runtime_records_through_any_world():
    app = App("unit", state_host="hub")
    app.model("double", func=lambda x: {"y": x["x"] * 2})
    fired: list[dict[str, object]] = []

    @app.on("go")
    async def go(ctx: Context, payload: dict[str, int]) -> None:
        out = await ctx.infer("double", payload)
        await ctx.act("beep", loud=out["y"] > 5)
        await ctx.send("hub", "seen", out)

    world = MemoryWorld(start_ns=1_000, actuators={"beep": lambda **kw: fired.append(kw)})
    node = NodeRuntime(app, "n1", world)

    async def main() -> None:
        node.inject("go", {"x": 3}, "t1")
        while node.tasks:
            await asyncio.sleep(0)

    asyncio.run(main())
    kinds = [s.kind for s in world.sink.spans]
    assert kinds == [SpanKind.INPUT, SpanKind.INFER, SpanKind.ACT, SpanKind.SEND]
    infer = world.sink.spans[1]
    assert infer.attrs[attrs_names.OUTPUT] == {"y": 6} and infer.start == 1_000
    assert infer.attrs[attrs_names.MODEL_SHA256] == FunctionRunner("double", app.models["double"].func).sha256
    assert fired == [{"loud": True}]  # the world carried the actuation out
    ((msg, span),) = world.sent
    assert msg.kind is MessageKind.SEND and msg.cause == span.ref and msg.vc == {"n1": 4}
    assert world.positions[span.ref] == ("t1", "n1", "send", "seen", 1)


def test_function_model_and_file_model_are_exclusive():
    app = App("unit")
    from edgetrace import ConfigError

    with pytest.raises(ConfigError, match="exactly one"):
        app.model("m", "x.onnx", func=lambda x: x)
    with pytest.raises(ConfigError, match="exactly one"):
        app.model("m")


POLICY = """package race

import rego.v1

decision := input.id
work := count([x | some x in numbers.range(1, 60); x % 7 == input.id % 7])
"""


def test_concurrent_decides_on_one_node_each_get_their_own_result(tmp_path):
    """Evaluations on worker threads (live decides with a timeout) never see each other's input."""
    path = tmp_path / "race.rego"
    path.write_text(POLICY)
    policy = RegoPolicy("race", path)
    results: dict[int, object] = {}
    barrier = threading.Barrier(8)

    def worker(offset: int) -> None:
        barrier.wait()
        for i in range(offset, 800, 8):
            results[i] = policy.evaluate({"id": i}).value

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i for i in range(800)}  # one interpreter for all: ≈ 0.5–4 % wrong


def test_a_policy_has_one_hash_whatever_its_line_ends(tmp_path):
    """The manifest and the decide span name a CRLF policy file by the same sha256."""
    path = tmp_path / "crlf.rego"
    path.write_bytes(b"package crlf\r\n\r\ndecision := \"ok\"\r\n")
    app = App("crlf")
    app.policy("p", path)
    _, policies = app.artifact_hashes()
    assert policies["p"] == RegoPolicy("p", path).sha256 == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def test_live_world_refuses_nothing_and_runs_actuators():
    from edgetrace.agents import LiveWorld, MemorySink

    calls: list[int] = []
    world = LiveWorld("n", MemorySink(), epoch_ns=0, peers={}, actuators={"spray": lambda zone: calls.append(zone)})
    act = world.actuator("spray")
    assert act is not None and world.actuator("other") is None
    act(zone=3)
    assert calls == [3]


def test_scenario_files_have_the_manifest_hash():
    from edgetrace.scenarios.agri.scenario import app

    _, policies = app.artifact_hashes()
    for name, sha in policies.items():
        assert RegoPolicy(name, Path(app.policies[name].path)).sha256 == sha
