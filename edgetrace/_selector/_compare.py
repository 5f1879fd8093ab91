"""Comparisons: the operators both span languages share and what each one means.

One table of spellings (`=` and `==` are the same operator, `!=` the only spelling of its
negation), one glob dialect (`~`, shell-style, as `fnmatch` reads it), one set of rules for
comparing values, and one explicit switch for case: `fold_case` compares text lower-cased.
The explorer turns it on (it is a search box); invariants leave it off (they are exact).

Rules, whatever the language:
- a value that is `MISSING` never compares true, not even with `!=` or `!~`;
- `==` / `!=` are Python equality (so `1 == 1.0`);
- `~` / `!~` apply to text only: a glob against anything else is false;
- `<`, `<=`, `>`, `>=` are Python's order where it has one (numbers with numbers, text with
  text); a flag (bool) is never ordered, and values of different kinds compare false;
- `in` is membership: `value in [list]`, `"x" in list-field`, or a substring of text.

`comparison()` compiles one operator and one fixed operand into a closure over the value
(globs compiled once, no per-span dispatch on the operator); `compare()` is the same rules
for two values only known per span (an invariant's `on args.cell == payload.cell`).
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import operator
import re
from collections.abc import Callable
from typing import Any, Final

from edgetrace._selector._fields import MISSING

__all__ = [
    "GLOB_CHARS",
    "OP_SYMBOLS",
    "ORDERING",
    "SPELLINGS",
    "Op",
    "Test",
    "compare",
    "comparison",
    "fold",
    "glob",
    "is_glob",
    "scan_op",
]


class Op(enum.StrEnum):
    """A comparison operator, by its canonical spelling."""

    EQ = "=="
    NE = "!="
    MATCH = "~"
    NOT_MATCH = "!~"
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    IN = "in"


#: Every symbol spelling of an operator (`in` is a word, read by the languages that have it).
SPELLINGS: Final[dict[str, Op]] = {
    "==": Op.EQ,
    "=": Op.EQ,
    "!=": Op.NE,
    "~": Op.MATCH,
    "!~": Op.NOT_MATCH,
    ">": Op.GT,
    ">=": Op.GE,
    "<": Op.LT,
    "<=": Op.LE,
}

#: The symbols, longest first: a scanner takes the first that fits (`>=` before `>`).
OP_SYMBOLS: Final[tuple[str, ...]] = tuple(sorted(SPELLINGS, key=lambda s: (-len(s), s)))

ORDERING: Final = frozenset({Op.GT, Op.GE, Op.LT, Op.LE})

#: Characters that make a pattern a glob rather than plain text.
GLOB_CHARS: Final = "*?["

Test = Callable[[Any], bool]


def scan_op(text: str, pos: int) -> str | None:
    """The operator symbol spelled at `text[pos:]`, or None."""
    return next((op for op in OP_SYMBOLS if text.startswith(op, pos)), None)


def fold(text: str) -> str:
    """How text is case-folded where a language asks for it (lower-case, as the explorer always did)."""
    return text.lower()


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in GLOB_CHARS)


def glob(pattern: str, *, fold_case: bool = False) -> Callable[[str], bool]:
    """A compiled `fnmatch` glob over text; plain patterns take a faster, identical path."""
    if fold_case:
        pattern = fold(pattern)
    body = pattern.strip("*")
    if not is_glob(pattern):
        test: Callable[[str], bool] = pattern.__eq__
    elif not is_glob(body) and pattern == f"*{body}*":
        test = lambda s: body in s  # noqa: E731  (*text*: a substring, the explorer's everyday case)
    elif not is_glob(body) and pattern == f"{body}*":
        test = lambda s: s.startswith(body)  # noqa: E731
    elif not is_glob(body) and pattern == f"*{body}":
        test = lambda s: s.endswith(body)  # noqa: E731
    else:
        match = re.compile(fnmatch.translate(pattern)).match
        test = lambda s: match(s) is not None  # noqa: E731
    if fold_case:
        return lambda s: test(s.lower())
    return test


@functools.lru_cache(maxsize=256)
def _glob_cached(pattern: str, fold_case: bool) -> Callable[[str], bool]:
    return glob(pattern, fold_case=fold_case)


_ORDER: Final[dict[Op, Callable[[Any, Any], bool]]] = {
    Op.GT: operator.gt, Op.GE: operator.ge, Op.LT: operator.lt, Op.LE: operator.le,
}


def _ordered(op: Op, left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return False
    return bool(_ORDER[op](left, right))  # mixed kinds raise TypeError: the caller says false


def compare(op: Op, left: Any, right: Any, *, fold_case: bool = False) -> bool:
    """`left OP right` by the rules above; never raises."""
    if left is MISSING or right is MISSING:
        return False
    if fold_case:
        left = fold(left) if isinstance(left, str) else left
        right = fold(right) if isinstance(right, str) else right
    try:
        if op is Op.EQ:
            return bool(left == right)
        if op is Op.NE:
            return bool(left != right)
        if op is Op.MATCH or op is Op.NOT_MATCH:
            if not (isinstance(left, str) and isinstance(right, str)):
                return False
            return _glob_cached(right, False)(left) == (op is Op.MATCH)
        if op is Op.IN:
            return isinstance(right, list | tuple | str | dict) and left in right
        return _ordered(op, left, right)
    except (TypeError, ValueError):  # odd values (a list `in` a string, NaN-like objects)
        return False


def _never(value: Any) -> bool:
    return False


def comparison(op: Op, operand: Any, *, fold_case: bool = False) -> Test:
    """`value OP operand` compiled for a fixed operand: the per-span test of a query."""
    if operand is MISSING:
        return _never
    if op is Op.MATCH or op is Op.NOT_MATCH:
        if not isinstance(operand, str):
            return _never
        match = glob(operand, fold_case=fold_case)
        if op is Op.MATCH:
            return lambda v: isinstance(v, str) and match(v)
        return lambda v: isinstance(v, str) and not match(v)
    if isinstance(operand, str) and op is not Op.IN:
        return _text_comparison(op, operand, fold_case)
    if _is_number(operand) and op is not Op.IN:
        return _number_comparison(op, operand)
    return lambda v: compare(op, v, operand, fold_case=fold_case)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_comparison(op: Op, operand: float) -> Test:
    """A number against a fixed number: durations and counts in the explorer, thresholds in invariants."""
    if op is Op.EQ:
        return lambda v: v is not MISSING and bool(v == operand)
    if op is Op.NE:
        return lambda v: v is not MISSING and bool(v != operand)
    # `type(v) in _NUMBERS` first: the per-span path of `duration>500ms` pays one tuple test
    if op is Op.GT:
        return lambda v: (type(v) in _NUMBERS or _is_number(v)) and v > operand
    if op is Op.GE:
        return lambda v: (type(v) in _NUMBERS or _is_number(v)) and v >= operand
    if op is Op.LT:
        return lambda v: (type(v) in _NUMBERS or _is_number(v)) and v < operand
    return lambda v: (type(v) in _NUMBERS or _is_number(v)) and v <= operand


_NUMBERS: Final = (int, float)


def _text_comparison(op: Op, operand: str, fold_case: bool) -> Test:
    """Text against fixed text: the explorer's hottest path, so no general dispatch per span."""
    if op is Op.EQ or op is Op.NE:
        equal = op is Op.EQ
        if fold_case:
            want = fold(operand)
            return lambda v: (v.lower() == want) is equal if isinstance(v, str) else (
                v is not MISSING and bool(v == operand) is equal)
        return lambda v: v is not MISSING and bool(v == operand) is equal
    order = _ORDER[op]
    if fold_case:
        want = fold(operand)
        return lambda v: isinstance(v, str) and order(v.lower(), want)
    return lambda v: isinstance(v, str) and order(v, operand)

