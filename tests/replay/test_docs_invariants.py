"""docs/invariants.md: every expression parses and the declared examples find what they say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgetrace import InvariantError
from edgetrace.agents import App, CallTimeout, StateUnavailable
from edgetrace.replay._invariants import parse_invariant, parse_selector
from edgetrace.replay.testing import GridHarness

DOC = (Path(__file__).resolve().parents[2] / "docs" / "invariants.md").read_text()


def _lines(lang: str) -> list[str]:
    return [x.strip() for b in re.findall(rf"```{lang}\n(.*?)```", DOC, re.S) for x in b.splitlines() if x.strip()]


def test_expressions_and_selectors_parse():
    assert len(_lines("invariant")) == 3 and len(_lines("selector")) == 10
    for text in _lines("invariant"):
        parse_invariant(text)
    for text in _lines("selector"):
        parse_selector(text)


def test_documented_error_is_the_real_one():
    line = next(x for x in DOC.splitlines() if x.startswith("edgetrace: error: invariant"))
    with pytest.raises(InvariantError) as err:
        parse_invariant("every act(spray) before infer")
    assert line == f"edgetrace: error: {err.value}"


def test_declared_examples_find_their_violations():
    (code,) = re.findall(r"```python\n(.*?)```", DOC, re.S)
    app = App("doc", state_host="hub")
    app.policy("p", func=lambda d: {"decision": "spray" if d["weed"] or d["timeout"] else "hold"})

    @app.on("frame", nodes="t-*")
    async def on_frame(ctx, frame):
        timeout = False
        try:
            await ctx.state.get("z", timeout=1.0)
        except (CallTimeout, StateUnavailable):
            timeout = True
        d = await ctx.decide("p", {"weed": frame["weed"], "timeout": timeout})
        if d.value == "spray":
            await ctx.act("spray", zone=frame["zone"])
            if frame["zone"] == "row-4":
                await ctx.act("spray", zone=frame["zone"])

    exec(compile(code, "docs/invariants.md", "exec"), {"app": app})
    assert sorted(app.invariants) == ["no-spray-in-buffer-strips", "no-spray-without-weed", "one-spray-per-frame"]
    grid = GridHarness(app, ["hub", "t-1"], profile={"links": [{"latency": "10ms"}]})
    grid.input("t-1", "frame", {"weed": True, "zone": "row-4"}, at=0)
    grid.input("t-1", "frame", {"weed": True, "zone": "row-9"}, at=1)
    run = grid.run()
    found = {v.invariant for v in run.violations()}
    # no infer step at all in this toy: every spray breaks the first; row-4 breaks the other two
    assert found == {"no-spray-without-weed", "no-spray-in-buffer-strips", "one-spray-per-frame"}
    assert {v.trace for v in run.violations("one-spray-per-frame")} == {"frame-0001"}


def test_value_in_field_matches_rules_fired():
    from edgetrace import Span, SpanKind

    sel = parse_selector('decide where decision == "spray" and "fallback_scheduled_pass" in fired')
    fired = Span(node="t", seq=1, kind=SpanKind.DECIDE, name="p",
                 attrs={"edgetrace.decision": "spray", "edgetrace.rules_fired": ["fallback_scheduled_pass"]})
    other = Span(node="t", seq=2, kind=SpanKind.DECIDE, name="p",
                 attrs={"edgetrace.decision": "spray", "edgetrace.rules_fired": ["weed_confident"]})
    assert sel.matches(fired) and not sel.matches(other)
    with pytest.raises(InvariantError, match="expected 'in' after the value"):
        parse_selector('decide where "x" == decision')


def test_spellings_shared_with_the_explorer():
    """The "Shared with the explorer's filter" section: one spelling, the same steps selected."""
    from edgetrace import Span, SpanKind
    from edgetrace.tui import TraceGraph
    from edgetrace.tui._query import parse_query

    spans = [
        Span(node="t", seq=1, kind=SpanKind.DECIDE, name="p", trace="f", attrs={"edgetrace.decision": "spray"}),
        Span(node="t", seq=2, kind=SpanKind.DECIDE, name="p", trace="f", attrs={"edgetrace.decision": "hold"}),
        Span(node="t", seq=3, kind=SpanKind.INFER, name="m", trace="f", error="state timeout after 1s",
             attrs={"edgetrace.output": {"type": "weed_detected"}, "gen_ai.usage.output_tokens": 21}),
    ]
    graph = TraceGraph("f", spans)

    def invariant(text: str) -> list[str]:
        return [s.ref for s in spans if parse_selector(text).matches(s)]

    def explorer(text: str) -> list[str]:
        return [s.ref for s in parse_query(text).matching(graph)]

    assert invariant('decide where decision == "spray"') == explorer("kind=decide decision=spray") == ["t:1"]
    assert invariant('decide where decision = "spray"') == invariant('decide where decision == "spray"')
    assert invariant('infer where error !~ "*timeout*"') == [] and invariant('infer where error ~ "*timeout*"') == ["t:3"]
    assert invariant("infer where attrs.gen_ai.usage.output_tokens > 20") == ["t:3"]
    assert invariant('infer where attrs."gen_ai.usage.output_tokens" > 20') == ["t:3"]
    assert invariant('infer where edgetrace.output.type == "weed_detected"') == ["t:3"]
    assert invariant('decide where attrs.zz != "x"') == [] and invariant("decide where ref == \"t:2\"") == ["t:2"]
