"""The selector core, and the promise built on it: the explorer and invariants agree on what they share."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from edgetrace import Span, SpanKind
from edgetrace import _selector as sel
from edgetrace._units import parse_duration
from edgetrace.replay._invariants import parse_selector
from edgetrace.tui import TraceGraph
from edgetrace.tui._query import parse_query

# --- fields -----------------------------------------------------------------------------------

SPAN = Span(
    node="t-1", seq=7, kind=SpanKind.INFER, name="event_extractor", trace="f1", start=10, end=510,
    error="", attrs={
        "edgetrace.output": {"type": "weed_detected", "confidence": 0.9},
        "edgetrace.decision": "spray",
        "edgetrace.state.key": "zones/row-4",
        "gen_ai.usage.output_tokens": 21,
        "x": {"y": 1},
        "x.y": 2,
    },
)


@pytest.mark.parametrize(("name", "value"), [
    ("node", "t-1"), ("kind", "infer"), ("ref", "t-1:7"), ("seq", 7), ("duration", 500), ("status", "ok"),
    ("output.type", "weed_detected"), ("output.confidence", 0.9), ("decision", "spray"),
    ("state.key", "zones/row-4"),
    ("attr.edgetrace.decision", "spray"), ("attrs.edgetrace.decision", "spray"), ("edgetrace.decision", "spray"),
    ("attrs.gen_ai.usage.output_tokens", 21), (("attrs", "gen_ai.usage.output_tokens"), 21),
    ("edgetrace.output.type", "weed_detected"),  # the longest attribute key, then inside its value
    ("x.y", 2),  # a dotted key the span has beats reading inside `x`
    ("attrs.x", {"y": 1}),
])
def test_names_read_the_same_value_in_every_spelling(name, value):
    found = sel.field(name)
    assert found.known and found.get(SPAN) == value


def test_unknown_and_absent_names():
    assert not sel.field("bogus").known and sel.field("bogus").get(SPAN) is sel.MISSING
    assert sel.field("output.nope").get(SPAN) is sel.MISSING  # known shape, absent value
    assert sel.field("args.zone").get(SPAN) is sel.MISSING
    assert not sel.field("state").known


# --- operators, globs, literals -------------------------------------------------------------------


def test_one_spelling_of_each_operator():
    assert sel.SPELLINGS["="] is sel.SPELLINGS["=="] is sel.Op.EQ
    assert sel.scan_op("a>=b", 1) == ">=" and sel.scan_op("a==b", 1) == "==" and sel.scan_op("a!b", 1) is None


@given(st.text("ab*?[]!-", max_size=6), st.text("abAB[]!-*?", max_size=8))
def test_globs_are_fnmatch(pattern, text):
    assert sel.glob(pattern)(text) == fnmatch.fnmatchcase(text, pattern)
    assert sel.glob(pattern, fold_case=True)(text) == fnmatch.fnmatchcase(text.lower(), pattern.lower())


def test_literals_and_durations():
    assert sel.number("3") == 3 and isinstance(sel.number("3"), int) and sel.number("-0.5") == -0.5
    assert sel.number("99999999999999999999") == 99999999999999999999  # exact, not through float
    for text in ("150ms", "2s", "500us", "5µs", "1.5m", "2h", "7ns"):
        assert sel.number(text) == parse_duration(text)
    with pytest.raises(ValueError):
        sel.number("fast")


VALUES = st.one_of(st.text("aAb5 ", max_size=3), st.integers(-3, 3), st.floats(-3, 3), st.booleans(), st.none(),
                   st.lists(st.integers(0, 2), max_size=2), st.just(sel.MISSING))


@given(st.sampled_from(list(sel.Op)), VALUES, VALUES, st.booleans())
def test_compiled_comparison_is_compare(op, value, operand, fold):
    assume(operand is not sel.MISSING)
    assert sel.comparison(op, operand, fold_case=fold)(value) == sel.compare(op, value, operand, fold_case=fold)


def test_missing_never_compares_true():
    for op in sel.Op:
        for operand in ("x", 1, None, [1]):
            assert not sel.compare(op, sel.MISSING, operand) and not sel.comparison(op, operand)(sel.MISSING)


# --- the two languages agree on what they share -------------------------------------------------

TEXT = st.text("abcXYZÄß019-_. *?[]", max_size=6)
NUMBER = st.one_of(st.integers(-50, 50), st.integers(-500, 500).map(lambda i: i / 10))
SCALAR = st.one_of(TEXT, NUMBER, st.floats(allow_nan=False, allow_infinity=False))


@st.composite
def spans(draw: st.DrawFn) -> Span:
    start = draw(st.integers(0, 10**9))
    return Span(
        node=draw(TEXT), seq=draw(st.integers(0, 99)), kind=draw(st.sampled_from(list(SpanKind))),
        name=draw(TEXT), trace=draw(TEXT), error=draw(TEXT), start=start, end=start + draw(st.integers(0, 10**9)),
        attrs={
            "edgetrace.decision": draw(SCALAR),
            "edgetrace.output": {"type": draw(SCALAR), "confidence": draw(SCALAR)},
            "x": draw(SCALAR),
        },
    )


#: Names both languages read, in both spellings where there are two.
SHARED_NAMES = ["node", "name", "trace", "error", "kind", "seq", "duration", "decision", "output.type",
                "output.confidence", "attr.x", "attrs.x", "edgetrace.decision", "attr.edgetrace.output.type"]


def _fold(value: object) -> object:
    if isinstance(value, str):
        return sel.fold(value)
    if isinstance(value, dict):
        return {k: _fold(v) for k, v in value.items()}
    return value


def _folded(span: Span) -> Span:
    return Span(node=sel.fold(span.node), seq=span.seq, kind=span.kind, name=sel.fold(span.name),
                trace=sel.fold(span.trace), error=sel.fold(span.error), start=span.start, end=span.end,
                attrs={k: _fold(v) for k, v in span.attrs.items()})


def _explorer(text: str, span: Span) -> bool:
    return parse_query(text).matches_span(span, TraceGraph(span.trace, [span]))


def _invariant(condition: str, span: Span) -> bool:
    return parse_selector(f"{span.kind.value} where {condition}").matches(span)


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@given(spans(), st.sampled_from(SHARED_NAMES), st.sampled_from(["=", "==", "!=", "<", "<=", ">", ">=", "~", "!~"]),
       st.data())
def test_explorer_and_invariant_agree_on_a_comparison(span, name, op, data):
    """`NAME OP VALUE` says the same in both languages, modulo the explorer's case folding.

    The shared part, as docs/invariants.md draws it: a value compared with a literal of its own
    kind (text with text, a number with a number), globs on text. Outside it the explorer's
    untyped words differ on purpose (`attr.x=5` finds the text "5"; `x>10` orders numbers only).
    """
    value = sel.field(name).get(span)
    glob = op in ("~", "!~")
    if name == "duration":
        ns = data.draw(st.integers(0, 2 * 10**9))
        literal = data.draw(st.sampled_from([str(ns), f"{ns // 1000}us", f"{ns // 10**6}ms"]))
        explorer, invariant = f"duration{op}{literal}", f"duration {op} {literal}"
        assume(not glob)
    elif isinstance(value, str):
        text = data.draw(TEXT)
        assume(glob or op in ("=", "==", "!=") or not _reads_as_number(text))
        pattern = text if not glob or sel.is_glob(text) else f"*{text}*"  # the explorer's substring rule
        explorer, invariant = f'{name}{op}"{text}"', f'{name} {op} "{sel.fold(pattern)}"'
    else:
        assume(not glob)
        number = data.draw(NUMBER)
        explorer, invariant = f"{name}{op}{number}", f"{name} {op} {number}"
    assert _explorer(explorer, span) == _invariant(invariant, _folded(span)), (explorer, invariant, value)


@given(spans(), st.sampled_from(SHARED_NAMES), st.one_of(TEXT, NUMBER.map(str)))
def test_equals_is_spelled_two_ways_in_both_languages(span, name, literal):
    if name in ("seq", "duration"):
        assume(_reads_as_number(literal) and not literal.startswith("-") and "." not in literal)
    assert _explorer(f'{name}="{literal}"', span) == _explorer(f'{name}=="{literal}"', span)
    quoted = f'"{literal}"' if not _reads_as_number(literal) or name not in ("seq", "duration") else literal
    assert _invariant(f"{name} = {quoted}", span) == _invariant(f"{name} == {quoted}", span)
    assert _invariant(f"{name} != {quoted}", span) == (
        sel.field(name).get(span) is not sel.MISSING and not _invariant(f"{name} = {quoted}", span))


def test_the_documented_differences():
    span = Span(node="t-1", seq=1, kind=SpanKind.DECIDE, name="Spray", attrs={"x": "5", "n": 12})
    # case: the explorer folds, invariants are exact
    assert _explorer("name=spray", span) and not _invariant('name == "spray"', span)
    # globs: the explorer's plain pattern is a substring; an invariant's matches the whole value
    assert _explorer("name~pra", span) and not _invariant('name ~ "pra"', span)
    assert _invariant('name ~ "*pra*"', span) and _explorer("name~*pra*", span)
    # values: the explorer's word takes the value's kind; invariants' literals have their own
    assert _explorer("attr.x=5", span) and not _invariant("attrs.x == 5", span) and _invariant('attrs.x == "5"', span)
    assert not _explorer("attr.x>1", span)  # a word that reads as a number orders numbers only
    assert _explorer("attr.n>5", span) and _invariant("attrs.n > 5", span)
    # absent: the explorer reads empty, an invariant's comparison is false
    assert _explorer("attr.zz!=spray", span) and not _invariant('attrs.zz != "spray"', span)
    assert _explorer("attr.zz=none", span) and not _invariant("attrs.zz == null", span)
