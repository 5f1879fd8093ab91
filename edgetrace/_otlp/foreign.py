"""Foreign spans: what an ordinary OTel service sent, before the hub numbers and files it.

Second step of the ingest (decoded → **foreign spans** → numbered → stored). A span becomes a
`ForeignSpan` on a node named after its service (`otel:checkout`); its own ids, kind, scope,
events (name, time, attributes: an exception's type, message and stack trace) and links
(ids and attributes) are kept as `edgetrace.otel.*` attributes so an export gives them back
unchanged, and it is marked untimed (no vector clock: ordered by timestamp only). Strings
are capped at `ATTR_LIMIT` UTF-8 bytes, as on export. Spans with unusable ids are rejected
one by one, with a reason, without failing the request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgetrace import _attrs as attr
from edgetrace._otlp.ids import OTEL_NODE_PREFIX
from edgetrace._otlp.mapping import clip
from edgetrace._records import Status, is_session_id

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["ForeignSpan", "foreign_spans"]

_SERVICE = re.compile(r"[^A-Za-z0-9._/-]+")
_MAX_DEPTH = 8
_KIND_NAMES = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


@dataclass
class ForeignSpan:
    """One span as received, before the hub numbers it and files it in a session."""

    node: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_id: str  # 16 hex digits or ""
    name: str
    start: int
    end: int
    attrs: dict[str, Any] = field(default_factory=dict)
    status: Status = Status.OK
    error: str = ""
    session: str = ""  # from the resource attribute edgetrace.session.id, if valid


_clip = clip
_MAX_EVENTS = 64
_MAX_LINKS = 64
_MAX_ATTRIBUTES = 256


def _value(v: AnyValue, depth: int = 0) -> Any:
    """An OTLP AnyValue as a plain, msgpack-able Python value."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return _clip(v.string_value)
    if which == "bytes_value":
        return _clip(v.bytes_value.hex())
    if which in ("bool_value", "int_value", "double_value"):
        return getattr(v, which)
    if depth >= _MAX_DEPTH:
        return "…"
    if which == "array_value":
        return [_value(x, depth + 1) for x in v.array_value.values[:256]]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value, depth + 1) for kv in v.kvlist_value.values[:256]}
    return None


def _attributes(kvs: Iterable[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for kv in kvs:
        if len(found) >= _MAX_ATTRIBUTES:
            break
        if kv.key:
            found[_clip_key(kv.key)] = _value(kv.value)
    return found


def _clip_key(key: str) -> str:
    return key if len(key) <= 256 else key[:255] + "…"


def foreign_spans(request: ExportTraceServiceRequest) -> tuple[list[ForeignSpan], list[str]]:
    """The spans of a request, and one reason per span rejected (bad ids)."""
    found: list[ForeignSpan] = []
    rejected: list[str] = []
    for rs in request.resource_spans:
        resource = _attributes(rs.resource.attributes)
        service = str(resource.get(attr.SERVICE_NAME) or "unknown_service")
        node = OTEL_NODE_PREFIX + (_SERVICE.sub("_", service)[:100] or "unknown_service")
        session = str(resource.get(attr.SESSION_ID) or "")
        if not is_session_id(session):
            session = ""
        base = {attr.SERVICE_NAME: _clip(service)}
        for key in (attr.SERVICE_INSTANCE_ID, attr.SERVICE_VERSION, attr.HOST_NAME, attr.SERVICE_NAMESPACE):
            if key in resource:
                base[key] = resource[key]
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for s in ss.spans:
                if len(s.trace_id) != 16 or not any(s.trace_id):
                    rejected.append(f"span {s.name[:40]!r}: trace id is not 16 non-zero bytes")
                    continue
                if len(s.span_id) != 8 or not any(s.span_id):
                    rejected.append(f"span {s.name[:40]!r}: span id is not 8 non-zero bytes")
                    continue
                parent = s.parent_span_id.hex() if len(s.parent_span_id) == 8 and any(s.parent_span_id) else ""
                attrs = {**base, **_attributes(s.attributes)}
                attrs[attr.OTEL_SPAN_ID] = s.span_id.hex()
                if parent:
                    attrs[attr.OTEL_PARENT_SPAN_ID] = parent
                attrs[attr.OTEL_KIND] = _KIND_NAMES.get(s.kind, "INTERNAL")
                if scope:
                    attrs[attr.OTEL_SCOPE_NAME] = _clip(scope)
                if s.events:
                    attrs[attr.OTEL_EVENTS] = [
                        {"name": _clip(e.name), "time": e.time_unix_nano, "attributes": _attributes(e.attributes)}
                        for e in s.events[:_MAX_EVENTS]]
                if s.links:
                    attrs[attr.OTEL_LINKS] = [
                        {"trace_id": x.trace_id.hex(), "span_id": x.span_id.hex(), "attributes": _attributes(x.attributes)}
                        for x in s.links[:_MAX_LINKS] if len(x.trace_id) == 16 and len(x.span_id) == 8]
                attrs[attr.UNTIMED] = True
                attrs[attr.ORDER] = "timestamp"
                failed = s.status.code == 2  # STATUS_CODE_ERROR
                start = s.start_time_unix_nano
                found.append(ForeignSpan(
                    node=node, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(), parent_id=parent,
                    name=_clip(s.name) or "(unnamed)", start=start, end=max(start, s.end_time_unix_nano),
                    attrs=attrs, status=Status.ERROR if failed else Status.OK,
                    error=_clip(s.status.message or "error") if failed else "", session=session,
                ))
    return found, rejected
