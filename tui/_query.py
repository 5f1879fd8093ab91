"""The explorer's filter language: parse a query once, test it against the spans of a trace.

Pure Python (no Textual) so it is easy to test and fuzz. Grammar, loosest binding first::

    query      := or_expr ('without' or_expr)*      A without B  ≡  A and not B
    or_expr    := and_expr ('or' and_expr)*
    and_expr   := unary (['and'] unary)*             juxtaposition means 'and'
    unary      := 'not' unary | primary
    primary    := '(' query ')' | causal | comparison | text
    causal     := ('before' | 'after' | 'concurrent') '(' (REF | query) ')'
    comparison := FIELD OP VALUE     OP: = != ~ !~ > >= < <=
    text       := WORD | "quoted text"

A query selects spans; a trace matches when one of its spans does. Causal operators are
relative to the span being tested and look within its trace: `after(kind=infer)` holds for a
span that some infer span of the same trace happened before. So
`kind=act without after(kind=infer)` finds actions no model output led to, and
`kind=send without before(kind=recv)` finds sends that no receive followed.
Every malformed query raises one `QueryError` whose message says what was expected where.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edgetrace import _units as units
from edgetrace._errors import UsageError
from edgetrace._records import Span

__all__ = ["FIELDS", "QUERY_HELP", "Query", "QueryError", "TraceContext", "parse_query"]

#: Span fields a comparison may name; `attr.KEY` (or any dotted name) reads an attribute.
FIELDS: dict[str, str] = {
    "kind": "span kind (input infer decide send recv state.get state.put act log fault otel)",
    "node": "node id",
    "name": "step name (model, policy, topic, action)",
    "trace": "trace id",
    "ref": "span reference NODE:SEQ",
    "seq": "per-node sequence number",
    "status": "ok or error",
    "error": "error message",
    "duration": "span duration (units ns us ms s m h)",
    "parent": "parent span ref",
    "cause": "ref of the send that caused a recv",
    "spans": "number of spans in the span's trace",
    "nodes": "number of nodes the span's trace touched",
}

QUERY_HELP = """\
Filter queries select spans; a trace is listed when one of its spans matches.
  kind=infer                 field comparison; fields: kind node name trace ref seq status
                             error duration parent cause spans nodes, attr.KEY
  node~tractor-0*            ~ glob (or substring), !~ its negation; = != > >= < <=
  duration>500ms             durations take ns us ms s m h (a bare number is ns)
  attr.edgetrace.decision=spray   any attribute by key (dotted names need no attr.)
  weed  "no weed"            bare or quoted text: search names, nodes, errors, attributes
  a and b, a b, a or b, not a, (a or b)
  before(t-0:5)              spans that happened before span t-0:5 (same trace)
  after(kind=infer)          spans some infer span of their trace happened before
  concurrent(X)              spans neither before nor after X (a ref or a query)
  A without B                A and not B: kind=act without after(kind=infer)
                             = actions with no model inference in their causal past"""

_OPS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
_KEYWORDS = {"and", "or", "not", "without"}
_CAUSAL = {"before", "after", "concurrent"}
_WORD = re.compile(r"[^\s()=!~<>\"']+")
_REF = re.compile(r"^[^\s:()]+:\d+$")


class QueryError(UsageError):
    """A query that does not parse; `position` is the character offset of the problem."""

    def __init__(self, message: str, *, query: str = "", position: int = 0) -> None:
        super().__init__(message)
        self.query = query
        self.position = position


class TraceContext(Protocol):
    """What evaluating a query needs to know about the trace a span belongs to."""

    spans: Sequence[Span]
    cache: dict[Any, Any]  # per-trace memo of sub-query matches, keyed by operator object

    def happens_before(self, a: Span, b: Span) -> bool: ...

    def get(self, ref: str) -> Span | None: ...


@dataclass(frozen=True)
class _Tok:
    kind: str  # word, str, op, lp, rp, end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "(":
            toks.append(_Tok("lp", c, i))
            i += 1
        elif c == ")":
            toks.append(_Tok("rp", c, i))
            i += 1
        elif c in "\"'":
            j = text.find(c, i + 1)
            if j < 0:
                raise QueryError(f"unclosed quote {c} at column {i + 1}", query=text, position=i)
            toks.append(_Tok("str", text[i + 1 : j], i))
            i = j + 1
        elif c in "=!~<>":
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            if op is None:
                raise QueryError(
                    f"unknown operator {c!r} at column {i + 1}; expected one of {' '.join(_OPS)}",
                    query=text, position=i,
                )
            toks.append(_Tok("op", op, i))
            i += len(op)
        else:
            m = _WORD.match(text, i)
            assert m is not None  # every other character starts a word
            toks.append(_Tok("word", m.group(), i))
            i = m.end()
    toks.append(_Tok("end", "", n))
    return toks


def parse_duration(text: str) -> int:
    """`500ms` → 500_000_000 ns; a bare number is nanoseconds."""
    return units.parse_duration(text, bare="ns", bare_text=True)


# --- the compiled form: each node is a predicate over (span, context) ---------------------

Pred = Callable[[Span, TraceContext], bool]


def _field_value(span: Span, name: str, ctx: TraceContext) -> Any:
    if name == "kind":
        return span.kind.value
    if name == "status":
        return span.status.value
    if name == "ref":
        return span.ref
    if name == "duration":
        return span.duration
    if name == "spans":
        return len(ctx.spans)
    if name == "nodes":
        return len({s.node for s in ctx.spans})
    if name in FIELDS:
        return getattr(span, name)
    key = name[5:] if name.startswith("attr.") else name
    return span.attrs.get(key)


def _compare(field_name: str, op: str, raw: str, query: str, pos: int) -> Pred:
    numeric = field_name in ("duration", "seq", "spans", "nodes")
    number: float | None = None
    if numeric:
        try:
            number = parse_duration(raw) if field_name == "duration" else float(raw)
        except ValueError:
            what = "a duration such as 500ms" if field_name == "duration" else "a number"
            raise QueryError(
                f"{field_name} needs {what}, found {raw!r} at column {pos + 1}", query=query, position=pos
            ) from None
    elif op in (">", ">=", "<", "<="):
        try:
            number = float(raw)
        except ValueError:
            number = None
    low = raw.lower()
    glob = any(ch in raw for ch in "*?[")

    def text_match(value: Any) -> bool:
        s = str(value).lower() if value is not None else ""
        return fnmatch.fnmatchcase(s, low) if glob else low in s

    def pred(span: Span, ctx: TraceContext) -> bool:
        value = _field_value(span, field_name, ctx)
        if op in ("~", "!~"):
            return text_match(value) == (op == "~")
        if op in ("=", "!="):
            if number is not None and isinstance(value, int | float) and not isinstance(value, bool):
                equal = value == number
            elif value is None:
                equal = low in ("", "none", "null")
            else:
                equal = str(value).lower() == low or (isinstance(value, bool) and str(value).lower() == low)
            return equal == (op == "=")
        if number is None:  # ordering on text compares strings
            if value is None:
                return False
            left, right = str(value), raw
        else:
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            left, right = value, number  # type: ignore[assignment]
        if op == ">":
            return left > right  # type: ignore[operator]
        if op == ">=":
            return left >= right  # type: ignore[operator]
        if op == "<":
            return left < right  # type: ignore[operator]
        return left <= right  # type: ignore[operator]

    return pred


def _text(word: str) -> Pred:
    low = word.lower()

    def pred(span: Span, ctx: TraceContext) -> bool:
        if any(low in str(v).lower() for v in (span.name, span.node, span.trace, span.kind.value,
                                                 span.error, span.ref)):
            return True
        return any(low in str(k).lower() or low in str(v).lower() for k, v in span.attrs.items())

    return pred


@dataclass
class _Causal:
    op: str
    ref: str | None
    sub: Pred | None

    def targets(self, ctx: TraceContext) -> list[Span]:
        if self.ref is not None:
            found = ctx.get(self.ref)
            return [found] if found is not None else []
        # the entry holds the operator itself and is checked by identity: a later query's
        # operator that reuses this one's id() can never read this query's answer
        key = ("targets", id(self))
        hit = ctx.cache.get(key)
        if hit is None or hit[0] is not self:
            assert self.sub is not None
            hit = ctx.cache[key] = (self, [s for s in ctx.spans if self.sub(s, ctx)])
        return hit[1]

    def __call__(self, span: Span, ctx: TraceContext) -> bool:
        hb = ctx.happens_before
        for t in self.targets(ctx):
            if t is span or t.ref == span.ref:
                continue
            if self.op == "before" and hb(span, t):
                return True
            if self.op == "after" and hb(t, span):
                return True
            if self.op == "concurrent" and not hb(span, t) and not hb(t, span):
                return True
        return False


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def fail(self, tok: _Tok, expected: str) -> QueryError:
        found = "the end of the query" if tok.kind == "end" else repr(tok.text)
        return QueryError(
            f"expected {expected} at column {tok.pos + 1}, found {found}", query=self.text, position=tok.pos
        )

    def is_kw(self, tok: _Tok, word: str) -> bool:
        return tok.kind == "word" and tok.text.lower() == word

    def query(self) -> Pred:
        left = self.or_expr()
        while self.is_kw(self.peek(), "without"):
            self.take()
            right = self.or_expr()
            left = (lambda a, b: lambda s, c: a(s, c) and not b(s, c))(left, right)
        return left

    def or_expr(self) -> Pred:
        left = self.and_expr()
        while self.is_kw(self.peek(), "or"):
            self.take()
            right = self.and_expr()
            left = (lambda a, b: lambda s, c: a(s, c) or b(s, c))(left, right)
        return left

    def starts_unary(self, tok: _Tok) -> bool:
        if tok.kind in ("lp", "str"):
            return True
        return tok.kind == "word" and tok.text.lower() not in ("and", "or", "without")

    def and_expr(self) -> Pred:
        left = self.unary()
        while True:
            tok = self.peek()
            if self.is_kw(tok, "and"):
                self.take()
            elif not self.starts_unary(tok):
                return left
            right = self.unary()
            left = (lambda a, b: lambda s, c: a(s, c) and b(s, c))(left, right)

    def unary(self) -> Pred:
        if self.is_kw(self.peek(), "not"):
            self.take()
            inner = self.unary()
            return lambda s, c: not inner(s, c)
        return self.primary()

    def primary(self) -> Pred:
        tok = self.take()
        if tok.kind == "lp":
            inner = self.query()
            close = self.take()
            if close.kind != "rp":
                raise self.fail(close, "')' to close the '(' at column " + str(tok.pos + 1))
            return inner
        if tok.kind == "str":
            return _text(tok.text)
        if tok.kind != "word" or tok.text.lower() in _KEYWORDS:
            raise self.fail(tok, "a comparison (kind=infer), a causal operator (after(...)) or text")
        word = tok.text
        nxt = self.peek()
        if word.lower() in _CAUSAL and nxt.kind == "lp":
            return self.causal(word.lower())
        if nxt.kind == "op":
            op = self.take()
            value = self.take()
            if value.kind not in ("word", "str"):
                raise self.fail(value, f"a value after {word}{op.text}")
            name = word.lower()
            if name not in FIELDS and "." not in name:
                raise QueryError(
                    f"unknown field {word!r} at column {tok.pos + 1}; expected one of "
                    f"{', '.join(FIELDS)} or attr.KEY",
                    query=self.text, position=tok.pos,
                )
            return _compare(name if name in FIELDS else word, op.text, value.text, self.text, value.pos)
        return _text(word)

    def causal(self, op: str) -> Pred:
        open_tok = self.take()
        tok, after = self.peek(), self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        if tok.kind == "word" and _REF.match(tok.text) and after is not None and after.kind == "rp":
            self.take()
            self.take()
            return _Causal(op, tok.text, None)
        if tok.kind == "rp":
            raise self.fail(tok, f"a span ref (node:seq) or a query inside {op}(...)")
        sub = self.query()
        close = self.take()
        if close.kind != "rp":
            raise self.fail(close, f"')' to close {op}( at column {open_tok.pos + 1}")
        return _Causal(op, None, sub)


@dataclass(frozen=True)
class Query:
    """A parsed filter. `matches_span` tests one span; `matches_trace` a whole trace."""

    text: str
    pred: Pred | None

    @property
    def empty(self) -> bool:
        return self.pred is None

    def _own(self, ctx: TraceContext) -> None:
        # one query's memo per trace at a time: a new query clears the last one's
        if ctx.cache.get("query") is not self:
            ctx.cache.clear()
            ctx.cache["query"] = self

    def matches_span(self, span: Span, ctx: TraceContext) -> bool:
        self._own(ctx)
        return self.pred is None or self.pred(span, ctx)

    def matching(self, ctx: TraceContext) -> list[Span]:
        self._own(ctx)
        return [s for s in ctx.spans if self.pred is None or self.pred(s, ctx)]

    def matches_trace(self, ctx: TraceContext) -> bool:
        self._own(ctx)
        return self.pred is None or any(self.pred(s, ctx) for s in ctx.spans)


def parse_query(text: str) -> Query:
    """Compile a query; raises `QueryError` (never anything else) when it does not parse."""
    if not text.strip():
        return Query(text, None)
    try:
        parser = _Parser(text)
        pred = parser.query()
        rest = parser.peek()
        if rest.kind != "end":
            raise parser.fail(rest, "'and', 'or', 'without' or the end of the query")
    except RecursionError:
        raise QueryError("query is nested too deeply", query=text) from None
    return Query(text, pred)
