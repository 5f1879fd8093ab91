"""Every partial decoder of span records is pinned to `Span`, field for field.

Records are MessagePack arrays read by position, so a struct that decodes them with its own
field list must keep `Span`'s names in `Span`'s order, with defaults that mean the same (a
record written before a field existed decodes to the same value either way). The hub's
The explorer's `SlimSpan` may stop early (trailing fields it never reads are skipped). (The
hub validates with the readers' full decoder, `decode_spans`, so it needs no mirror.)
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from edgetrace import Manifest, SessionWriter, Span, SpanKind, Status
from edgetrace._codec import encode, encode_spans
from edgetrace.tui._slim_span import SlimSpan, decode_attrs, decode_slim_spans

MIRRORS = [pytest.param(SlimSpan, False, id="SlimSpan")]


def _default(f: msgspec.structs.FieldInfo) -> Any:
    return f.default_factory() if f.default is msgspec.NODEFAULT else f.default


@pytest.mark.parametrize(("mirror", "whole"), MIRRORS)
def test_decoder_mirrors_span_names_order_and_defaults(mirror: type[msgspec.Struct], whole: bool):
    ours, theirs = msgspec.structs.fields(mirror), msgspec.structs.fields(Span)
    assert mirror.__struct_config__.array_like and Span.__struct_config__.array_like
    assert [f.name for f in ours] == [f.name for f in theirs[: len(ours)]], "same fields, same order"
    if whole:
        assert len(ours) == len(theirs), f"{mirror.__name__} must cover every field of Span"
    for f, g in zip(ours, theirs, strict=False):
        assert f.required == g.required, f.name
        if not f.required:  # same default once encoded: a Raw default is the bytes it stands for
            assert encode(_default(f)) == encode(_default(g)), f.name


def test_slim_spans_read_what_full_spans_read(tmp_path):
    spans = [
        Span(node="t-1", seq=1, kind=SpanKind.DECIDE, name="spray?", trace="tr", parent="t-1:0", cause="hub:4",
             start=5, end=9, vc={"hub": 4}, attrs={"edgetrace.decision": "spray"}, status=Status.ERROR,
             error="timeout", blobs={"in": "ab" * 32}),
        Span(node="t-1", seq=2, kind=SpanKind.ACT, name="spray", trace="tr"),
    ]
    slim = decode_slim_spans(encode_spans(spans))
    for s, full in zip(slim, spans, strict=True):
        for f in msgspec.structs.fields(SlimSpan):
            value = getattr(s, f.name)
            expected = getattr(full, f.name)
            assert (bytes(value) == encode(expected)) if isinstance(value, msgspec.Raw) else value == expected
    assert decode_attrs(slim[0]) == {"edgetrace.decision": "spray"} and decode_attrs(slim[1]) == {}
    with SessionWriter(tmp_path / "s.ets", Manifest(app="x")) as w:  # and as the explorer reads a file
        w.append(spans)
    from edgetrace.tui._store import TraceStore

    store = TraceStore(tmp_path / "s.ets")
    store.scan()
    (row,) = store.rows
    assert (row.decision, row.acts, row.errors, row.spans) == ("spray", "spray", 1, 2)
