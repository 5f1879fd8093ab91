"""Every span of a scanned session as a row of typed columns, in file order.

The explorer's scan (`TraceStore`) decodes each records frame slim and hands it to
`TraceTable.absorb`, which calls `extract` here: one pass of list comprehensions over the
frame's spans, then numpy for the rest. What a span costs in memory is about fifty bytes;
what it costs to filter is a few array operations per query, whatever the span count.

Strings are codes (`Strings`: node ids, names, errors; code 0 is ""), attribute maps are
codes into the `AttrsArena`, and span references (`cause`, `parent`) are kept as (node code,
seq) pairs: node code 0 means "none".
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from edgetrace._errors import CorruptSessionError
from edgetrace._records import SpanKind
from edgetrace.tui._columns import Columns
from edgetrace.tui._slim_span import SlimSpan
from edgetrace.tui._strings import AttrsArena, Strings

_recscan: ModuleType | None
try:  # the C walk of a frame into columns (setup.py builds it when a compiler is there)
    from edgetrace import _recscan
except ImportError:  # pragma: no cover - exercised where the extension is not built
    _recscan = None

__all__ = ["ERROR", "KINDS", "KIND_CODE", "NATIVE", "TIMEOUT", "FrameSpans", "SpanColumns", "Walked", "extract",
           "extract_body", "extract_walked", "walk_body"]

#: The C walk is there (`extract_body` can take a frame without a Python object per span).
NATIVE = _recscan is not None

#: Span kinds by code (a span's `kind` column indexes this tuple).
KINDS: tuple[SpanKind, ...] = tuple(SpanKind)
KIND_CODE: dict[str, int] = {k.value: i for i, k in enumerate(KINDS)}
#: Bits of the `flags` column.
ERROR, TIMEOUT = 1, 2

_I64 = (-(2**63), 2**63 - 1)
_STATUS = {"ok": 0, "error": ERROR}
_MAX_NODES = 2**16 - 1
_MAX_SEQ = 2**32 - 1


class SpanColumns(Columns):
    """One entry per span, in the order the spans are stored in the file."""

    SPEC: ClassVar[dict[str, str]] = {
        "trace": "u4",  # row of the span's trace in the trace table
        "node": "u2", "kind": "u1", "flags": "u1", "name": "u4", "seq": "u4",
        "start": "i8", "end": "i8",  # local ns on the node's own clock
        "attrs": "u4", "error": "u4",
        "cause_node": "u2", "cause_seq": "u4", "parent_node": "u2", "parent_seq": "u4",
        "cause_idx": "u4",  # index + 1 of the span `cause` names, once scanned; 0: none (yet)
        "next": "u4",  # index + 1 of the next span of the same trace; 0 ends the chain
    }
    trace: npt.NDArray[np.uint32]
    node: npt.NDArray[np.uint16]
    kind: npt.NDArray[np.uint8]
    flags: npt.NDArray[np.uint8]
    name: npt.NDArray[np.uint32]
    seq: npt.NDArray[np.uint32]
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    attrs: npt.NDArray[np.uint32]
    error: npt.NDArray[np.uint32]
    cause_node: npt.NDArray[np.uint16]
    cause_seq: npt.NDArray[np.uint32]
    parent_node: npt.NDArray[np.uint16]
    parent_seq: npt.NDArray[np.uint32]
    cause_idx: npt.NDArray[np.uint32]
    next: npt.NDArray[np.uint32]


@dataclass
class FrameSpans:
    """One frame's spans as arrays, strings already coded; `traces` in order of first use."""

    n: int
    node: npt.NDArray[np.uint16]
    kind: npt.NDArray[np.uint8]
    flags: npt.NDArray[np.uint8]
    name: npt.NDArray[np.uint32]
    seq: npt.NDArray[np.int64]
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    attrs: npt.NDArray[np.uint32]
    error: npt.NDArray[np.uint32]
    cause: tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint32]]
    parent: tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint32]]
    traces: list[str]  # distinct trace ids, in order of their first span in the frame
    trace_local: npt.NDArray[np.intp]  # per span: index into `traces`
    #: `traces` as UTF-8 bytes one after another, and each one's length (the C walk has them)
    trace_bytes: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]] | None = None


