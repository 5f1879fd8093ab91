"""ROS 2 bags as recorded inputs: topics of a rosbag2 bag become an app's external inputs.

The input side of recording (**bag** → inputs → recorded → … → replayed). A bag (a rosbag2
folder with an MCAP or SQLite store, or a bare `.mcap`/`.db3` file of one) is read with
`rosbags` — pure Python, no ROS install — and each message on a mapped topic becomes a
`ScheduledInput`: at its time in the bag (seconds after the bag's first mapped message), to
the node the mapping names, as the app topic it names, with the message as a plain dict of
its fields as payload (`std_msgs/msg/String` → `{"data": "…"}`, nested messages as dicts,
`uint8[]` as bytes, other arrays as lists, `builtin_interfaces/Time` as `{"sec", "nanosec"}`).
Each input is its own trace, named `{node}/{topic}-{n}`.

A mapping is `BAG_TOPIC=APP_TOPIC[@NODE]`, e.g. `/camera/caption=frame@tractor-01`; without
`@NODE` the input goes to the first of the scenario's nodes that handles `APP_TOPIC`.

Recorded, the inputs arrive at their bag times; replayed, they are fed from the session in
virtual time, so every message is processed whatever its rate, deterministically, with any
fault plan. `bag_source(path, mappings)` is the same as a scenario's `inputs=`.

Needs `rosbags` (the `edgetrace[ros]` extra).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetrace._errors import ConfigError, UsageError
from edgetrace.agents._scenario import ScheduledInput

if TYPE_CHECKING:
    from edgetrace.agents._scenario import Scenario

__all__ = ["TopicMap", "bag_inputs", "bag_source", "message_to_payload", "parse_topic_map", "with_bag_inputs"]

#: Messages read from one bag at most (a bag of a long drive is sliced before recording).
MAX_MESSAGES = 1_000_000


@dataclass(frozen=True)
class TopicMap:
    """One bag topic fed to the app as `topic`, at `node` ("" = the first node handling it)."""

    bag_topic: str
    topic: str
    node: str = ""


def parse_topic_map(text: str) -> TopicMap:
    """`/camera/caption=frame` or `/camera/caption=frame@tractor-01`."""
    bag_topic, sep, rest = text.partition("=")
    topic, _, node = rest.partition("@")
    if not sep or not bag_topic.strip() or not topic.strip():
        raise UsageError(f"bad --topic {text!r}: expected BAG_TOPIC=APP_TOPIC[@NODE], e.g. /camera/caption=frame")
    return TopicMap(bag_topic.strip(), topic.strip(), node.strip())


def message_to_payload(msg: Any) -> Any:
    """A deserialised ROS message as plain, MessagePack-able data (see the module docstring)."""
    if dataclasses.is_dataclass(msg) and not isinstance(msg, type):
        return {f.name: message_to_payload(getattr(msg, f.name)) for f in dataclasses.fields(msg)
                if not f.name.startswith("_")}
    tolist = getattr(msg, "tolist", None)
    if tolist is not None and hasattr(msg, "dtype"):
        return msg.tobytes() if str(msg.dtype) == "uint8" else tolist()
    if isinstance(msg, list | tuple):
        return [message_to_payload(v) for v in msg]
    if isinstance(msg, bytes | str | bool | int | float) or msg is None:
        return msg
    if hasattr(msg, "item"):  # numpy scalars
        return msg.item()
    return str(msg)


def _reader(path: Path) -> Any:
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ImportError:
        raise UsageError("ROS 2 bags need rosbags: pip install 'edgetrace[ros]'") from None
    if not path.exists():
        raise UsageError(f"{path}: no such bag")
    return AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))


def bag_inputs(path: str | os.PathLike[str], mappings: Sequence[TopicMap | str], *,
               nodes: Sequence[str] = (), handles: Callable[[str, str], bool] | None = None) -> list[ScheduledInput]:
    """The inputs a bag gives: one per message on a mapped topic, in bag order.

    `nodes` and `handles(node, topic)` pick the node of a mapping without `@NODE`.
    """
    maps = [parse_topic_map(m) if isinstance(m, str) else m for m in mappings]
    if not maps:
        raise UsageError("no --topic given: which bag topics are inputs? e.g. --topic /camera/caption=frame")
    targets: dict[str, TopicMap] = {}
    for m in maps:
        node = m.node or next((n for n in nodes if handles is None or handles(n, m.topic)), "")
        if not node:
            raise UsageError(f"no node handles topic {m.topic!r}: name one, e.g. --topic {m.bag_topic}={m.topic}@NODE")
        if nodes and node not in nodes:
            raise UsageError(f"--topic {m.bag_topic}: no node {node!r} in this scenario; expected one of: "
                             f"{', '.join(nodes)}")
        targets[m.bag_topic] = TopicMap(m.bag_topic, m.topic, node)
    bag = Path(path)
    found: list[ScheduledInput] = []
    counts: dict[tuple[str, str], int] = {}
    try:
        with _reader(bag) as reader:
            present = {c.topic for c in reader.connections}
            missing = sorted(set(targets) - present)
            if missing:
                raise UsageError(f"{bag}: no topic {missing[0]!r} in this bag; it has: {', '.join(sorted(present))}")
            connections = [c for c in reader.connections if c.topic in targets]
            first: int | None = None
            for connection, timestamp, raw in reader.messages(connections=connections):
                if len(found) >= MAX_MESSAGES:
                    raise UsageError(f"{bag}: more than {MAX_MESSAGES} input messages; slice the bag first")
                first = timestamp if first is None else first
                target = targets[connection.topic]
                key = (target.node, target.topic)
                counts[key] = counts.get(key, 0) + 1
                payload = message_to_payload(reader.deserialize(raw, connection.msgtype))
                found.append(ScheduledInput(round((timestamp - first) / 1e9, 9), target.node, target.topic,
                                            f"{target.node}/{target.topic}-{counts[key]:05d}", payload))
    except UsageError:
        raise
    except Exception as exc:  # rosbags' own errors: a damaged or foreign file is bad input, one line
        raise ConfigError(f"{bag}: cannot read this bag: {type(exc).__name__}: {exc}") from None
    if not found:
        raise ConfigError(f"{bag}: no messages on {', '.join(sorted(targets))}")
    return found


def bag_source(path: str | os.PathLike[str], mappings: Sequence[TopicMap | str], *,
               nodes: Sequence[str] = ()) -> Callable[[int, int], list[ScheduledInput]]:
    """A scenario input source (`Scenario(inputs=...)`): the bag's inputs, whatever the seed and size."""
    def inputs(seed: int, size: int) -> list[ScheduledInput]:
        return bag_inputs(path, mappings, nodes=nodes)

    return inputs


def with_bag_inputs(scenario: Scenario, path: str | os.PathLike[str], mappings: Sequence[str],
                    size: int | None = None) -> Scenario:
    """`scenario` with its inputs taken from a bag (what `edgetrace record --inputs-from` runs)."""
    nodes = scenario.nodes(size or scenario.default_size)
    found = bag_inputs(path, mappings, nodes=nodes,
                       handles=lambda node, topic: scenario.app.handler_for(node, topic) is not None)
    return dataclasses.replace(scenario, inputs=lambda seed, size: list(found))
