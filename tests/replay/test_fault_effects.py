"""Every fault kind, shown by its effect on a small grid (not just by parsing).

The grid: node `a` forwards each `ping` to `b` over a link with a fixed 10 ms latency, so any
change in what `b` receives, and when, is the fault's doing. Semantic faults run on the agri
scenario's real ONNX extractor and on a real policy.
"""

from __future__ import annotations

from typing import Any

import pytest

from edgetrace import SpanKind, Status
from edgetrace.agents import App, CallTimeout, Context, StateUnavailable
from edgetrace.replay.testing import GridHarness, GridResult
from edgetrace.scenarios.agri.runner import ExtractorRunner
from edgetrace.scenarios.agri.scenario import MODEL

app = App("fault-effects", state_host="hub")
app.model("extractor", MODEL, runner=ExtractorRunner)
app.policy("gate", func=lambda d: {"decision": "go" if d["ok"] else "stop"})
app.initial_state = {"k": 1}


@app.on("ping", nodes="a")
async def on_ping(ctx: Context, p: dict[str, Any]) -> None:
    await ctx.send("b", "msg", {"n": p["n"], "pad": "x" * p.get("size", 0)})


@app.on("msg", nodes="b")
async def on_msg(ctx: Context, m: dict[str, Any]) -> None:
    ctx.log("got", n=m["n"])


@app.on("frame", nodes="a")
async def on_frame(ctx: Context, f: dict[str, Any]) -> None:
    event = await ctx.infer("extractor", f["caption"])
    try:
        await ctx.state.get("k", timeout=1.0)
        ok = event is not None
    except (CallTimeout, StateUnavailable):
        ok = False
    await ctx.decide("gate", {"ok": ok}, timeout=0.5)


FIXED_10MS = {"links": [{"from": "*", "to": "*", "latency": "10ms"}]}
S = 1_000_000_000


def pings(*faults: str, count: int = 10, every: float = 0.5, size: int = 0, seed: int = 1) -> GridResult:
    grid = GridHarness(app, ["a", "b", "hub"], profile=FIXED_10MS, seed=seed, faults=faults)
    for i in range(count):
        grid.input("a", "ping", {"n": i, "size": size}, at=i * every)
    return grid.run(until="120s")


def received(run: GridResult) -> list[tuple[int, int]]:
    """(n, true arrival ns) for every message b got, in arrival order."""
    sends = {s.ref: s for s in run.spans if s.kind is SpanKind.SEND}
    got = []
    for s in run.spans:
        if s.kind is SpanKind.RECV and s.node == "b":
            n = int(s.trace.removeprefix("ping-")) - 1  # payload previews of big messages are cut
            got.append((n, s.start, sends[s.cause].start))
    return [(n, start - sent) for n, start, sent in got]


def faults_of(run: GridResult) -> list[str]:
    return [s.attrs.get("edgetrace.fault", "") for s in run.spans if s.kind is SpanKind.FAULT]


def test_baseline_every_message_takes_10ms():
    got = received(pings())
    assert [n for n, _ in got] == list(range(10))
    assert {d for _, d in got} == {10_000_000}


def test_latency_adds_its_delay_only_where_scoped():
    got = received(pings("latency(link=a->b, delay=2s, at=2s)"))
    assert [d for n, d in got if n < 4] == [10_000_000] * 4
    assert [d for n, d in got if n >= 4] == [2_010_000_000] * 6
    dist = received(pings("latency(delay=uniform(100ms,300ms))"))
    assert all(110_000_000 <= d <= 310_000_000 for _, d in dist) and len({d for _, d in dist}) > 1


def test_jitter_spreads_delays_within_its_amount():
    delays = [d for _, d in received(pings("jitter(amount=5ms)", count=30, every=0.1))]
    assert min(delays) >= 5_000_000 and max(delays) <= 15_000_000 and len(set(delays)) > 3


def test_drop_loses_messages_with_its_probability_and_says_so():
    assert received(pings("drop(link=a->b)")) == []
    some = pings("drop(link=a->b, p=0.5)", count=40, every=0.1)
    n = len(received(some))
    assert 8 < n < 32
    assert sum("dropped" in s.attrs.get("edgetrace.fault", "") or s.name == "network"
               for s in some.spans if s.kind is SpanKind.FAULT) == 40 - n


def test_duplicate_delivers_twice():
    got = received(pings("duplicate(copies=1, gap=5ms)", count=3))
    assert [n for n, _ in got] == [0, 0, 1, 1, 2, 2]
    assert [d for _, d in got][:2] == [10_000_000, 15_000_000]


def test_reorder_lets_later_messages_overtake():
    order = [n for n, _ in received(pings("reorder(window=1s)", count=20, every=0.05))]
    assert sorted(order) == list(range(20)) and order != list(range(20))


