"""The invariant language: text such as ``every act(spray) after infer where ...`` → an `Invariant`.

Grammar (docs/invariants.md is the user's version, and its examples are tested)::

    invariant := "every" selector ["within" DURATION] "after" selector
               | "never" selector ["after" selector "on" key ["unless" selector "between"]]
               | "never" "concurrent" selector "with" selector ["on" key]
               | ("sometimes" | "reachable" | "unreachable") selector
    key       := "same" PATH | condition        (`same args.row` ≡ `args.row == args.row`)
    selector  := KIND ["(" NAME-GLOB ")"] ["at" NODE-GLOB] ["where" condition]
    condition := or-and-not over comparisons, parentheses
    comparison:= PATH OP LITERAL | LITERAL "in" PATH | PATH      (a bare path: present, not empty)

Names (`output.type`, `state.key`, `attrs."k"`), operators (`==` or `=`, `!=`, `~`, `!~`,
orderings, `in`), comparison rules and number/duration literals are the selector core's
(`edgetrace._selector`), shared with the explorer's filter; this module adds the grammar
around them, typed literals and the pair conditions of `on` (left reads A, right reads B).
Comparisons are exact (case-sensitive); a path a step lacks makes its comparison false.
Every malformed text raises one `InvariantError` naming the column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edgetrace import _selector as sel
from edgetrace import _units as units
from edgetrace._errors import InvariantError
from edgetrace._records import SpanKind
from edgetrace.replay._invariants._distributed import Coverage, NotConcurrent, Within
from edgetrace.replay._invariants._kinds import Never, NotAfter, Precedes
from edgetrace.replay._invariants._model import Cond, Invariant, Selector

__all__ = ["parse_invariant", "parse_selector"]

_OPS = "|".join(re.escape(op) for op in sel.OP_SYMBOLS)
_TOKEN = re.compile(
    rf"""\s*(?:
        (?P<num>{sel.NUMBER}(?![\w.]))
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>{_OPS}|\(|\)|\[|\]|,|\.)
      | (?P<word>[A-Za-z_*?][\w*?\-/:]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"every", "never", "after", "at", "where", "on", "and", "or", "not", "in", "true", "false", "null",
             "concurrent", "with", "same", "unless", "between", "within", "sometimes", "reachable", "unreachable"}
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

    def invariant(self, name: str) -> Invariant:
        inv: Invariant
        if self.accept("every"):
            target = self.selector()
            if self.accept("within"):
                limit = self._duration()
                self.expect("after")
                inv = Within(name, target, limit, self.selector())
            else:
                self.expect("after")
                inv = Precedes(name, target, self.selector())
        elif self.accept("never"):
            if self.accept("concurrent"):
                first = self.selector()
                self.expect("with")
                second = self.selector()
                key, key_text = self._key() if self.accept("on") else (None, "")
                inv = NotConcurrent(name, first, second, key, key_text)
            else:
                target = self.selector()
                if self.accept("after"):
                    trigger = self.selector()
                    self.expect("on")
                    pair_key, key_text = self._key()
                    unless = None
                    if self.accept("unless"):
                        unless = self.selector()
                        self.expect("between")
                    inv = NotAfter(name, target, trigger, pair_key, key_text, unless=unless)
                else:
                    inv = Never(name, target)
        elif self.peek().text in ("sometimes", "reachable", "unreachable") and self.peek().kind == "word":
            mode = self.take().text
            inv = Coverage(name, mode, self.selector())
        else:
            found = self.peek().text or "end of text"
            raise self.error(f"expected 'every', 'never', 'sometimes', 'reachable' or 'unreachable', "
                             f"found {found!r}")
        if self.peek().kind != "end":
            raise self.error(f"unexpected {self.peek().text!r}")
        return inv

    def _key(self) -> tuple[Cond, str]:
        """After `on`: `same PATH` or a pair condition; returns it and its text."""
        start = self.peek().col
        if self.accept("same"):
            get = self._path().get

            def same(s: Any, t: Any) -> bool:
                a = get(s)
                return a is not sel.MISSING and t is not None and sel.compare(sel.Op.EQ, a, get(t))

            return same, self.text[start:self.peek().col].strip()
        key = self.condition(pair=True)
        return key, self.text[start:self.peek().col].strip()

    def _duration(self) -> int:
        tok = self.take()
        try:
            return units.parse_duration(tok.text)
        except ValueError as exc:
            raise self.error(f"expected a duration such as 1s or 500ms after 'within', found {tok.text!r} "
                             f"({exc})", tok.col) from None

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
            inside = self._path().get
            return lambda s, t: sel.compare(sel.Op.IN, value, inside(s))
        get = self._path().get
        op = self._operator()
        if op is None:  # a bare path: the step has it, and it is not empty
            return lambda s, t: get(s) not in _EMPTY
        tok = self.peek()
        if pair and tok.kind == "word" and tok.text not in _KEYWORDS:  # `on args.cell == payload.cell`
            other = self._path().get
            return lambda s, t: sel.compare(op, get(s), other(t) if t is not None else sel.MISSING)
        test = sel.comparison(op, self._literal())
        return lambda s, t: test(get(s))

    def _operator(self) -> sel.Op | None:
        tok = self.peek()
        if tok.kind == "op" and tok.text in sel.SPELLINGS:
            self.take()
            return sel.SPELLINGS[tok.text]
        if tok.kind == "word" and tok.text == "in":
            self.take()
            return sel.Op.IN
        return None

    def _path(self) -> sel.Field:
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
        return sel.field(parts)

    def _literal(self) -> Any:
        tok = self.take()
        if tok.kind == "num":
            return sel.number(tok.text)
        if tok.kind == "str":
            return _unquote(tok.text)
        if tok.kind == "word" and tok.text in sel.KEYWORD_VALUES:
            return sel.KEYWORD_VALUES[tok.text]
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


_EMPTY: tuple[Any, ...] = (sel.MISSING, None, False, 0, "", [], {})


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
    found = parser.selector()
    if parser.peek().kind != "end":
        raise parser.error(f"unexpected {parser.peek().text!r}")
    return found
