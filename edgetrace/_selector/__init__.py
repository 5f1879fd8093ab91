"""The span selector core: how the explorer filter and the invariant language read spans.

Two languages select spans — the explorer's search box (`tui/_query.py`: `kind=act
node~tractor-*`) and the invariant language (`replay/_invariants`: `act(spray) where
args.zone ~ "row-*"`). Each keeps its own grammar; what they say about a value is said here,
once, and compiled at parse time into closures the query or invariant calls per span:

- **Fields** (`field`): a span field (`node`, `kind`, `duration`, …), `state.KEY`, a shorthand
  (`output`, `decision`, `fired`, `args`, `payload` — `edgetrace._attrs.SHORTHANDS`), `attr.KEY`
  or `attrs.KEY`, or any dotted attribute key (`edgetrace.decision`); keys after an attribute
  read inside its value (`output.type`). A value the span lacks is `MISSING`.
- **Operators** (`Op`, `SPELLINGS`): `=` and `==` are one operator, `!=` its negation; `~` is a
  shell glob (`*`, `?`, `[...]`) and `!~` its negation; `<` `<=` `>` `>=`; `in`.
- **Comparisons** (`comparison`, `compare`): one set of rules (see `_compare`), with one switch,
  `fold_case`, that compares text lower-cased. The explorer turns it on (a search box);
  invariants leave it off (exact).
- **Literals** (`number`, `NUMBER`): numbers, and durations through `edgetrace._units`.

What each language adds on top — the explorer's untyped words, its substring convenience for
`~` and its reading of absent values as empty; the invariant language's typed literals, `in`
and pair conditions — is documented in docs/invariants.md and the explorer's `QUERY_HELP`.
"""

from __future__ import annotations

from edgetrace._selector._compare import (
    GLOB_CHARS,
    OP_SYMBOLS,
    ORDERING,
    SPELLINGS,
    Op,
    Test,
    compare,
    comparison,
    fold,
    glob,
    is_glob,
    scan_op,
)
from edgetrace._selector._fields import (
    ATTR_PREFIXES,
    MISSING,
    SPAN_FIELDS,
    TEXT_FIELDS,
    Field,
    Getter,
    Missing,
    field,
)
from edgetrace._selector._literals import KEYWORD_VALUES, NUMBER, number

__all__ = [
    "ATTR_PREFIXES",
    "GLOB_CHARS",
    "KEYWORD_VALUES",
    "MISSING",
    "NUMBER",
    "OP_SYMBOLS",
    "ORDERING",
    "SPAN_FIELDS",
    "SPELLINGS",
    "TEXT_FIELDS",
    "Field",
    "Getter",
    "Missing",
    "Op",
    "Test",
    "compare",
    "comparison",
    "field",
    "fold",
    "glob",
    "is_glob",
    "number",
    "scan_op",
]
