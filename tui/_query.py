"""The explorer's filter language: parse a query once, test it against the spans of a trace.

Pure Python (no Textual) so it is easy to test and fuzz. Grammar, loosest binding first::

    query      := or_expr ('without' or_expr)*      A without B  ≡  A and not B
    or_expr    := and_expr ('or' and_expr)*
    and_expr   := unary (['and'] unary)*             juxtaposition means 'and'
    unary      := 'not' unary | primary
    primary    := '(' query ')' | causal | comparison | text
    causal     := ('before' | 'after' | 'concurrent') '(' (REF | query) ')'
    comparison := FIELD OP VALUE     OP: = == != ~ !~ > >= < <=
    text       := WORD | "quoted text"

Fields, operators and comparisons come from the selector core (`edgetrace._selector`), which
the invariant language shares: the same names (`output.type`, `decision`, `attr.KEY`), `=` and
`==` alike, `~` a glob, durations through `edgetrace._units`. What the search box adds:

- a value is a word with no type of its own (quotes only let it hold spaces): against a
  number, a word that reads as one compares as a number (`seq>3`; `duration>500ms`, where a
  bare number is ns), and `<` `<=` `>` `>=` with such a word hold for numbers only; every
  other comparison is between the text the explorer shows for the value (a flag shows as
  `true`/`false`) and the word;
- text compares case-folded (the core's `fold_case`), in every operator;
- a `~` pattern with no glob character is a substring: `node~tractor` is `node~*tractor*`;
- an absent field equals `""`, `none` and `null` (so `!=` and `!~` hold for it) and is never
  ordered.

A query selects spans; a trace matches when one of its spans does. Causal operators are
relative to the span being tested and look within its trace: `after(kind=infer)` holds for a
span that some infer span of the same trace happened before. So
`kind=act without after(kind=infer)` finds actions no model output led to, and
`kind=send without before(kind=recv)` finds sends that no receive followed.
Every malformed query raises one `QueryError` whose message says what was expected where.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edgetrace import _attrs as attr
from edgetrace import _selector as sel
from edgetrace import _units as units
from edgetrace._errors import UsageError
from edgetrace._records import Span

__all__ = ["FIELDS", "QUERY_HELP", "Bool", "CausalNode", "Cmp", "Node", "Query", "QueryError", "Text",
           "TraceContext", "parse_query"]

#: Fields a comparison may name: the span's own (the selector core's) and two of its trace.
#: Shorthands (`decision`, `output.type`, `state.key`), `attr.KEY` and dotted names read attributes.
FIELDS: dict[str, str] = {
    **sel.SPAN_FIELDS,
    "spans": "number of spans in the span's trace",
    "nodes": "number of nodes the span's trace touched",
    "from": "node that sent the message a span received (from=tractor-01 node=hub: that link)",
}

QUERY_HELP = """\
Filter queries select spans; a trace is listed when one of its spans matches.
  kind=infer                 field comparison, = or ==; fields: kind node name trace ref seq
                             status error duration parent cause from spans nodes, attr.KEY
  decision=spray             shorthands as in invariants: output.KEY decision fired args.KEY
                             payload.KEY state.KEY (output.type=weed_detected)
  node~tractor-0*            ~ glob, !~ its negation; with no * ? [ it is a substring
                             (node~tractor = node~*tractor*); also != > >= < <=
  duration>500ms             durations take ns us ms s m h (a bare number is ns)
  attr.edgetrace.decision=spray   any attribute by key (dotted names need no attr.)
                             comparisons ignore case; an absent field equals none
  weed  "no weed"            bare or quoted text: search names, nodes, errors, attributes
  a and b, a b, a or b, not a, (a or b)
  before(t-0:5)              spans that happened before span t-0:5 (same trace)
  after(kind=infer)          spans some infer span of their trace happened before
  concurrent(X)              spans neither before nor after X (a ref or a query)
  A without B                A and not B: kind=act without after(kind=infer)
                             = actions with no model inference in their causal past"""

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


# --- the parsed form, kept beside the compiled predicates (the columnar filter reads it) --

@dataclass(frozen=True)
class Cmp:
    """`FIELD OP WORD`: `per_value` is what the predicate applies to the field's value."""

    name: str
    field: sel.Field | None
    op: sel.Op
    raw: str
    number: float | None  # the word as a number, when it compares as one (not for globs)
    per_value: Callable[[Any], bool]


@dataclass(frozen=True)
class Text:
    word: str  # folded


@dataclass(frozen=True)
class Bool:
    op: str  # and, or, without, not
    args: tuple[Node, ...]


@dataclass(frozen=True)
class CausalNode:
    op: str  # before, after, concurrent
    ref: str | None
    sub: Node | None


Node = Cmp | Text | Bool | CausalNode


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
            op = sel.scan_op(text, i)
            if op is None:
                raise QueryError(
                    f"unknown operator {c!r} at column {i + 1}; expected one of {' '.join(sel.OP_SYMBOLS)}",
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
_Value = Callable[[Span, TraceContext], Any]

def _sender(span: Span) -> str:
    node = span.cause.rpartition(":")[0]
    return node if node != span.node else ""


#: Fields the explorer reads off a span beyond the selector core's.
_EXPLORER_FIELDS: dict[str, Callable[[Span], str]] = {"from": _sender}

_TRACE_FIELDS: dict[str, _Value] = {
    "spans": lambda s, c: len(c.spans),
    "nodes": lambda s, c: len({x.node for x in c.spans}),
}
_NUMERIC = frozenset({"duration", "seq", "spans", "nodes"})
_NULL_WORDS = frozenset({"", "none", "null"})
_NAMES = frozenset(FIELDS) | frozenset(attr.SHORTHANDS)


def _never(value: Any) -> bool:
    return False


def _word_number(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def _comparison(name: str, found: sel.Field | None, op: sel.Op, raw: str, query: str,
                pos: int) -> tuple[Pred, Cmp]:
    """`FIELD OP WORD`: the word meets the field's value as a number or as folded text."""
    number: float | None
    if name in _NUMERIC:
        try:
            number = parse_duration(raw) if name == "duration" else float(raw)
        except ValueError:
            what = "a duration such as 500ms" if name == "duration" else "a number"
            raise QueryError(
                f"{name} needs {what}, found {raw!r} at column {pos + 1}", query=query, position=pos
            ) from None
    else:
        number = _word_number(raw)
    globbing = op in (sel.Op.MATCH, sel.Op.NOT_MATCH)
    if globbing and not sel.is_glob(raw):
        raw = f"*{raw}*"  # the search box's convenience: plain text is a substring
    ordering = op in sel.ORDERING
    num = sel.comparison(op, number) if number is not None and not globbing else None
    # `x>10` orders numbers only: "5" > "10" as text is true, and no one typing it means that
    text = _never if ordering and num is not None else sel.comparison(op, raw, fold_case=True)
    if globbing:
        absent = text("")
    else:
        absent = not ordering and (sel.fold(raw) in _NULL_WORDS) == (op is sel.Op.EQ)

    def test(value: Any) -> bool:
        kind = type(value)
        if kind is str:
            return text(value)
        if value is None or value is sel.MISSING:
            return absent
        if num is not None and (kind is int or kind is float):
            return num(value)
        return text(str(value))  # flags, lists, maps: the text the explorer shows for them

    numeric = number if num is not None else None
    of_trace = _TRACE_FIELDS.get(name)
    if of_trace is not None:
        return (lambda s, c: test(of_trace(s, c))), Cmp(name, None, op, raw, numeric, test)
    of_explorer = _EXPLORER_FIELDS.get(name)
    if of_explorer is not None:
        return (lambda s, c: text(of_explorer(s))), Cmp(name, None, op, raw, numeric, text)
    assert found is not None  # the parser resolved every name that is not a trace field
    of_span = found.get
    if name in sel.TEXT_FIELDS:  # always text: skip the dispatch on the value's type
        return (lambda s, c: text(of_span(s))), Cmp(name, found, op, raw, numeric, text)
    return (lambda s, c: test(of_span(s))), Cmp(name, found, op, raw, numeric, test)


def _text(word: str) -> tuple[Pred, Text]:
    low = sel.fold(word)

    def pred(span: Span, ctx: TraceContext) -> bool:
        if any(low in str(v).lower() for v in (span.name, span.node, span.trace, span.kind.value,
                                                 span.error, span.ref)):
            return True
        return any(low in str(k).lower() or low in str(v).lower() for k, v in span.attrs.items())

    return pred, Text(low)


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

    def query(self) -> tuple[Pred, Node]:
        left, ltree = self.or_expr()
        while self.is_kw(self.peek(), "without"):
            self.take()
            right, rtree = self.or_expr()
            left = (lambda a, b: lambda s, c: a(s, c) and not b(s, c))(left, right)
            ltree = Bool("without", (ltree, rtree))
        return left, ltree

    def or_expr(self) -> tuple[Pred, Node]:
        left, ltree = self.and_expr()
        while self.is_kw(self.peek(), "or"):
            self.take()
            right, rtree = self.and_expr()
            left = (lambda a, b: lambda s, c: a(s, c) or b(s, c))(left, right)
            ltree = Bool("or", (ltree, rtree))
        return left, ltree

    def starts_unary(self, tok: _Tok) -> bool:
        if tok.kind in ("lp", "str"):
            return True
        return tok.kind == "word" and tok.text.lower() not in ("and", "or", "without")

    def and_expr(self) -> tuple[Pred, Node]:
        left, ltree = self.unary()
        while True:
            tok = self.peek()
            if self.is_kw(tok, "and"):
                self.take()
            elif not self.starts_unary(tok):
                return left, ltree
            right, rtree = self.unary()
            left = (lambda a, b: lambda s, c: a(s, c) and b(s, c))(left, right)
            ltree = Bool("and", (ltree, rtree))

    def unary(self) -> tuple[Pred, Node]:
        if self.is_kw(self.peek(), "not"):
            self.take()
            inner, tree = self.unary()
            return (lambda s, c: not inner(s, c)), Bool("not", (tree,))
        return self.primary()

    def primary(self) -> tuple[Pred, Node]:
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
            name = word.lower() if word.lower() in _NAMES else word
            found = None if name in _TRACE_FIELDS or name in _EXPLORER_FIELDS else self.field(name, tok)
            return _comparison(name, found, sel.SPELLINGS[op.text], value.text, self.text, value.pos)
        return _text(word)

    def field(self, name: str, tok: _Tok) -> sel.Field:
        found = sel.field(name)
        if not found.known:
            raise QueryError(
                f"unknown field {tok.text!r} at column {tok.pos + 1}; expected one of "
                f"{', '.join(FIELDS)}, a shorthand ({', '.join(attr.SHORTHANDS)}) or attr.KEY",
                query=self.text, position=tok.pos,
            )
        return found

    def causal(self, op: str) -> tuple[Pred, Node]:
        open_tok = self.take()
        tok, after = self.peek(), self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        if tok.kind == "word" and _REF.match(tok.text) and after is not None and after.kind == "rp":
            self.take()
            self.take()
            return _Causal(op, tok.text, None), CausalNode(op, tok.text, None)
        if tok.kind == "rp":
            raise self.fail(tok, f"a span ref (node:seq) or a query inside {op}(...)")
        sub, tree = self.query()
        close = self.take()
        if close.kind != "rp":
            raise self.fail(close, f"')' to close {op}( at column {open_tok.pos + 1}")
        return _Causal(op, None, sub), CausalNode(op, None, tree)


@dataclass(frozen=True)
class Query:
    """A parsed filter. `matches_span` tests one span; `matches_trace` a whole trace."""

    text: str
    pred: Pred | None
    tree: Node | None = None  # what the columnar filter evaluates

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
        pred, tree = parser.query()
        rest = parser.peek()
        if rest.kind != "end":
            raise parser.fail(rest, "'and', 'or', 'without' or the end of the query")
    except RecursionError:
        raise QueryError("query is nested too deeply", query=text) from None
    return Query(text, pred, tree)
