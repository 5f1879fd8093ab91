"""Sessions the explorer tests open: skewed clocks, racing writers, an OTel trace, damage, torn tails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetrace import Manifest, SessionWriter, Span, SpanKind, Status
from edgetrace.agents import App, Context
from edgetrace.agents._grid import GridProfile, LinkProfile

# a fleet that writes one shared key from two tractors while a third reads it
race_app = App("race", state_host="hub")


@race_app.on("tick", nodes="t-*")
async def on_tick(ctx: Context, tick: dict[str, Any]) -> None:
    if ctx.node == "t-2":
        await ctx.state.get("zones/shared", timeout=2.0)
    else:
        await ctx.state.put("zones/shared", {"by": ctx.node, "n": tick["n"]}, timeout=2.0)
    await ctx.decide("go", {"n": tick["n"]})


race_app.policy("go", func=lambda d: {"decision": "go", "fired": []})
RACE_NODES = ["hub", "t-0", "t-1", "t-2"]
RACE_PROFILE = GridProfile("lan", links=(("*", "*", LinkProfile(20_000_000, 5_000_000, 0, 0)),))


def skewed_session(path: Path) -> Path:
    """The toy fleet with t-1's clock 2 s behind (the replayer's skew fault), as recorded."""
    import toyapp

    from edgetrace.replay.testing import GridHarness

    grid = GridHarness(toyapp.app, toyapp.NODES, profile=toyapp.PROFILE, faults=["skew(node=t-1, offset=-2s)"],
                       seed=3)
    for i in range(12):
        grid.input(f"t-{i % 3}", "frame", {"n": i, "weed": i % 3 == 0}, at=i * 0.4)
    return grid.run().save(path)


def race_session(path: Path) -> Path:
    from edgetrace.replay.testing import GridHarness

    grid = GridHarness(race_app, RACE_NODES, profile=RACE_PROFILE, seed=2)
    for i in range(3):
        for node in ("t-0", "t-1", "t-2"):
            grid.input(node, "tick", {"n": i}, at=i * 1.0)
    return grid.run().save(path)


def otel_session(path: Path, children: int = 50) -> Path:
    """One OTel-ingested trace: a 2.1 ms root and `children` sequential children inside it."""
    node = "otel:checkout"
    attrs = {"service.name": "checkout", "edgetrace.untimed": True, "edgetrace.order": "timestamp"}
    spans = [Span(node=node, seq=1, kind=SpanKind.OTEL, name="GET /cart", trace="4bf92f3577b34da6",
                  start=1_000_000, end=3_100_000, attrs=attrs)]
    step = 2_000_000 // children
    for k in range(children):
        start = 1_050_000 + k * step
        spans.append(Span(node=node, seq=k + 2, kind=SpanKind.OTEL, name=f"db.query {k}", trace="4bf92f3577b34da6",
                          parent=f"{node}:1", start=start, end=start + step - 1000, attrs=attrs,
                          status=Status.ERROR if k == 7 else Status.OK, error="deadlock" if k == 7 else ""))
    with SessionWriter(path, Manifest(app="otel", nodes=[node])) as w:
        w.append(spans)
        w.seal()
    return path


def hostile_session(path: Path) -> Path:
    """Names, errors and attributes holding terminal escape sequences."""
    esc = "\x1b[2J\x1b[31mred\x07"
    spans = [
        Span(node="t\x1b[1m-1", seq=1, kind=SpanKind.INPUT, name=f"frame{esc}", trace=f"tr{esc}",
             attrs={"edgetrace.payload": {"caption": f"cap{esc}"}}),
        Span(node="t\x1b[1m-1", seq=2, kind=SpanKind.DECIDE, name="p\rq", trace=f"tr{esc}", parent="t\x1b[1m-1:1",
             attrs={"edgetrace.decision": f"spray{esc}"}, status=Status.ERROR, error=f"bad{esc}\nline"),
    ]
    with SessionWriter(path, Manifest(app="hostile")) as w:
        w.append(spans)
        w.seal()
    return path


def damaged(source: Path, folder: Path) -> dict[str, Path]:
    """Damage a crash cannot leave (issue 14, defect 10): a flipped byte, a zeroed stretch
    with intact frames after it, a start time of 2**64 - 1."""
    data = bytearray(source.read_bytes())
    flip = bytearray(data)
    flip[len(flip) // 2] ^= 0x40
    hole = bytearray(data)
    hole[len(hole) // 2:len(hole) // 2 + 64] = bytes(64)
    out = {"flipped byte": folder / "flip.ets", "zeroed stretch": folder / "hole.ets"}
    out["flipped byte"].write_bytes(bytes(flip))
    out["zeroed stretch"].write_bytes(bytes(hole))
    out["start 2**64-1"] = folder / "huge.ets"
    with SessionWriter(out["start 2**64-1"], Manifest(app="x")) as w:
        w.append([Span(node="a", seq=1, kind=SpanKind.INPUT, name="frame", trace="t1", start=2**64 - 1,
                       end=2**64 - 1)])
        w.seal()
    return out


def torn(source: Path, folder: Path) -> dict[str, Path]:
    """What a crash leaves (issue 14, defect 9): the source's spans in two frames, unsealed,
    the second one ending in zeros (the size was updated, the data blocks were not) or cut short."""
    from edgetrace._session import Session

    spans = Session(source).spans
    whole = folder / "whole.ets"
    with SessionWriter(whole, Manifest(app="toy")) as w:
        w.append(spans[: len(spans) // 2])
        w.append(spans[len(spans) // 2:])
    data = whole.read_bytes()
    out = {"zeroed tail": folder / "zero.ets", "cut short": folder / "cut.ets"}
    out["zeroed tail"].write_bytes(data[:-64] + bytes(64))
    out["cut short"].write_bytes(data[:-40])
    return out
