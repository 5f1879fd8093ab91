"""ROS 2 bags as recorded inputs: a bag built with rosbags' own writer, read back as inputs,
recorded live by `edgetrace record --inputs-from`, replayed in virtual time with faults."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgetrace import UsageError
from edgetrace.agents import TopicMap, bag_inputs, bag_source

CAPTIONS = ["a dandelion between rows 3 and 4", "clear soil", "a thistle near the fence", "clear soil",
            "wilting seedlings"]


def make_bag(path: Path, *, n: int = 25, period_ns: int = 20_000_000, storage: str = "mcap") -> Path:
    """A rosbag2 bag of `n` caption messages at 1/period (50 Hz by default) plus an IMU-ish topic."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    String = store.types["std_msgs/msg/String"]
    Vector3 = store.types["geometry_msgs/msg/Vector3"]
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        captions = writer.add_connection("/camera/caption", "std_msgs/msg/String", typestore=store)
        imu = writer.add_connection("/imu/accel", "geometry_msgs/msg/Vector3", typestore=store)
        t0 = 1_700_000_000_000_000_000
        for i in range(n):
            text = CAPTIONS[i % len(CAPTIONS)]
            writer.write(captions, t0 + i * period_ns,
                         store.serialize_cdr(String(data=text), "std_msgs/msg/String"))
            writer.write(imu, t0 + i * period_ns + 1, store.serialize_cdr(
                Vector3(x=0.1 * i, y=0.0, z=9.81), "geometry_msgs/msg/Vector3"))
    return path


@pytest.fixture()
def bag(tmp_path: Path) -> Path:
    return make_bag(tmp_path / "ride")


def test_bag_topics_become_inputs(bag):
    found = bag_inputs(bag, ["/camera/caption=frame@rover-1"])
    assert len(found) == 25
    assert [x.at for x in found[:3]] == [0.0, 0.02, 0.04]
    assert {x.node for x in found} == {"rover-1"} and {x.topic for x in found} == {"frame"}
    assert found[0].payload == {"data": CAPTIONS[0]} and found[0].trace == "rover-1/frame-00001"
    both = bag_inputs(bag, [TopicMap("/camera/caption", "frame", "rover-1"), "/imu/accel=accel@rover-2"])
    assert len(both) == 50
    accel = next(x for x in both if x.topic == "accel")
    assert accel.payload == {"x": 0.0, "y": 0.0, "z": 9.81} and accel.node == "rover-2"
    assert bag_source(bag, ["/camera/caption=frame@rover-1"])(0, 3) == found


def test_sqlite_bags_read_the_same(tmp_path):
    mcap_bag, sqlite_bag = make_bag(tmp_path / "a"), make_bag(tmp_path / "b", storage="sqlite3")
    assert bag_inputs(mcap_bag, ["/camera/caption=frame@r"]) == bag_inputs(sqlite_bag, ["/camera/caption=frame@r"])


def test_bad_mappings_say_what_to_do(bag):
    with pytest.raises(UsageError, match=r"no topic '/camera/colour'.*it has: /camera/caption, /imu/accel"):
        bag_inputs(bag, ["/camera/colour=frame@r"])
    with pytest.raises(UsageError, match="BAG_TOPIC=APP_TOPIC"):
        bag_inputs(bag, ["/camera/caption"])
    with pytest.raises(UsageError, match="no node handles topic 'frame'"):
        bag_inputs(bag, ["/camera/caption=frame"], nodes=["base"], handles=lambda n, t: False)
    with pytest.raises(UsageError, match="no such bag"):
        bag_inputs(bag.parent / "nope", ["/camera/caption=frame@r"])


ROVER = '''
"""Rovers that read camera captions from a bag: model → policy → maybe stop."""

from pathlib import Path

from edgetrace.agents import App, Context, GridProfile, Scenario

app = App("rover", state_host="base")


def spot(inputs):
    text = inputs if isinstance(inputs, str) else inputs["text"]
    return {"type": "weed" if ("dandelion" in text or "thistle" in text) else "none"}


def stop_policy(doc):
    weed = doc["event"]["type"] == "weed"
    return {"decision": "stop" if weed else "drive", "fired": ["weed_seen"] if weed else []}


app.model("spotter", func=spot)
app.policy("stop_policy", func=stop_policy)


@app.on("frame", nodes="rover-*")
async def on_frame(ctx: Context, msg: dict) -> None:
    event = await ctx.infer("spotter", msg["data"])
    await ctx.state.put(f"seen/{ctx.node}", event, timeout=1.0)
    decision = await ctx.decide("stop_policy", {"event": event})
    if decision.value == "stop":
        await ctx.act("stop")


SCENARIO = Scenario(
    name="rover", app=app, app_ref=app.reference(), nodes=lambda size: ["base", *(f"rover-{i}" for i in range(1, size + 1))],
    inputs=lambda seed, size: [], default_size=2, folder=Path(__file__).resolve().parent, default_profile="lan",
    profiles={"lan": GridProfile.from_mapping("lan", {"default": {"latency_min": "1ms", "latency_max": "3ms"}})},
)
'''


@pytest.mark.slow
def test_a_bag_is_recorded_live_and_replayed_in_lockstep_with_faults(tmp_path, bag):
    folder = tmp_path / "rover"
    folder.mkdir()
    (folder / "scenario.py").write_text(textwrap.dedent(ROVER))
    out = tmp_path / "ride.ets"
    done = subprocess.run([sys.executable, "-m", "edgetrace", "record", str(folder), "--out", str(out),
                           "--inputs-from", str(bag), "--topic", "/camera/caption=frame", "--json"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["inputs"] == 25

    from edgetrace._session import Session
    from edgetrace.agents import load_scenario
    from edgetrace.replay import replay_session

    session = Session(out)
    inputs = [s for s in session if s.kind.value == "input"]
    assert len(inputs) == 25 and {s.node for s in inputs} == {"rover-1"}  # the first node handling `frame`
    assert sorted(s.attrs["edgetrace.payload"]["data"] for s in inputs) == sorted(
        CAPTIONS[i % len(CAPTIONS)] for i in range(25))
    app = load_scenario(str(folder)).app
    faithful, _, calm = replay_session(out, app=app, default_checks=False)
    assert faithful.to_dict()["fidelity"] == 1.0
    # 50 Hz in the bag: every message processed, in virtual time
    assert {s.trace for s in calm.spans if s.kind.value == "decide"} == {s.trace for s in inputs}
    plan = ["latency(op=state.put, delay=900ms)", "drop(p=0.2)"]
    first, _, run = replay_session(out, app=app, faults=plan, seed=3, default_checks=False)
    second, _, _ = replay_session(out, app=app, faults=plan, seed=3, default_checks=False)
    assert first.to_json() == second.to_json()
    assert first.to_dict()["faults_applied"] > 0
    assert {s.trace for s in run.spans if s.kind.value == "infer"} == {s.trace for s in inputs}
