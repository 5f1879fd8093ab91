"""Payload previews: the small JSON-able stand-ins for payloads that spans carry as attributes.

A span holds a preview (≤ 512 characters) so that reports, the explorer and invariants can
read what a step saw without loading blobs; the full payload is a blob, by sha256.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_bytes", "preview", "previews"]

_PREVIEW_LIMIT = 512
_SCALARS = frozenset({str, int, float, bool, type(None)})


def preview(value: Any, limit: int = _PREVIEW_LIMIT) -> Any:
    """A small JSON-able stand-in for a payload, for attributes (the blob holds the rest)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 1] + "…"
    if type(value) is dict and len(value) <= 64 and all(
        type(k) is str and type(v) in _SCALARS for k, v in value.items()
    ) and len(repr(value)) <= limit:
        return dict(sorted(value.items()))  # what the JSON round trip gives, at a fraction of its cost
    try:
        text = json.dumps(value, sort_keys=True, default=_describe)
    except (TypeError, ValueError):
        return _describe(value)
    if len(text) <= limit:
        return json.loads(text)
    return text[: limit - 1] + "…"


_AS_IS = frozenset({int, float, bool, type(None)})


def previews(found: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Add the preview of each of `values` to `found` (a step's attributes); returns `found`."""
    for key, value in values.items():  # numbers and short strings are their own preview: no call
        kind = type(value)
        found[key] = value if kind in _AS_IS or (kind is str and len(value) <= _PREVIEW_LIMIT) else preview(value)
    return found


def _describe(value: Any) -> Any:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        size = getattr(value, "size", 0)
        if size <= 16 and hasattr(value, "tolist"):
            return value.tolist()  # small tensors (scores, logits of a classifier) show their values
        return f"tensor {dtype}{list(shape)}"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return f"<{type(value).__name__}>"


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_describe).encode()