def test_partition_delays_delivery_until_heal():
    got = dict(received(pings("partition(nodes=b, at=1s, for=2s)")))
    # sent at 1.0, 1.5, 2.0, 2.5 s: held until the partition heals at 3 s, then 10 ms
    assert got[2] == 3 * S - 1 * S + 10_000_000
    assert got[5] == 3 * S - int(2.5 * S) + 10_000_000
    assert got[1] == got[6] == 10_000_000
    forever = received(pings("partition(nodes=b, at=1s)"))
    assert [n for n, _ in forever] == [0, 1]


def test_one_way_partition_cuts_one_direction():
    assert received(pings("partition(link=a->b, oneway=true)")) == []
    assert len(received(pings("partition(link=b->a, oneway=true)"))) == 10


def test_bandwidth_makes_big_messages_slow():
    small = received(pings("bandwidth(rate=64kbit)", count=2, size=0))
    big = received(pings("bandwidth(rate=64kbit)", count=2, size=8000))
    assert big[0][1] - small[0][1] == pytest.approx(8000 * 8 / 64_000 * S, rel=0.02)


def test_skew_moves_local_timestamps_not_causal_order():
    plain, skewed = pings(), pings("skew(node=b, offset=-1.5s)")
    shift = [s2.start - s1.start for s1, s2 in zip(plain.spans, skewed.spans, strict=True) if s1.node == "b"]
    assert set(shift) == {-int(1.5 * S)}
    assert [s.ref for s in plain.spans] == [s.ref for s in skewed.spans]
    recv = skewed.find("recv at b")[0]
    skewed.assert_happens_before(skewed.history.get(recv.cause), recv)  # before, though its clock reads earlier
    assert recv.start < skewed.history.get(recv.cause).start


def test_drift_grows_with_time():
    plain, drifting = pings(), pings("drift(node=b, ppm=1000)")
    b0 = [s.start for s in plain.spans if s.node == "b"]
    b1 = [s.start for s in drifting.spans if s.node == "b"]
    gaps = [y - x for x, y in zip(b0, b1, strict=True)]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0] and gaps[-1] == pytest.approx(b0[-1] / 1000, rel=0.01)


def test_crash_loses_what_arrives_while_down_and_restart_resumes():
    run = pings("crash(node=b, at=1.2s, restart=3.2s)")
    assert [n for n, _ in received(run)] == [0, 1, 2, 7, 8, 9]
    assert [f for f in faults_of(run) if f.startswith(("crash", "restart"))] == ["crash(node=b)", "restart(node=b)"]


def test_pause_holds_messages_until_resume():
    got = dict(received(pings("pause(node=b, at=1s, for=2s)")))
    assert [n for n in got] == list(range(10))
    assert got[2] == 3 * S - 1 * S and got[1] == got[7] == 10_000_000


def frames(*faults: str, count: int = 3) -> GridResult:
    grid = GridHarness(app, ["a", "b", "hub"], profile=FIXED_10MS, seed=1, faults=faults)
    for i in range(count):
        grid.input("a", "frame", {"caption": "broadleaf weeds between rows 12 and 13"}, at=i * 2.0)
    return grid.run(until="60s")


def test_model_faults_error_empty_truncated_slow():
    ok = frames()
    infer = ok.find("infer")
    assert all(s.status is Status.OK and s.attrs["edgetrace.output"]["type"] == "weed_detected" for s in infer)
    assert [s.attrs["edgetrace.decision"] for s in ok.find("decide")] == ["go"] * 3

    err = frames("model(name=extractor, fault=error)")
    assert all("injected fault" in s.error for s in err.find("infer"))
    assert err.find("decide") == []  # the handler raised: nothing was decided

    empty = frames("model(name=extractor, fault=empty_output)")
    assert all(s.attrs["edgetrace.output"] is None for s in empty.find("infer"))
    assert [s.attrs["edgetrace.decision"] for s in empty.find("decide")] == ["stop"] * 3

    cut = frames("model(name=extractor, fault=truncated_output, tokens=3)")
    assert all(s.failed for s in cut.find("infer"))

    slow = frames("model(name=extractor, fault=slow, delay=300ms)")
    assert [s.duration for s in slow.find("infer")] == [300_000_000] * 3


def test_rule_timeout_and_state_unavailable():
    timed = frames("rule_timeout(policy=gate)")
    assert all(s.attrs["edgetrace.timed_out"] and "timed out after 0.5s" in s.error for s in timed.find("decide"))
    down = frames("state_unavailable(op=state.get, key=k, at=1s)")
    assert [s.attrs["edgetrace.decision"] for s in down.find("decide")] == ["go", "stop", "stop"]
    assert any("state_unavailable" in f for f in faults_of(down)) or any(
        "unavailable" in s.error for s in down.spans)


def test_faults_are_drawn_from_the_seed():
    a = received(pings("drop(p=0.5)", count=30, every=0.1, seed=11))
    b = received(pings("drop(p=0.5)", count=30, every=0.1, seed=11))
    c = received(pings("drop(p=0.5)", count=30, every=0.1, seed=12))
    assert a == b and a != c
