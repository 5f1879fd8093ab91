"""The one exception tree of edgetrace.

Every error a user can cause derives from :class:`EdgeTraceError`; the CLI turns each into a
one-line message and exit code 2, so no bad input ever ends in a traceback. Errors carry the
object they concern (a session path, a node, a span) so callers can act on them::

    EdgeTraceError
    ├── UsageError                  bad arguments, options, names
    │   ├── FaultSpecError          a fault spec string or plan file that does not parse
    │   ├── ConfigError             a scenario, profile or TOML file that does not fit
    │   └── InvariantError          an unknown or malformed invariant
    ├── SessionError                anything about a session file (carries .path)
    │   ├── SessionNotFoundError
    │   ├── CorruptSessionError     CRC mismatch, bad frame, bad record (.offset, .expected)
    │   ├── UnsupportedFormatError  a format version this build cannot read
    │   └── StorageError            a session cannot be written: disk full, I/O error
    ├── TransportError              the live link between agents and hub
    │   ├── FrameError              malformed or oversized frame
    │   ├── AuthError               missing or wrong token
    │   └── IngestError             an OTLP request the hub cannot take (edgetrace._otlp; .status)
    ├── ModelError                  an ONNX model that cannot be loaded or run (.model)
    ├── PolicyError                 a rule policy that cannot be loaded or evaluated (.policy)
    └── ReplayError                 a session that cannot be replayed (e.g. app not importable)
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AuthError",
    "ConfigError",
    "CorruptSessionError",
    "EdgeTraceError",
    "FaultSpecError",
    "FrameError",
    "InvariantError",
    "ModelError",
    "PolicyError",
    "ReplayError",
    "SessionError",
    "SessionNotFoundError",
    "StorageError",
    "TransportError",
    "UnsupportedFormatError",
    "UsageError",
]


class EdgeTraceError(Exception):
    """Root of every error edgetrace raises on purpose."""


class UsageError(EdgeTraceError):
    """The caller asked for something that does not exist or does not parse."""


class FaultSpecError(UsageError):
    """A fault spec or fault-plan file is malformed; the message names the bad token."""

    def __init__(self, message: str, *, spec: str = "", token: str = "") -> None:
        super().__init__(message)
        self.spec = spec
        self.token = token


class ConfigError(UsageError):
    """A scenario, grid profile or configuration file is malformed."""


class InvariantError(UsageError):
    """An invariant name or expression is unknown or malformed."""


class SessionError(EdgeTraceError):
    """Something is wrong with a session file."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None


class SessionNotFoundError(SessionError):
    """No session at the given path."""


class CorruptSessionError(SessionError):
    """The bytes of a session do not match what the format says must be there."""

    def __init__(
        self, message: str, *, path: Path | str | None = None, offset: int = -1, expected: str = ""
    ) -> None:
        super().__init__(message, path=path)
        self.offset = offset
        self.expected = expected


class UnsupportedFormatError(SessionError):
    """The session was written in a format version this build cannot read."""

    def __init__(self, message: str, *, path: Path | str | None = None, version: int = 0) -> None:
        super().__init__(message, path=path)
        self.version = version


class StorageError(SessionError):
    """A session cannot be written (a full disk, an I/O error); nothing unwritten was acknowledged."""


class TransportError(EdgeTraceError):
    """The live link between an agent and the hub failed."""


class FrameError(TransportError):
    """A wire frame is malformed or larger than the configured limit."""


class AuthError(TransportError):
    """A peer presented a missing or wrong token."""


class ModelError(EdgeTraceError):
    """A model cannot be loaded or run."""

    def __init__(self, message: str, *, model: str = "") -> None:
        super().__init__(message)
        self.model = model


class PolicyError(EdgeTraceError):
    """A rule policy cannot be loaded or evaluated."""

    def __init__(self, message: str, *, policy: str = "") -> None:
        super().__init__(message)
        self.policy = policy


class ReplayError(EdgeTraceError):
    """A session cannot be replayed (its app cannot be rebuilt, an artifact is missing)."""
