"""OTel ids for edgetrace spans: derived, never random, and distinct per session.

Exporting the same session twice gives the same trace and span ids, a parent always points
at the span that was exported for it, and two different sessions never share ids — not even
a recording and its replay, which share trace ids and step numbers (`node:seq`):

- the *id namespace* of a session is its identity (`session_namespace`): the recording's
  session id; for a saved replay also what made it a different run (fault plan, seed,
  substituted models and policies); `--id-namespace` overrides it;
- trace id: 128 bits of sha256(namespace, trace) — except that a recording keeps a trace id
  that already is a W3C trace id (32 hex digits), since other services share it;
- span id: the original OTel span id for spans the hub took in over OTLP, else 64 bits of
  sha256(namespace, node:seq).

The ingest derives the same ids to find the edgetrace trace (and span) a foreign span belongs
under: for a live session the namespace is its session id, which is the hub's session name.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgetrace._records import Manifest

__all__ = ["OTEL_NODE_PREFIX", "IdScheme", "is_otel_hex", "otel_span_id", "otel_trace_id",
           "session_namespace", "stable_instance_id"]

#: Node names of spans taken in over OTLP start with this, then the service name (`otel:checkout`).
OTEL_NODE_PREFIX = "otel:"

_HEX = frozenset("0123456789abcdef")


def is_otel_hex(text: str, size: int) -> bool:
    """Whether `text` is a valid OTel id in lower-case hex: `size` digits, not all zero."""
    return len(text) == size and set(text) <= _HEX and set(text) != {"0"}


def otel_trace_id(trace: str, *, namespace: str = "", keep_hex: bool | None = None) -> int:
    """The 128-bit OTel trace id of an edgetrace trace id (stable across runs and hosts).

    A trace id that already is 32 hex digits is kept when `keep_hex` (default: when there is
    no namespace).
    """
    if (not namespace if keep_hex is None else keep_hex) and is_otel_hex(trace, 32):
        return int(trace, 16)
    digest = hashlib.sha256(f"edgetrace-trace\0{namespace}\0{trace}".encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1


def otel_span_id(ref: str, *, namespace: str = "") -> int:
    """The 64-bit OTel span id of a span reference `node:seq`."""
    digest = hashlib.sha256(f"edgetrace-span\0{namespace}\0{ref}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def _is_replay(manifest: Manifest) -> bool:
    return isinstance(manifest.meta, dict) and "replay_of" in manifest.meta


def session_namespace(manifest: Manifest, fallback: str = "") -> str:
    """The id namespace of a session: its identity, the same on every export of it.

    A recording is its session id (`fallback`, e.g. the file name, when it has none). A saved
    replay is named after its recording (`X-replay`), so what made it a different run — its
    fault plan, seed and artifacts — is mixed in: two replays under different plans differ.
    """
    base = manifest.session_id or fallback
    if not _is_replay(manifest):
        return base
    meta = manifest.meta
    run = {"faults": meta.get("faults"), "seed": meta.get("seed", manifest.seed),
           "models": manifest.models, "policies": manifest.policies}
    text = json.dumps(run, sort_keys=True, separators=(",", ":"), default=repr)
    return f"{base}#{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def stable_instance_id(namespace: str, node: str) -> str:
    """A `service.instance.id` for a node that sent none: a UUID derived from session and node."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"edgetrace:{namespace}:{node}"))


@dataclass(frozen=True)
class IdScheme:
    """How one export (or one live session's forwarding) derives its ids."""

    namespace: str = ""
    keep_hex_traces: bool = True

    @classmethod
    def for_session(cls, manifest: Manifest, fallback: str = "", override: str | None = None) -> IdScheme:
        """The scheme of a stored session; `override` is `--id-namespace` (hashes every id)."""
        if override:
            return cls(override, keep_hex_traces=False)
        return cls(session_namespace(manifest, fallback), keep_hex_traces=not _is_replay(manifest))

    def trace_id(self, trace: str) -> int:
        return otel_trace_id(trace, namespace=self.namespace, keep_hex=self.keep_hex_traces)

    def span_id(self, ref: str) -> int:
        return otel_span_id(ref, namespace=self.namespace)
