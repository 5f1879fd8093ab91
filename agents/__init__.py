"""What runs on an edge node: the app API, the runtime, the recorder and its sinks.

Users write handlers against `App` and `Context`; everything else here is the machinery
that records them live (spool → shipper → hub) and lets the replayer run them again.
"""

from edgetrace.agents._app import App, ModelSpec, PolicySpec
from edgetrace.agents._context import CallError, CallTimeout, Context, StateClient, StateUnavailable
from edgetrace.agents._message import Message, MessageKind
from edgetrace.agents._models import ModelResult, ModelRunner, OnnxRunner, deterministic_session
from edgetrace.agents._node import NodeRuntime
from edgetrace.agents._recorder import Recorder
from edgetrace.agents._rules import Decision, PythonPolicy, RegoPolicy, RuleEngine
from edgetrace.agents._sink import MemorySink, SpanSink

__all__ = [
    "App",
    "CallError",
    "CallTimeout",
    "Context",
    "Decision",
    "MemorySink",
    "Message",
    "MessageKind",
    "ModelResult",
    "ModelRunner",
    "ModelSpec",
    "NodeRuntime",
    "OnnxRunner",
    "PolicySpec",
    "PythonPolicy",
    "Recorder",
    "RegoPolicy",
    "RuleEngine",
    "SpanSink",
    "StateClient",
    "StateUnavailable",
    "deterministic_session",
]
