"""Invariants: named predicates over a run's causal history, and the violations they find.

Three forms cover most safety properties of reasoning pipelines, plus plain Python:

- ``every A after B``          each A is causally preceded, in its trace, by a B
- ``never A``                  no step matches A
- ``never A after B on KEY``   no A causally after a B whose key matches (across nodes)

where A and B are step selectors such as ``act(spray) at tractor-* where args.zone ~ "row-*"``.
A violation names the offending step and carries its causal chain, so the report can show
how the pipeline got there. The text language is documented in docs/invariants.md.
"""

from __future__ import annotations

import abc
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgetrace import _attrs as attr
from edgetrace import _units as units
from edgetrace._errors import InvariantError
from edgetrace._index import CausalIndex
from edgetrace._records import Span, SpanKind

__all__ = [
    "FunctionInvariant",
    "History",
    "Invariant",
    "Never",
    "NotAfter",
    "Precedes",
    "Selector",
    "Violation",
    "check_all",
    "no_spray_without_weed",
    "parse_invariant",
    "parse_selector",
    "resolve",
]

_CHAIN_KINDS = frozenset({SpanKind.INPUT, SpanKind.INFER, SpanKind.DECIDE, SpanKind.STATE_GET,
                          SpanKind.STATE_PUT, SpanKind.RECV, SpanKind.ACT, SpanKind.FAULT, SpanKind.SEND})


class History:
    """A run's spans with their causal index: what invariants are checked against."""

    def __init__(self, spans: Iterable[Span]) -> None:
        self.spans = list(spans)
        self.index = CausalIndex(self.spans)
        self._by_ref = {s.ref: s for s in self.spans}

    @classmethod
    def from_session(cls, session: Any) -> History:
        return cls(session.spans)

    def get(self, ref: str) -> Span | None:
        return self._by_ref.get(ref)

    def by_trace(self) -> dict[str, list[Span]]:
        groups: dict[str, list[Span]] = {}
        for span in self.index.causal_sort(self.spans):
            groups.setdefault(span.trace, []).append(span)
        return dict(sorted(groups.items()))

    def chain(self, span: Span, *, limit: int = 20) -> list[Span]:
        """The steps that led to `span`: its causal past in its trace plus cross-trace causes."""
        past = self.index.causal_past(span)
        causes = {s.cause for s in past if s.trace == span.trace and s.cause}
        if span.cause:
            causes.add(span.cause)
        keep = [s for s in past if s.kind in _CHAIN_KINDS and (s.trace == span.trace or s.ref in causes)]
        return [*keep[-(limit - 1):], span] if limit > 1 else [span]


@dataclass(frozen=True)
class Violation:
    invariant: str
    span: str
    trace: str
    node: str
    message: str
    chain: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"invariant": self.invariant, "span": self.span, "trace": self.trace, "node": self.node,
                "message": self.message, "chain": list(self.chain)}


class Invariant(abc.ABC):
    """A named property every run must have."""

    name: str = ""
    description: str = ""

    @abc.abstractmethod
    def check(self, history: History) -> list[Violation]:
        """Every violation in the history."""

    def violation(self, history: History, span: Span, message: str) -> Violation:
        return Violation(self.name, span.ref, span.trace, span.node, message,
                         tuple(s.ref for s in history.chain(span)))


# --- conditions over spans ---------------------------------------------------------------------

_MISSING = object()

_SHORTHANDS = attr.SHORTHANDS


def resolve_path(span: Span, path: Sequence[str]) -> Any:
    head, rest = path[0], list(path[1:])
    if head in ("node", "name", "trace", "seq", "error", "parent", "cause") and not rest:
        return getattr(span, head)
    if head == "kind" and not rest:
        return span.kind.value
    if head == "status" and not rest:
        return span.status.value
    if head == "duration" and not rest:
        return span.duration
    if head == "state" and rest:
        value: Any = span.attrs.get(attr.STATE_PREFIX + rest[0], _MISSING)
        rest = rest[1:]
    elif head in _SHORTHANDS:
        value = span.attrs.get(_SHORTHANDS[head], _MISSING)
    elif head == "attrs" and rest:
        value = span.attrs.get(rest[0], _MISSING)
        rest = rest[1:]
    else:
        return _MISSING
    for part in rest:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is _MISSING or right is _MISSING:
        return False
    try:
        if op == "==":
            return bool(left == right)
        if op == "!=":
            return bool(left != right)
        if op == "~":
            return isinstance(left, str) and isinstance(right, str) and fnmatch.fnmatchcase(left, right)
        if op == "in":
            return isinstance(right, (list, tuple, str, dict)) and left in right
        if isinstance(left, bool) or isinstance(right, bool):
            return False
        if op == ">":
            return bool(left > right)
        if op == ">=":
            return bool(left >= right)
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
    except TypeError:
        return False
    return False