def _coded(values: list[str], table: Strings, dtype: Any) -> npt.NDArray[Any]:
    distinct = list(dict.fromkeys(values))
    code = dict(zip(distinct, table.codes_of(distinct), strict=True))
    return np.fromiter(map(code.__getitem__, values), dtype, len(values))


def _refs(values: list[str], nodes: Strings) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint32]]:
    """`node:seq` strings as (node code, seq); "" and malformed refs as (0, 0).

    Parsed as one byte string with numpy (a frame's causes are nearly all different, so a
    Python split per ref would be most of the frame's cost)."""
    n = len(values)
    out_node = np.zeros(n, np.uint16)
    out_seq = np.zeros(n, np.uint32)
    blob = "\x00".join(values).encode("utf-8", "surrogatepass")
    arr = np.frombuffer(blob, np.uint8)
    sep = np.flatnonzero(arr == 0)
    if len(sep) != n - 1:  # a NUL inside a ref: one at a time
        return _refs_slowly(values, nodes)
    starts = np.concatenate(([0], sep + 1)).astype(np.int64)
    ends = np.concatenate((sep, [len(arr)])).astype(np.int64)
    colons = np.flatnonzero(arr == 0x3A)
    at = np.searchsorted(colons, ends) - 1
    c = np.where(at >= 0, colons[np.maximum(at, 0)] if len(colons) else 0, -1)
    ok = (c > starts) & (ends - c - 1 >= 1) & (ends - c - 1 <= 10)
    if not ok.any():
        return out_node, out_seq
    idx = np.flatnonzero(ok)
    cc, ee, ss = c[idx], ends[idx], starts[idx]
    length = ee - cc - 1
    k = np.arange(10)
    pos = ee[:, None] - 1 - k[None, :]
    inside = k[None, :] < length[:, None]
    digits = arr[np.where(inside, pos, 0)].astype(np.int64) - 48
    good = ((digits >= 0) & (digits <= 9)) | ~inside
    value = (np.where(inside, digits, 0) * (10 ** k)[None, :]).sum(axis=1)
    valid = good.all(axis=1) & (value <= _MAX_SEQ)
    idx, cc, ss, value = idx[valid], cc[valid], ss[valid], value[valid]
    if not len(idx):
        return out_node, out_seq
    width = int((cc - ss).max())
    cols = np.arange(width)
    take = ss[:, None] + cols[None, :]
    filled = cols[None, :] < (cc - ss)[:, None]
    names = np.where(filled, arr[np.where(filled, take, 0)], 0).astype(np.uint8)
    keys = names.view(f"S{width}").ravel()
    distinct, inverse = np.unique(keys, return_inverse=True)
    codes = np.asarray(nodes.codes_of([bytes(d).decode("utf-8", "surrogatepass") for d in distinct]), np.uint16)
    out_node[idx] = codes[inverse]
    out_seq[idx] = value
    return out_node, out_seq


def _refs_slowly(values: list[str], nodes: Strings) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint32]]:
    distinct = list(dict.fromkeys(values))
    local = dict(zip(distinct, range(len(distinct)), strict=True))
    node_u = np.zeros(len(distinct), np.uint16)
    seq_u = np.zeros(len(distinct), np.uint32)
    for k, ref in enumerate(distinct):
        node, sep, seq = ref.rpartition(":")
        if sep and node and seq.isdigit() and len(seq) <= 10 and int(seq) <= _MAX_SEQ:
            node_u[k], seq_u[k] = nodes.code(node), int(seq)
    ix = np.fromiter(map(local.__getitem__, values), np.intp, len(values))
    return node_u[ix], seq_u[ix]


def _ints(values: list[int], what: str, where: str) -> npt.NDArray[np.int64]:
    try:
        return np.fromiter(values, np.int64, len(values))
    except (OverflowError, TypeError, ValueError):
        bad = next((v for v in values if not isinstance(v, int) or not _I64[0] <= v <= _I64[1]), None)
        raise CorruptSessionError(
            f"{where}: a span's {what} is {bad!r}, outside the signed 64-bit range the format allows",
            expected=f"{what} within the signed 64-bit range",
        ) from None


