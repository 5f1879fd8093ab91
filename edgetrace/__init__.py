"""edgetrace: trace, replay and break reasoning pipelines on edge grids.

The public API. Heavy parts (the agent runtime with onnxruntime and regopy, the replayer)
are imported lazily on first attribute access, so `import edgetrace` stays light.
"""

import importlib as _importlib
import typing as _typing

from edgetrace._errors import (
    AuthError,
    ConfigError,
    CorruptSessionError,
    EdgeTraceError,
    FaultSpecError,
    FrameError,
    InvariantError,
    ModelError,
    PolicyError,
    ReplayError,
    SessionError,
    SessionNotFoundError,
    TransportError,
    UnsupportedFormatError,
    UsageError,
)
from edgetrace._index import CausalIndex
from edgetrace._records import FORMAT_VERSION, Manifest, Span, SpanKind, Status
from edgetrace._session import FsyncPolicy, Session
from edgetrace._vclock import Order, VectorClock
from edgetrace._version import __version__

if _typing.TYPE_CHECKING:
    from edgetrace._hub import Hub
    from edgetrace._hub_protocol import HubProtocol, HubStats
    from edgetrace._store import FileSessionStore, MemorySessionStore, SessionStore
    from edgetrace._transport import HubLink, MemoryTransport, TcpTransport, Transport
    from edgetrace._writer import SessionWriter
    from edgetrace.agents import App, Context

# the live path (asyncio, the hub) and the runtime load on first use: `edgetrace show` and the
# explorer need neither, and every command starts faster without them
_LAZY = {
    "App": "edgetrace.agents",
    "Context": "edgetrace.agents",
    "Hub": "edgetrace._hub",
    "HubProtocol": "edgetrace._hub_protocol",
    "HubStats": "edgetrace._hub_protocol",
    "FileSessionStore": "edgetrace._store",
    "MemorySessionStore": "edgetrace._store",
    "SessionStore": "edgetrace._store",
    "HubLink": "edgetrace._transport",
    "MemoryTransport": "edgetrace._transport",
    "TcpTransport": "edgetrace._transport",
    "Transport": "edgetrace._transport",
    "SessionWriter": "edgetrace._writer",
}

__all__ = [
    "FORMAT_VERSION",
    "App",
    "AuthError",
    "CausalIndex",
    "ConfigError",
    "Context",
    "CorruptSessionError",
    "EdgeTraceError",
    "FaultSpecError",
    "FileSessionStore",
    "FrameError",
    "FsyncPolicy",
    "Hub",
    "HubLink",
    "HubProtocol",
    "HubStats",
    "InvariantError",
    "Manifest",
    "MemorySessionStore",
    "MemoryTransport",
    "ModelError",
    "Order",
    "PolicyError",
    "ReplayError",
    "Session",
    "SessionError",
    "SessionNotFoundError",
    "SessionStore",
    "SessionWriter",
    "Span",
    "SpanKind",
    "Status",
    "TcpTransport",
    "Transport",
    "TransportError",
    "UnsupportedFormatError",
    "UsageError",
    "VectorClock",
    "__version__",
]


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgetrace' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