Cond = Callable[[Span, Span | None], bool]


@dataclass(frozen=True)
class Selector:
    """Which steps: a kind, a name glob, a node glob and a condition."""

    kind: str | None = None
    name: str = "*"
    node: str = "*"
    where: Cond | None = None
    text: str = ""

    def matches(self, span: Span) -> bool:
        if self.kind is not None and span.kind.value != self.kind:
            return False
        if not fnmatch.fnmatchcase(span.name, self.name) or not fnmatch.fnmatchcase(span.node, self.node):
            return False
        return self.where is None or bool(self.where(span, None))

    def __str__(self) -> str:
        return self.text


class Precedes(Invariant):
    """Every span matching `target` is causally preceded, in its trace, by one matching `required`."""

    def __init__(self, name: str, target: Selector, required: Selector, description: str = "") -> None:
        self.name, self.target, self.required = name, target, required
        self.description = description or f"every {target} after {required}"

    def check(self, history: History) -> list[Violation]:
        found = []
        for span in history.spans:
            if not self.target.matches(span):
                continue
            past = history.index.causal_past(span, trace=span.trace)
            if any(self.required.matches(p) for p in past):
                continue
            near = [p for p in past if self.required.kind is None or p.kind.value == self.required.kind]
            hint = ""
            if near:
                p = near[-1]
                shown = p.attrs.get(attr.OUTPUT, p.attrs.get(attr.DECISION, p.name))
                hint = f"; nearest {p.kind.value} {p.ref} said {shown!r}" + (f" ({p.error})" if p.error else "")
            elif self.required.kind:
                hint = f"; no {self.required.kind} step precedes it in this trace"
            found.append(self.violation(
                history, span,
                f"{span.kind.value} {span.name} at {span.ref} has no `{self.required}` before it in trace "
                f"{span.trace}{hint}",
            ))
        return found


class Never(Invariant):
    def __init__(self, name: str, target: Selector, description: str = "") -> None:
        self.name, self.target = name, target
        self.description = description or f"never {target}"

    def check(self, history: History) -> list[Violation]:
        return [self.violation(history, s, f"{s.kind.value} {s.name} at {s.ref} matches `never {self.target}`")
                for s in history.spans if self.target.matches(s)]


class NotAfter(Invariant):
    """No `target` causally after a `trigger` with a matching key (across nodes and traces)."""

    def __init__(self, name: str, target: Selector, trigger: Selector, key: Cond, key_text: str,
                 description: str = "") -> None:
        self.name, self.target, self.trigger, self.key, self.key_text = name, target, trigger, key, key_text
        self.description = description or f"never {target} after {trigger} on {key_text}"

    def check(self, history: History) -> list[Violation]:
        triggers = [s for s in history.spans if self.trigger.matches(s)]
        found = []
        for span in history.spans:
            if not self.target.matches(span):
                continue
            for t in triggers:
                if self.key(span, t) and history.index.happens_before(t, span):
                    # the chain shows both stories: how the trigger came about, and the target's own
                    steps = {s.ref: s for s in [*history.chain(t, limit=6), *history.chain(span)]}
                    chain = tuple(s.ref for s in history.index.causal_sort(steps.values()))
                    found.append(Violation(
                        self.name, span.ref, span.trace, span.node,
                        f"{span.kind.value} {span.name} at {span.ref} happened after {t.kind.value} {t.name} "
                        f"{t.ref} had causally reached it ({self.key_text})", chain,
                    ))
                    break
        return found


class FunctionInvariant(Invariant):
    """Any Python check: `fn(history)` yields Violations or (span, message) pairs."""

    def __init__(self, name: str, fn: Callable[[History], Iterable[Any]], description: str = "") -> None:
        self.name, self.fn, self.description = name, fn, description or name

    def check(self, history: History) -> list[Violation]:
        found = []
        for item in self.fn(history):
            if isinstance(item, Violation):
                found.append(item)
            else:
                span, message = item
                found.append(self.violation(history, span, str(message)))
        return found


def check_all(invariants: Sequence[Invariant], history: History) -> list[Violation]:
    found = [v for inv in invariants for v in inv.check(history)]
    seq_of = {s.ref: s.seq for s in history.spans}
    return sorted(found, key=lambda v: (v.trace, v.node, seq_of.get(v.span, 0), v.invariant))