def extract(spans: list[SlimSpan], nodes: Strings, strings: Strings, arena: AttrsArena,
            where: str) -> FrameSpans:
    """Code the spans of one records frame; `where` names the frame in errors."""
    n = len(spans)
    node_s = [s.node for s in spans]
    kind_s = [s.kind for s in spans]
    unknown = set(kind_s) - KIND_CODE.keys()
    if unknown:
        raise CorruptSessionError(
            f"{where}: unknown span kind {sorted(unknown)[0]!r}; expected one of "
            f"{', '.join(KIND_CODE)}", expected="a span kind",
        )
    # checked before any is added: a refused frame leaves the node table as it was (later frames
    # of known nodes still read), and no code ever overflows its 16 bits
    new_nodes = sum(1 for name in dict.fromkeys(node_s) if nodes.find(name) is None)
    if len(nodes) + new_nodes > _MAX_NODES:
        raise CorruptSessionError(f"{where}: more than {_MAX_NODES:,} nodes, more than the explorer can show",
                                  expected="at most 65,535 nodes")
    node = _coded(node_s, nodes, np.uint16)
    kind = np.fromiter(map(KIND_CODE.__getitem__, kind_s), np.uint8, n)
    seq = _ints([s.seq for s in spans], "seq", where)
    if n and (int(seq.min()) < 0 or int(seq.max()) > _MAX_SEQ):
        raise CorruptSessionError(f"{where}: a span's seq is outside 0..{_MAX_SEQ:,}",
                                  expected="a per-node sequence number")
    start = _ints([s.start for s in spans], "start", where)
    end = _ints([s.end for s in spans], "end", where)
    try:
        flags = np.fromiter(map(_STATUS.__getitem__, [s.status for s in spans]), np.uint8, n)
    except KeyError as exc:
        raise CorruptSessionError(f"{where}: unknown span status {exc.args[0]!r}; expected ok or error",
                                  expected="a span status") from None
    error_s = [s.error for s in spans]
    error = np.zeros(n, np.uint32)
    if any(error_s):
        for i, text in enumerate(error_s):
            if text:
                error[i] = strings.code(text)
                if flags[i] and kind_s[i] == "recv" and text.startswith("timeout"):
                    flags[i] |= TIMEOUT
    raw = [bytes(s.attrs) for s in spans]
    distinct = list(dict.fromkeys(raw))
    bad = next((b for b in distinct if not (b and (0x80 <= b[0] <= 0x8F or b[0] in (0xDE, 0xDF)))), None)
    if bad is not None:
        raise CorruptSessionError(f"{where}: a span's attributes are not a map", expected="an attribute map")
    code = dict(zip(distinct, arena.codes_of(distinct), strict=True))
    attrs = np.fromiter(map(code.__getitem__, raw), np.uint32, n)
    trace_s = [s.trace for s in spans]
    traces = list(dict.fromkeys(trace_s))
    local = {t: i for i, t in enumerate(traces)}
    return FrameSpans(
        n=n, node=node, kind=kind, flags=flags, name=_coded([s.name for s in spans], strings, np.uint32),
        seq=seq, start=start, end=end, attrs=attrs, error=error,
        cause=_refs([s.cause for s in spans], nodes), parent=_refs([s.parent for s in spans], nodes),
        traces=traces, trace_local=np.fromiter(map(local.__getitem__, trace_s), np.intp, n),
    )


def _ref_columns(node: npt.NDArray[np.int32], seq: npt.NDArray[np.uint32], distinct: list[int], text: list[str],
                 nodes: Strings) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint32]]:
    """The C walk's parsed refs as `_refs` codes them: node parts interned in sorted order."""
    out_node = np.zeros(len(node), np.uint16)
    out_seq = np.zeros(len(node), np.uint32)
    if not distinct:
        return out_node, out_seq
    here = _pick(text, distinct)
    if not nodes.codes.keys() >= set(here):  # new nodes are interned in sorted order, as `_refs` does
        nodes.codes_of(sorted(set(here)))  # UTF-8 byte order is code point order
    lut = np.zeros(len(text) + 1, np.uint16)  # the last entry: -1, a ref that names nothing
    lut[distinct] = nodes.codes_of(here)
    out_node[:] = lut[node]
    valid = node >= 0
    out_seq[valid] = seq[valid]
    return out_node, out_seq


def _pick(text: list[str], at: list[int]) -> list[str]:
    """`[text[k] for k in at]` at C speed (a frame names thousands of distinct traces)."""
    if len(at) > 1:
        return list(operator.itemgetter(*at)(text))
    return [text[k] for k in at]


