"""The explorer driven with Pilot: navigation, filters, provenance, diff, live follow, picker."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from edgetrace import Manifest, SessionWriter, SpanKind
from edgetrace.tui._app import ExplorerApp
from edgetrace.tui._detail import DetailScreen
from edgetrace.tui._diff import DiffScreen
from edgetrace.tui._help import HelpScreen
from edgetrace.tui._list_screen import TraceListScreen
from edgetrace.tui._picker import PickerScreen
from edgetrace.tui._trace_view import TraceViewScreen

SIZE = (80, 24)


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async Pilot test on a fresh event loop (no asyncio pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


@sync
async def test_navigation(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, TraceListScreen)
        lst = screen.traces
        assert lst.count == len(app.store.rows) > 5
        await pilot.press("j", "j")
        assert lst.cursor == 2
        await pilot.press("G")
        assert lst.cursor == lst.count - 1
        await pilot.press("g", "k")
        assert lst.cursor == 0
        await pilot.press("s", "s")  # sort by start time, then by trace id
        assert screen.sort_names[screen.sort_at] == "trace"
        await pilot.press("enter")
        view = app.screen
        assert isinstance(view, TraceViewScreen)
        assert view.graph.trace == lst.row_at(0).trace
        await pilot.press("j", "v")
        assert view.chart.mode == "spacetime" and view.chart.selected == 1
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, TraceListScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = str(app.screen.query_one("#help").render())
        for key in ("/", "enter", "escape", "n", "N", "g", "G", "j", "k", "q", "p", "v"):
            assert f"  {key}" in help_text or f",{key}" in help_text, key
        assert "without" in help_text
        await pilot.press("escape")
        assert isinstance(app.screen, TraceListScreen)
        await pilot.press("q")
    assert app.return_code == 0


@sync
async def test_filter_box_and_every_operator(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, TraceListScreen)
        total = screen.traces.count
        await pilot.press("slash", *"kind=act", "enter")
        acts = screen.traces.count
        assert 0 < acts < total
        assert all(r.acts for r in (screen.traces.row_at(i) for i in range(acts)))
        act_ref = next(s.ref for s in app.store.graph(screen.traces.row_at(0).trace).spans
                       if s.kind is SpanKind.ACT)
        counts = {}
        for text in ("node~t-1", "duration>1ms", "spray", f"before({act_ref})", f"after({act_ref})",
                     f"concurrent({act_ref})", "kind=act without after(kind=decide)",
                     "kind=decide without before(kind=act)", "kind=act or kind=log", "not kind=input"):
            screen.apply_filter(text)
            await pilot.pause()
            counts[text] = screen.traces.count
        assert counts[f"before({act_ref})"] == 1 and counts[f"after({act_ref})"] <= 1
        assert counts["kind=act without after(kind=decide)"] == 0
        assert counts["kind=decide without before(kind=act)"] == total - acts
        assert counts["node~t-1"] > 0 and counts["spray"] >= acts
        screen.apply_filter("kind=act and (")
        await pilot.pause()
        message = str(screen.query_one("#message").render())
        assert "filter error" in message and "expected" in message
        assert screen.traces.count == counts["not kind=input"]  # a bad query keeps the list
        await pilot.press("escape")
        assert screen.traces.count == total


@sync
async def test_provenance_jump(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        screen.apply_filter("kind=act")
        await pilot.pause()
        await pilot.press("enter")
        view = app.screen
        assert isinstance(view, TraceViewScreen)
        act = next(i for i, s in enumerate(view.graph.spans) if s.kind is SpanKind.ACT)
        view.chart.select(act)
        assert act in view.chart.matches  # filter matches are highlighted
        await pilot.press("p")
        decide = view.graph.spans[view.chart.selected]
        assert decide.kind is SpanKind.DECIDE
        assert view.graph.happens_before(decide, view.graph.spans[act])
        await pilot.press("p")
        fact = view.graph.spans[view.chart.selected]
        assert fact.kind in (SpanKind.INPUT, SpanKind.INFER, SpanKind.STATE_GET, SpanKind.RECV)
        assert "provenance" in str(view.query_one("#span-info").render())
        # from the detail view too, one key steps back
        view.chart.select(act)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        text = str(app.screen.query_one("#detail").render())
        assert "vector clock" in text and "act spray" in text
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert str(app.screen.query_one("#detail").render()).startswith("decide")


@sync
async def test_detail_decodes_payloads(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        view = app.screen
        decide = next(i for i, s in enumerate(view.graph.spans) if s.kind is SpanKind.DECIDE)
        view.chart.select(decide)
        await pilot.press("enter")
        text = str(app.screen.query_one("#detail").render())
        assert "payloads:" in text and '"weed"' in text  # the rule input, decoded from JSON
        assert "edgetrace.decision" in text and "edgetrace.policy.sha256" in text
        assert "+ changes" not in text  # a small session gets the full clock


def test_detail_says_whose_clock_a_record_merges():
    from edgetrace import Span
    from edgetrace.tui._detail import describe_span
    from edgetrace.tui._graph import TraceGraph

    send = Span(node="a", seq=1, kind=SpanKind.SEND, name="m", trace="t", start=0, end=1)
    recv = Span(node="b", seq=1, kind=SpanKind.RECV, name="m", trace="t", cause="a:1", start=2, end=3,
                vc={"c": 4}, merged="a:1")
    plain = Span(node="b", seq=2, kind=SpanKind.LOG, name="x", trace="t", start=4, end=5, vc={"c": 5})
    graph = TraceGraph("t", [send, recv, plain])

    def text(span: Span, clock: dict[str, int] | None) -> list[str]:
        return describe_span(span, graph, clock, lambda sha: None).splitlines()

    assert "  vector clock  a:1 b:1 c:4   (merges clock of a:1)" in text(recv, {"a": 1, "b": 1, "c": 4})
    assert ("  vector clock  b:1 (merges clock of a:1 + c:4; full clock needs the session index, skipped for "
            "very large sessions)") in text(recv, None)
    # a record without a reference reads as it always has
    assert "  vector clock  a:1 b:2 c:5" in text(plain, {"a": 1, "b": 2, "c": 5})
    assert ("  vector clock  b:2 (+ changes c:5; full clock needs the session index, skipped for very large "
            "sessions)") in text(plain, None)
    assert not any("merges" in line for line in text(plain, None) + text(plain, {"b": 2}))


@sync
async def test_diff_marks_divergences(toy_session: Path, toy_replayed: Path):
    app = ExplorerApp(toy_session, against=toy_replayed, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert app.diff is not None and app.diff.diverged
        assert screen.traces.marks == set(app.diff.diverged)
        await pilot.press("n")  # next flagged trace
        row = screen.traces.current
        assert row.trace in screen.traces.marks or row.errors or row.faults
        await pilot.press("d")
        diff = app.screen
        assert isinstance(diff, DiffScreen)
        rows = diff.query_one("#diff-table").rows
        firsts = [r for r in rows if r.first]
        assert len(firsts) == 1 and firsts[0].state != "same"
        assert "first divergence" in str(diff.query_one("#diff-note").render())
        faults = [s for s in app.diff.b.spans if s.kind is SpanKind.FAULT]
        shown = {r.replayed.ref for t in app.diff.traces for r in app.diff.rows(t) if r.state == "fault"}
        assert shown == {s.ref for s in faults if s.trace}
        before = diff.trace
        await pilot.press("n")
        assert diff.trace != before or len(app.diff.diverged) == 1
        await pilot.press("escape")
        assert isinstance(app.screen, TraceListScreen)


@sync
async def test_live_session_is_followed(tmp_path: Path, toy_session: Path):
    from edgetrace._session import Session

    spans = Session(toy_session).spans
    path = tmp_path / "live.ets"
    writer = SessionWriter(path, Manifest(app="toy"))
    writer.append(spans[:40])
    writer.flush()
    app = ExplorerApp(path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            first = screen.traces.count
            writer.append(spans[40:])
            writer.seal()
            writer.flush()
            for _ in range(40):
                await pilot.pause(0.1)
                if app.store.sealed and screen.traces.count > first:
                    break
            assert screen.traces.count > first
            assert "sealed" in str(screen.query_one("#status").render())
    finally:
        writer.close()


@sync
async def test_picker_lists_sessions(toy_session: Path, tmp_path: Path):
    app = ExplorerApp(search=[toy_session.parent, tmp_path])
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, PickerScreen)
        assert toy_session.resolve() in app.screen.sessions
        index = app.screen.sessions.index(toy_session.resolve())
        for _ in range(index):
            await pilot.press("j")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TraceListScreen)
        assert app.store.path.resolve() == toy_session.resolve()


@sync
async def test_empty_picker_explains(tmp_path: Path):
    app = ExplorerApp(search=[tmp_path])
    async with app.run_test(size=SIZE):
        assert "no sessions" in str(app.screen.query_one("#picker-title").render())


@sync
async def test_large_session_stays_virtual(tmp_path: Path):
    from _synth import synth_spans

    path = tmp_path / "large.ets"
    with SessionWriter(path, Manifest(app="synth")) as w:
        batch = []
        for span in synth_spans(60_000, 200, seed=3):
            batch.append(span)
            if len(batch) == 2000:
                w.append(batch)
                batch = []
        w.append(batch)
        w.seal()
    app = ExplorerApp(path, initial_scan_s=0.01)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        for _ in range(100):
            if app.store.at_end:
                break
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        assert app.store.span_count == 60_000
        assert screen.traces.count == len(app.store.rows) > 10_000
        await pilot.press("G")
        assert screen.traces.cursor == screen.traces.count - 1
        screen.apply_filter("kind=act and node~node-000*")  # above the sync limit: a worker
        for _ in range(100):
            await pilot.pause(0.1)
            if "match" in screen.filter_note:
                break
        assert "match" in screen.filter_note and screen.traces.count > 0


@sync
async def test_picker_looks_in_the_hubs_data_folder(toy_session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """With no SESSION and no folders given, the picker lists what the hub stores by default
    ($EDGETRACE_DATA here, else ~/.local/share/edgetrace: edgetrace._discovery)."""
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    stored = data / "fleet-run.ets"
    shutil.copy(toy_session, stored)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("EDGETRACE_DATA", str(data))
    monkeypatch.chdir(elsewhere)
    app = ExplorerApp()
    async with app.run_test(size=SIZE):
        assert isinstance(app.screen, PickerScreen)
        assert app.screen.sessions == [stored.resolve()]


@sync
async def test_detail_keeps_the_local_clock_next_to_the_common_axis(skewed_session: Path):
    """t-1's clock is 2 s off: the detail gives its own timestamps and the offset applied."""
    app = ExplorerApp(skewed_session, follow=False)
    async with app.run_test(size=(120, 40)) as pilot:
        store = app.store
        row = next(r for r in store.rows if "t-1" in r.nodes)
        app.screen.traces.move_to(row.index)
        await pilot.press("enter")
        view = app.screen
        assert isinstance(view, TraceViewScreen) and view.graph.trace == row.trace
        k = next(i for i, s in enumerate(view.graph.spans) if s.node == "t-1")
        span = view.graph.spans[k]
        view.chart.select(k)
        await pilot.press("enter")
        text = " ".join(str(app.screen.query_one("#detail").render()).split())
        assert f"local clock of t-1: start {span.start} ns, end {span.end} ns" in text
        assert "offset to the common axis +1.9" in text or "offset to the common axis +2" in text
        assert "on the common axis" in text
