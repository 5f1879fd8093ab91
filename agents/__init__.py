"""What runs on an edge node: the app API, the runtime and the world it runs in, the recorder.

Users write handlers against `App` and `Context`; a `NodeRuntime` runs them in a `NodeWorld`
— `LiveWorld` on an agent (real time, TCP, spool → shipper → hub), the replayer's `SimWorld`
under replay, `MemoryWorld` in a unit test. Scenarios bundle an app with its grid profiles
and inputs so `edgetrace record` can run it.
"""

from edgetrace.agents._app import App, ModelSpec, PolicySpec
from edgetrace.agents._bag import TopicMap, bag_inputs, bag_source
from edgetrace.agents._context import CallError, CallTimeout, Context, StateClient, StateUnavailable
from edgetrace.agents._grid import GridProfile, LinkProfile
from edgetrace.agents._live import LiveWorld
from edgetrace.agents._message import Message, MessageKind
from edgetrace.agents._models import (
    FunctionRunner,
    ModelResult,
    ModelRunner,
    OnnxRunner,
    deterministic_session,
)
from edgetrace.agents._node import NodeRuntime
from edgetrace.agents._recorder import Recorder
from edgetrace.agents._rules import Decision, PythonPolicy, RegoPolicy, RuleEngine
from edgetrace.agents._scenario import Scenario, ScheduledInput, load_app, load_scenario
from edgetrace.agents._sink import MemorySink, SpanSink
from edgetrace.agents._world import MemoryWorld, NodeWorld

__all__ = [
    "App",
    "CallError",
    "CallTimeout",
    "Context",
    "Decision",
    "FunctionRunner",
    "GridProfile",
    "LinkProfile",
    "LiveWorld",
    "MemorySink",
    "MemoryWorld",
    "Message",
    "MessageKind",
    "ModelResult",
    "ModelRunner",
    "ModelSpec",
    "NodeRuntime",
    "NodeWorld",
    "OnnxRunner",
    "PolicySpec",
    "PythonPolicy",
    "Recorder",
    "RegoPolicy",
    "RuleEngine",
    "Scenario",
    "ScheduledInput",
    "SpanSink",
    "StateClient",
    "StateUnavailable",
    "TopicMap",
    "bag_inputs",
    "bag_source",
    "deterministic_session",
    "load_app",
    "load_scenario",
]