#: What the C walk hands back for a frame body (`_recscan.columns`), or None.
Walked = tuple[Any, ...] | None


def walk_body(body: bytes) -> Walked:
    """The C walk of a records frame body into columns (no tables involved: any thread may do
    it); None when the extension is not built or the body is not the plain case."""
    return _recscan.columns(body) if _recscan is not None else None


def extract_body(body: bytes, nodes: Strings, strings: Strings, arena: AttrsArena) -> FrameSpans | None:
    """What `extract(decode_slim_spans(body), ...)` gives, walked in C; None when the C walk is
    not built or the body is not the plain well-formed case, or a check `extract` makes would
    refuse it (the caller then takes the ordinary path, which says why)."""
    return extract_walked(walk_body(body), nodes, strings, arena)


def extract_walked(got: Walked, nodes: Strings, strings: Strings, arena: AttrsArena) -> FrameSpans | None:
    """`extract_body` of a body walked already (`walk_body`, e.g. on the thread that inflated it).

    Nothing is added to the tables before every check has passed, and then in the order
    `extract` adds them, so both paths leave the tables alike."""
    if got is None:
        return None
    n, text, ids_b, ints_b, ref_node_b, ref_seq_b, raws, attr_b, firsts_b, at, local_b, blob, lens = got
    ids = np.frombuffer(ids_b, np.int32).reshape(6, n)
    node_i, kind_i, name_i, _trace, status_i, error_i = ids
    firsts = np.frombuffer(firsts_b, np.int32)
    node_d, kind_d, name_d, trace_d, status_d, error_d, cause_d, parent_d = (
        firsts[at[c]:at[c + 1]].tolist() for c in range(8))
    kinds = _pick(text, kind_d)
    statuses = _pick(text, status_d)
    node_names = _pick(text, node_d)
    if (not KIND_CODE.keys() >= set(kinds) or not _STATUS.keys() >= set(statuses)
            or len(nodes) + len(set(node_names) - nodes.codes.keys()) > _MAX_NODES):
        return None
    lut = np.zeros(len(text), np.int64)

    def coded(distinct: list[int], codes: list[int], column: npt.NDArray[np.int32], dtype: Any) -> npt.NDArray[Any]:
        lut[distinct] = codes
        return lut[column].astype(dtype)

    node = coded(node_d, nodes.codes_of(node_names), node_i, np.uint16)
    kind = coded(kind_d, [KIND_CODE[k] for k in kinds], kind_i, np.uint8)
    ints = np.frombuffer(ints_b, np.int64).reshape(3, n)
    flags = coded(status_d, [_STATUS[s] for s in statuses], status_i, np.uint8)
    error = np.zeros(n, np.uint32)
    texts = _pick(text, error_d)
    if any(texts):
        keep = [(k, t) for k, t in zip(error_d, texts, strict=True) if t]
        lut[error_d] = 0
        lut[[k for k, _ in keep]] = strings.codes_of([t for _, t in keep])
        error = lut[error_i].astype(np.uint32)
        timeout = np.zeros(len(text), bool)
        timeout[[k for k, t in keep if t.startswith("timeout")]] = True
        flags[(flags > 0) & (kind == KIND_CODE["recv"]) & timeout[error_i]] |= TIMEOUT
    attr_codes = np.asarray(arena.codes_of(raws), np.int64)
    attrs = attr_codes[np.frombuffer(attr_b, np.int32)].astype(np.uint32)
    name = coded(name_d, strings.codes_of(_pick(text, name_d)), name_i, np.uint32)
    ref_node = np.frombuffer(ref_node_b, np.int32).reshape(2, n)
    ref_seq = np.frombuffer(ref_seq_b, np.uint32).reshape(2, n)
    return FrameSpans(
        n=n, node=node, kind=kind, flags=flags, name=name, seq=ints[0].copy(), start=ints[1].copy(),
        end=ints[2].copy(), attrs=attrs, error=error,
        cause=_ref_columns(ref_node[0], ref_seq[0], cause_d, text, nodes),
        parent=_ref_columns(ref_node[1], ref_seq[1], parent_d, text, nodes),
        traces=_pick(text, trace_d), trace_local=np.frombuffer(local_b, np.int32).astype(np.intp),
        trace_bytes=(np.frombuffer(blob, np.uint8), np.frombuffer(lens, np.int32).astype(np.int64)),
    )
