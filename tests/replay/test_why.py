"""The cause lives on another node: causal cuts, pairwise findings, distributed invariants."""

from __future__ import annotations

import json

import leaseapp
import pytest

from edgetrace.replay import Replayer
from edgetrace.replay._invariants import parse_invariant
from edgetrace.replay.testing import GridHarness

LOST_RENEWALS = "drop(link=drone-1->base, topic=renew)"


def _run(*faults: str):
    return leaseapp.feed(GridHarness(leaseapp.app, leaseapp.NODES, profile=leaseapp.PROFILE, faults=faults)).run(
        until="5s")


def test_the_exclusion_invariant_passes_sequential_treatments_and_catches_concurrent_ones():
    clean = _run()
    assert [s.node for s in clean.acts("treat")] == ["drone-1", "drone-2"]  # one after the other
    assert clean.violations(leaseapp.EXCLUSION) == []
    assert clean.violations(leaseapp.BETWEEN) == []  # drone-1's release came between
    broken = _run(LOST_RENEWALS)
    (v,) = broken.violations(leaseapp.EXCLUSION)
    assert {v.span, v.other} == {s.ref for s in broken.acts("treat")[:2]}
    assert "are concurrent" in v.message


def test_the_too_strict_form_flags_released_sequential_treatments():
    clean = _run()
    assert clean.violations("never act(treat) after act(treat) on same args.row")  # why `unless … between` exists


def test_the_report_names_both_acts_both_nodes_and_the_lost_message(tmp_path):
    session = _run(LOST_RENEWALS).save(tmp_path / "lost.ets")
    report, _ = Replayer(session, app=leaseapp.app).run(invariants=[parse_invariant(leaseapp.EXCLUSION)])
    (v,) = json.loads(report.to_json())["violations"]
    pair = v["pair"]
    assert pair["relation"].startswith("concurrent")
    assert {pair["first"].split(":")[0], pair["second"].split(":")[0]} == {"drone-1", "drone-2"}
    lost = pair["lost"]
    assert any(s["kind"] == "fault" and "dropped" in str(s["summary"]) for s in lost)
    assert any(s["kind"] == "send" and s["name"] == "renew" and s["node"] == "drone-1" for s in lost)
    # drone-2's side shows the base granting it the row, on another node and another trace
    assert any(s["node"] == "base" and s["kind"] == "send" and s["name"] == "claim:reply" for s in v["why"])
    text = report.render_text()
    assert "both sides:" in text and "what could have ordered them, and was lost:" in text


def test_a_cut_crosses_nodes_and_keeps_what_bears_on_the_finding():
    from edgetrace._why import Why

    run = _run(LOST_RENEWALS)
    second = run.acts("treat")[1]
    cut = Why(run.spans).cut(second)
    assert cut[-1].span.ref == second.ref
    reasons = {c.reason for c in cut}
    assert any("sent it" in r for r in reasons)  # across the link to the base
    assert any("ctx.local" in r for r in reasons)  # the base's lease table: node memory
    everything = Why(run.spans).cut(second, depth=None)
    assert len(everything) == len(run.index.causal_past(second)) + 1  # --why all: the whole past


def test_the_agri_violation_gains_nothing_it_does_not_need():
    from pathlib import Path

    from edgetrace._why import Why
    from edgetrace.replay.faults import FaultPlan

    data = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"
    replayer = Replayer(data)
    report, run = replayer.run(plan=FaultPlan.parse(["latency(op=state.*, link=tractor-*->hub, delay=2s)"]),
                               invariants=list(replayer.app.invariants.values()))
    v = report.violations[0]
    cut = Why(run.spans).cut(v.span)
    assert [c.span.kind.value for c in cut] == ["input", "infer", "state.put", "fault", "recv", "decide", "act"]
    assert {c.span.trace for c in cut} == {v.trace}  # the tractor's earlier frames are not its cause
    assert len(Why(run.spans).cut(v.span, depth=None)) > len(cut)


def test_a_deadline_along_the_causal_chain_catches_the_slow_state_write(tmp_path):
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"
    deadline = parse_invariant("every act(spray) within 1s after input(frame)")
    ok, _ = Replayer(data).run(invariants=[deadline])
    assert ok.violations == []
    from edgetrace.replay.faults import FaultPlan

    slow, _ = Replayer(data).run(plan=FaultPlan.parse(["latency(op=state.*, link=tractor-*->hub, delay=2s)"]),
                                 invariants=[deadline])
    assert slow.violations and "over the 1s allowed" in slow.violations[0].message


@pytest.mark.parametrize(("text", "reached"), [
    ('sometimes recv(state.put:reply) where error ~ "timeout*"', 64),
    ("reachable act(spray)", 64),
])
def test_coverage_is_reported_not_violated(text, reached):
    from pathlib import Path

    from edgetrace.replay.faults import FaultPlan

    data = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"
    inv = parse_invariant(text)
    report, _ = Replayer(data).run(plan=FaultPlan.parse(["latency(op=state.*, link=tractor-*->hub, delay=2s)"]),
                                   invariants=[inv])
    assert report.violations == []
    assert report.coverage == [(inv.name, inv.mode, reached)]
    assert f"reached {reached}×" in report.render_text()


def test_unreachable_is_violated_when_reached():
    run = _run(LOST_RENEWALS)
    assert len(run.violations("unreachable act(treat) at drone-2")) == 2


def test_path_latency_per_chain_shape_needs_no_configuration(capsys):
    from pathlib import Path

    from edgetrace.cli import main

    data = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"
    assert main(["show", str(data), "--paths", "--json"]) == 0
    paths = json.loads(capsys.readouterr().out)["paths"]
    assert [p["chains"] for p in paths] == [41, 23]  # 64 frames of 8 tractors: two shapes (spray or not)
    sprays = paths[1]
    assert sprays["shape"][0] == "input frame@tractor-*" and sprays["shape"][-1] == "act spray@tractor-*"
    assert "state.put events/tractor-*@hub" in sprays["shape"]  # the chain crosses to the hub and back
    lat = sprays["latency_ns"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert sprays["dominant_hop"]["from"] in sprays["shape"]
    assert main(["show", str(data), "--paths"]) == 0
    assert "dominated by" in capsys.readouterr().out


def test_diff_lists_every_divergence_of_a_trace_in_words(tmp_path, capsys):
    from pathlib import Path

    from edgetrace.cli import main

    data = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"
    slow = tmp_path / "slow.ets"
    assert main(["replay", str(data), "--fault", "latency(op=state.*, link=tractor-*->hub, delay=2s)",
                 "--save", str(slow), "--no-default-checks"]) == 0
    capsys.readouterr()
    assert main(["diff", str(data), str(slow), "--trace", "tractor-01/f0002", "--limit", "50"]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("    ")]
    assert len(lines) > 1  # not only the first
    assert "cause: [" not in out and "['" not in out  # words, not Python reprs
    assert any("a different cause: nothing instead of state.put events/tractor-01 on hub" in line for line in lines)


def test_every_distributed_form_on_the_docs_page_parses_and_means_what_it_says():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "invariants.md").read_text()
    (block,) = re.findall(r"```distributed\n(.*?)```", doc, re.S)
    forms = [line.strip() for line in block.splitlines() if line.strip()]
    assert len(forms) == 6
    for text in forms:
        parse_invariant(text)
    clean, broken = _run(), _run(LOST_RENEWALS)
    assert (len(clean.violations(forms[0])), len(broken.violations(forms[0]))) == (0, 1)
    assert clean.violations(forms[1]) == []