def no_spray_without_weed(threshold: float = 0.8) -> Invariant:
    """The agri safety property: no spray unless the model saw a weed, confidently, first."""
    text = f'every act(spray) after infer where output.type == "weed_detected" and output.confidence > {threshold}'
    inv = parse_invariant(text, name="no-spray-without-weed")
    inv.description = f"every spray is preceded in its trace by a weed detection with confidence > {threshold}"
    return inv


# --- the text language ----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>-?\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)?(?![\w.]))
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>==|!=|>=|<=|>|<|~|\(|\)|\[|\]|,|\.)
      | (?P<word>[A-Za-z_*?][\w*?\-/]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"every", "never", "after", "at", "where", "on", "and", "or", "not", "in", "true", "false", "null"}
_KINDS = [k.value for k in SpanKind]


@dataclass
class _Tok:
    kind: str
    text: str
    col: int


@dataclass
class _Parser:
    text: str
    toks: list[_Tok] = field(default_factory=list)
    i: int = 0

    def __post_init__(self) -> None:
        pos = 0
        while pos < len(self.text):
            if self.text[pos:].strip() == "":
                break
            m = _TOKEN.match(self.text, pos)
            if m is None or m.end() == pos:
                col = pos + len(self.text[pos:]) - len(self.text[pos:].lstrip())
                raise self.error(f"unexpected character {self.text[col]!r}", col)
            kind = m.lastgroup or ""
            self.toks.append(_Tok(kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.toks.append(_Tok("end", "", len(self.text)))

    def error(self, message: str, col: int | None = None) -> InvariantError:
        col = self.peek().col if col is None else col
        return InvariantError(f"invariant {self.text!r}: {message} at column {col + 1}")

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def accept(self, word: str) -> bool:
        tok = self.peek()
        if tok.text == word and tok.kind in ("word", "op"):
            self.take()
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            found = self.peek().text or "end of text"
            raise self.error(f"expected {word!r}, found {found!r}")

    # invariant := "every" sel "after" sel | "never" sel ["after" sel "on" keycond]
    def invariant(self, name: str) -> Invariant:
        if self.accept("every"):
            target = self.selector()
            self.expect("after")
            required = self.selector()
            inv: Invariant = Precedes(name, target, required)
        elif self.accept("never"):
            target = self.selector()
            if self.accept("after"):
                trigger = self.selector()
                self.expect("on")
                start = self.peek().col
                key = self.condition(pair=True)
                inv = NotAfter(name, target, trigger, key, self.text[start:self.peek().col].strip())
            else:
                inv = Never(name, target)
        else:
            found = self.peek().text or "end of text"
            raise self.error(f"expected 'every' or 'never', found {found!r}")
        if self.peek().kind != "end":
            raise self.error(f"unexpected {self.peek().text!r}")
        return inv

    def selector(self) -> Selector:
        start = self.peek().col
        tok = self.take()
        kind = tok.text
        if kind == "state" and self.peek().text == ".":  # state.get / state.put arrive as three tokens
            self.take()
            kind = f"state.{self.take().text}"
        if tok.kind != "word" or kind not in _KINDS:
            raise self.error(f"expected a step kind ({', '.join(_KINDS)}), found {kind or 'end of text'!r}",
                             tok.col)
        name = "*"
        if self.accept("("):
            parts = []
            while self.peek().text != ")" and self.peek().kind != "end":
                parts.append(self.take().text)
            self.expect(")")
            name = "".join(parts) or "*"
        node = "*"
        if self.accept("at"):
            node_tok = self.take()
            if node_tok.kind not in ("word", "str"):
                raise self.error(f"expected a node glob after 'at', found {node_tok.text!r}", node_tok.col)
            node = node_tok.text.strip("\"'")
        where = self.condition() if self.accept("where") else None
        return Selector(kind, name, node, where, self.text[start:self.peek().col].strip())

    def condition(self, pair: bool = False) -> Cond:
        left = self._and(pair)
        while self.accept("or"):
            right = self._and(pair)
            left = (lambda a, b: lambda s, t: a(s, t) or b(s, t))(left, right)
        return left

    def _and(self, pair: bool) -> Cond:
        left = self._not(pair)
        while self.accept("and"):
            right = self._not(pair)
            left = (lambda a, b: lambda s, t: a(s, t) and b(s, t))(left, right)
        return left

    def _not(self, pair: bool) -> Cond:
        if self.accept("not"):
            inner = self._not(pair)
            return lambda s, t: not inner(s, t)
        if self.accept("("):
            inner = self.condition(pair)
            self.expect(")")
            return inner
        return self._comparison(pair)

    def _comparison(self, pair: bool) -> Cond:
        if self.peek().kind in ("str", "num"):  # `"fallback" in fired`: a literal tested against a field
            value = self._literal()
            if not (self.peek().text == "in" and self.peek().kind == "word"):
                raise self.error(f"expected 'in' after the value {value!r} (a value on the left only works "
                                 "with 'in', e.g. \"fallback\" in fired)")
            self.take()
            path = self._path()
            return lambda s, t: _compare("in", value, resolve_path(s, path))
        left = self._path()
        tok = self.peek()
        if tok.text in ("==", "!=", ">", ">=", "<", "<=", "~", "in") and tok.kind in ("op", "word"):
            op = self.take().text
            right = self._operand(pair)
            return lambda s, t: _compare(op, resolve_path(s, left), right(s, t))
        return lambda s, t: resolve_path(s, left) not in (_MISSING, None, False, 0, "", [], {})

    def _path(self) -> list[str]:
        tok = self.take()
        if tok.kind != "word" or tok.text in _KEYWORDS:
            raise self.error(f"expected a field such as output.type, decision or args.zone, found "
                             f"{tok.text or 'end of text'!r}", tok.col)
        parts = [tok.text]
        while self.accept("."):
            nxt = self.take()
            if nxt.kind == "str":
                parts.append(_unquote(nxt.text))
            elif nxt.kind == "word":
                parts.append(nxt.text)
            else:
                raise self.error(f"expected a field name after '.', found {nxt.text!r}", nxt.col)
        return parts

    def _operand(self, pair: bool) -> Callable[[Span, Span | None], Any]:
        tok = self.peek()
        if tok.kind == "word" and tok.text not in _KEYWORDS and pair:
            path = self._path()
            return lambda s, t: resolve_path(t, path) if t is not None else _MISSING
        value = self._literal()
        return lambda s, t: value

    def _literal(self) -> Any:
        tok = self.take()
        if tok.kind == "num":
            m = re.fullmatch(r"(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)?", tok.text)
            assert m is not None
            if m.group(2):
                return units.parse_duration(tok.text, signed=True)
            number = float(m.group(1))
            return int(number) if number.is_integer() and "." not in m.group(1) else number
        if tok.kind == "str":
            return _unquote(tok.text)
        if tok.text == "true":
            return True
        if tok.text == "false":
            return False
        if tok.text == "null":
            return None
        if tok.text == "[":
            items = []
            while not self.accept("]"):
                items.append(self._literal())
                if not self.accept(","):
                    self.expect("]")
                    break
            return items
        raise self.error(f"expected a value (number, \"string\", true, false, null, [list]), found "
                         f"{tok.text or 'end of text'!r}", tok.col)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def parse_invariant(text: str, *, name: str | None = None) -> Invariant:
    """Parse the invariant language (docs/invariants.md); errors are InvariantError."""
    if not isinstance(text, str) or not text.strip():
        raise InvariantError("empty invariant: expected e.g. 'every act(spray) after infer where ...'")
    return _Parser(text).invariant(name or text.strip())


def parse_selector(text: str) -> Selector:
    """A step selector alone (`act(spray) at tractor-* where args.zone ~ "row-*"`), for tests and queries."""
    if not isinstance(text, str) or not text.strip():
        raise InvariantError("empty selector: expected e.g. 'act(spray)' or 'infer where output.confidence > 0.8'")
    parser = _Parser(text)
    sel = parser.selector()
    if parser.peek().kind != "end":
        raise parser.error(f"unexpected {parser.peek().text!r}")
    return sel


def resolve(names_or_exprs: Sequence[str], declared: Mapping[str, Any]) -> list[Invariant]:
    """Known names pick declared invariants; anything else must parse as an expression."""
    found: list[Invariant] = []
    for item in names_or_exprs:
        if item in declared:
            value = declared[item]
            if isinstance(value, Invariant):
                found.append(value)
            elif isinstance(value, str):
                found.append(parse_invariant(value, name=item))
            elif callable(value):
                found.append(FunctionInvariant(item, value))
            else:
                raise InvariantError(f"invariant {item!r} is a {type(value).__name__}, not an Invariant")
        elif re.fullmatch(r"[\w.\-]+", item) and not item.startswith(("every", "never")):
            raise InvariantError(
                f"unknown invariant {item!r}; declared: {', '.join(sorted(declared)) or 'none'} "
                "(or give an expression, see docs/invariants.md)"
            )
        else:
            found.append(parse_invariant(item))
    return found
