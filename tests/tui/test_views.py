"""The explorer's views and keys, driven with Pilot: tree, list finders, fleet, causal view."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from edgetrace import CorruptSessionError, SpanKind
from edgetrace.tui._app import ExplorerApp
from edgetrace.tui._causal_view import CausalViewScreen
from edgetrace.tui._detail import DetailScreen
from edgetrace.tui._fleet_view import FleetScreen, FleetTable
from edgetrace.tui._help import HelpScreen
from edgetrace.tui._list_screen import TraceListScreen
from edgetrace.tui._picker import PickerScreen
from edgetrace.tui._span_chart import LEGEND, SpanChart
from edgetrace.tui._trace_list import ROW_STYLES, row_label
from edgetrace.tui._trace_view import TraceViewScreen

SIZE = (80, 24)


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def _text(strip: Any) -> str:
    return "".join(seg.text for seg in strip)


def _lines(widget: Any) -> list[str]:
    return [_text(widget.render_line(y)) for y in range(widget.size.height)]


# --- the trace view ---------------------------------------------------------------------------


@sync
async def test_tree_folds_and_unfolds(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        view = app.screen
        assert isinstance(view, TraceViewScreen)
        chart = view.chart
        rows = len(chart.span_rows)
        assert rows == len(view.graph.spans)
        root = chart.span_rows[0]
        assert view.graph.parent_of[root] == -1 and chart.span_tree.has_children(root)
        # a served state step sits under the request that caused it, on the other node
        for i, s in enumerate(view.graph.spans):
            if s.node == "hub" and s.cause:
                assert view.graph.spans[view.graph.parent_of[i]].ref == s.cause
        await pilot.press("space")
        assert chart.span_rows == [root]
        await pilot.press("right")
        assert len(chart.span_rows) == rows
        await pilot.press("minus")
        assert len(chart.span_rows) == 1
        await pilot.press("plus")
        assert len(chart.span_rows) == rows
        await pilot.press("G", "left")  # a leaf: left goes to its parent
        assert chart.selected == view.graph.parent_of[chart.span_rows[-1]]
        await pilot.press("down", "down", "minus")  # folding all keeps a visible selection
        assert chart.selected in chart.span_rows


@sync
async def test_errors_red_in_list_and_waterfall_and_every_mark_in_the_legend(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        lst = app.screen.traces
        k = next(i for i in range(lst.count) if lst.row_at(i).errors)
        lst.move_to(k + 1 if k + 1 < lst.count else 0)
        strip = lst.render_line(k - int(lst.scroll_offset.y))
        assert _text(strip).startswith("E") and strip._segments[0].style == ROW_STYLES["error"]
        lst.move_to(k)
        await pilot.press("enter")
        view = app.screen
        chart = view.chart
        bad = next(i for i, s in enumerate(view.graph.spans) if s.failed)
        chart.select(0)
        await pilot.pause()
        line = chart._waterfall(bad, "", 80)
        assert any(seg.text == "✗" for seg in line)
        assert any("▒" in seg.text or "█" in seg.text for seg in line if seg.style.color and
                   seg.style.color.name == "red")
        info = str(view.query_one("#span-info").render())
        assert LEGEND["waterfall"] in " ".join(info.split("\n")[1:]).replace("\n", " ") or "critical" in info
        for mark in ("*", "█", "▒", "✗", "⚡", "↦", "▸"):
            assert mark in LEGEND["waterfall"], mark
        for mark in ("I", "M", "D", "S", "R", "g/p", "A", "◀", "▶", "*"):
            assert mark in LEGEND["spacetime"], mark
        crit = [seg for seg in chart._waterfall(view.graph.critical[-1], "", 80) if seg.text == "*"]
        assert crit and crit[0].style.color and crit[0].style.color.name == "yellow"  # as the legend says


@sync
async def test_roots_are_named_by_their_input(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE):
        store = app.store
        labels = {row_label(store, r) for r in store.rows}
        assert len(labels) == len(store.rows)  # one per trace: the list can be told apart by eye
        assert "frame n=0 weed=True" in labels


@sync
async def test_follow_provenance_into_another_trace_and_back(race_session: Path):
    app = ExplorerApp(race_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        store = app.store
        served = next(s for r in store.rows for s in store.graph(r.trace).spans
                      if s.node == "hub" and s.kind is SpanKind.STATE_GET and s.cause)
        trace = served.trace
        lst = app.screen.traces
        lst.move_to(next(i for i in range(lst.count) if lst.row_at(i).trace == trace))
        await pilot.press("enter")
        view = app.screen
        view.chart.select(view.graph.index_of(served.ref))
        await pilot.press("p")
        info = str(view.query_one("#span-info").render())
        assert "read the value" in info and "m opens it" in info
        await pilot.press("m")
        other = app.screen
        assert isinstance(other, TraceViewScreen) and other.graph.trace != trace
        written = other.graph.spans[other.chart.selected]
        assert written.node == "hub" and written.kind is SpanKind.STATE_PUT and written.name == served.name
        await pilot.press("escape")
        assert app.screen is view  # and back


@sync
async def test_message_key_goes_to_the_other_end(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        view = app.screen
        g = view.graph
        recv = next(i for i, s in enumerate(g.spans) if s.kind is SpanKind.RECV and s.cause)
        view.chart.select(recv)
        await pilot.press("m")
        assert g.spans[view.chart.selected].ref == g.spans[recv].cause
        await pilot.press("m")  # the served step: to the reply's receive
        assert g.spans[view.chart.selected].cause == g.spans[recv].cause or view.chart.selected == recv


# --- finding traces ---------------------------------------------------------------------------


@sync
async def test_start_column_time_range_and_chart(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert "start" in str(screen.query_one("#list-header").render())
        total = screen.traces.count
        t0 = app.store.t0
        await pilot.press("t", *"..1.5s", "enter")
        expected = [r.index for r in app.store.rows if r.start - t0 <= 1_500_000_000]
        assert [screen.traces.row_at(i).index for i in range(screen.traces.count)] == expected
        assert "started" in str(screen.query_one("#status").render())
        await pilot.press("escape")
        assert screen.traces.count == total
        await pilot.press("t", *"later..", "enter")  # a bad range says why and keeps the box open
        assert "expected a time" in str(screen.query_one("#message").render())
        await pilot.press("escape")
        await pilot.press("h")
        chart = screen.chart
        assert chart.display and chart.has_focus and int(chart._grid.sum()) == total
        await pilot.press("space", "right", "right", "right", "up", "up")
        inside = chart.count_in_box()
        await pilot.press("enter")
        assert screen.traces.count == inside and not screen.ranges.empty
        await pilot.press("h")
        assert not chart.display


@sync
async def test_completion_and_the_draft_kept_after_an_error(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("slash", *"kind=ac")
        await pilot.pause(0.2)
        await pilot.press("tab")
        box = screen.query_one("#filter")
        assert box.value == "kind=act"
        await pilot.press(*" node=t")
        await pilot.pause(0.2)
        hint = str(screen.query_one("#hint").render())
        assert "t-0" in hint and "t-1" in hint
        await pilot.press("tab")
        assert box.value.startswith("kind=act node=t-")
        await pilot.press("ctrl+u", *"decis")
        await pilot.pause(0.2)
        await pilot.press("tab", *"=")
        await pilot.pause(0.2)
        assert "spray" in str(screen.query_one("#hint").render())
        await pilot.press("escape", "slash", "ctrl+u", *"kind=act and (", "enter")
        assert "filter error" in str(screen.query_one("#message").render())
        await pilot.press("slash")
        assert box.value == "kind=act and ("  # what was typed, to fix rather than retype


# --- fleet ------------------------------------------------------------------------------------


@sync
async def test_fleet_view_filters_by_node_and_link(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        fleet = app.screen
        assert isinstance(fleet, FleetScreen)
        data = fleet.data
        assert {n.node for n in data.nodes} == {"hub", "t-0", "t-1", "t-2"}
        assert data.nodes[0].node == data.reference == "hub"
        assert sum(n.timeouts for n in data.nodes) == sum(1 for r in app.store.rows if r.errors)
        link = next(ls for ls in data.links if ls.src == "t-0" and ls.dst == "hub")
        assert link.messages > 0 and 0 < link.p50 <= link.p90 <= link.p99 and link.rtt_p50
        assert sum(ls.timeouts for ls in data.links) + data.unknown_timeouts == sum(n.timeouts for n in data.nodes)
        offsets = app.store.clock.offsets  # per node and per link: the estimated clock offsets
        assert all(n.offset for n in data.nodes if n.node in offsets)
        assert all(ls.clock_delta == offsets.get(ls.src, 0) - offsets.get(ls.dst, 0) for ls in data.links)
        await pilot.press("j", "enter")  # the second node
        lst = app.screen
        assert isinstance(lst, TraceListScreen) and lst.filter_query.text == f"node={data.nodes[1].node}"
        assert all(data.nodes[1].node in lst.traces.row_at(i).nodes for i in range(lst.traces.count))
        await pilot.press("f")
        table = app.screen.query_one(FleetTable)
        table.cursor = next(k for k, (kind, d) in enumerate(table.rows)
                            if kind == "link" and (d.src, d.dst) == ("t-0", "hub"))  # type: ignore[union-attr]
        await pilot.press("enter")
        assert app.screen.filter_query.text == "from=t-0 node=hub"
        assert app.screen.traces.count == len({s.trace for r in app.store.rows for s in app.store.graph(r.trace).spans
                                               if s.node == "t-0"} & {r.trace for r in app.store.rows})


# --- the causal view --------------------------------------------------------------------------


@sync
async def test_causal_view_around_a_span_across_traces(toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.traces.move_to(4)
        await pilot.press("x")
        view = app.screen
        assert isinstance(view, CausalViewScreen)
        rows = view.chart.rows
        traces = {app.store.trace_at(int(app.store.table.spans.trace[i])) for i in view.spans.tolist()}
        assert len(traces) > 1 and len(view.chart.lanes) == 4
        rel = {str(r["rel"]) for r in rows}
        assert {"focus", "future"} <= rel
        focus_trace = app.store.row(4).trace
        # another trace's steps in the focus's causal past or future: causality crosses traces
        assert any(r["rel"] in ("past", "future") and "[" in str(r["label"]) for r in rows), focus_trace
        from edgetrace.tui._causality import counterparts

        state_put = next(k for k, i in enumerate(view.spans.tolist())
                         if app.store.table.spans.kind[i] == 6 and app.store.table.spans.cause_node[i] == 0
                         and counterparts(app.store, i)[1])
        view.chart.move_to(state_put)
        before = view.focus_span
        await pilot.press("m")  # to the hub's served step (shown, or the view re-centres)
        at = int(view.spans[view.chart.cursor])
        assert app.store.table.nodes.text[int(app.store.table.spans.node[at])] == "hub"
        await pilot.press("c")
        assert view.focus_span == at and view.history
        await pilot.press("backspace")
        assert view.focus_span == before
        await pilot.press("minus")
        narrow = len(view.spans)
        await pilot.press("plus", "plus")
        assert len(view.spans) >= narrow
        await pilot.press("enter")
        assert isinstance(app.screen, TraceViewScreen)


@sync
async def test_causal_view_of_a_set_of_refs(toy_session: Path):
    refs = ["t-0:5", "hub:1", "t-1:3"]
    app = ExplorerApp(toy_session, follow=False, focus=refs)
    async with app.run_test(size=SIZE):
        view = app.screen
        assert isinstance(view, CausalViewScreen) and view.given == refs
        shown = {f"{app.store.table.nodes.text[int(app.store.table.spans.node[i])]}:{int(app.store.table.spans.seq[i])}"
                 for i in view.spans.tolist()}
        assert shown == set(refs)
        assert "cut" in str(view.query_one("#causal-title").render())
        rels = {r["label"].split()[2] if False else r["rel"] for r in view.chart.rows}
        assert "focus" in rels


@sync
async def test_the_why_cut_of_a_finding_opens_as_a_view(race_session: Path):
    """explore --why REF: the cut edgetrace._why gives the finding (what a replay report lists
    under it), as a causal view of exactly those spans with the finding as the focus."""
    from edgetrace._session import Session
    from edgetrace._why import Why
    from edgetrace.tui._finding import finding_cut

    session = Session(race_session)
    # t-2 reads the key the others write: its decision's cut reaches their writes, via the hub
    act = [s for s in session.spans if s.kind is SpanKind.DECIDE and s.node == "t-2"][-1]
    expected = [c.span.ref for c in Why(session.spans).cut(act.ref)]
    refs = finding_cut(race_session, act.ref)
    assert refs[0] == act.ref and set(refs) == set(expected) and len(refs) > 3
    assert len({session.span(r).node for r in refs}) > 2  # across nodes: the reader, the host, a writer
    app = ExplorerApp(race_session, follow=False, focus=refs, cut=True)
    async with app.run_test(size=SIZE):
        view = app.screen
        assert isinstance(view, CausalViewScreen) and view.focus_ref == act.ref
        sp = app.store.table.spans
        shown = {f"{app.store.table.nodes.text[int(sp.node[i])]}:{int(sp.seq[i])}" for i in view.spans.tolist()}
        assert shown == set(refs)
        assert all(r["rel"] in ("focus", "past") for r in view.chart.rows)  # a cut is the finding's past


def test_why_in_the_command_line_is_checked_first(toy_session: Path, capsys: pytest.CaptureFixture[str]):
    from edgetrace.cli._main import main

    assert main(["explore", str(toy_session), "--why", "t-0:999"]) == 2
    assert main(["explore", str(toy_session), "--why", "t-0:1", "--focus", "t-0:2"]) == 2
    assert main(["explore", str(toy_session), "--why", "t-0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "no span 't-0:999'" in err and "Traceback" not in err


@sync
async def test_races_are_marked(race_session: Path):
    app = ExplorerApp(race_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        store = app.store
        put = next(s.ref for r in store.rows for s in store.graph(r.trace).spans
                   if s.kind is SpanKind.STATE_PUT and not s.cause)
        app.open_causal(None, focus=put)
        await pilot.pause()
        view = app.screen
        assert view.race_list and all(r.key == "zones/shared" for r in view.race_list)
        sp = store.table.spans
        for r in view.race_list:
            assert sp.node[r.a] != sp.node[r.b]
            from edgetrace.tui._causality import session_graph

            g = session_graph(store)
            assert not g.happens_before(r.a, r.b) and not g.happens_before(r.b, r.a)
        assert any(row["race"] for row in view.chart.rows)
        await pilot.press("r")
        assert view.chart.rows[view.chart.cursor]["race"]
        assert "race on zones/shared" in str(view.query_one("#causal-info").render())


# --- robustness -------------------------------------------------------------------------------


@sync
async def test_every_screen_without_colour(monkeypatch: pytest.MonkeyPatch, toy_session: Path, toy_replayed: Path):
    monkeypatch.setenv("NO_COLOR", "1")
    app = ExplorerApp(toy_session, against=toy_replayed, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        assert app.no_color
        await pilot.press("h", "escape", "enter")  # the chart, then a trace
        await pilot.press("v", "v", "enter")
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("escape", "x")
        assert isinstance(app.screen, CausalViewScreen)
        await pilot.press("escape", "escape", "f")
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("escape", "d")
        await pilot.press("escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "q")
    assert app.error is None and app.return_code == 0


@sync
async def test_footer_keeps_help_and_quit_at_80_columns(toy_session: Path):
    from textual.widgets._footer import FooterKey

    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        for keys in ([], ["enter"], ["x"], ["escape", "escape", "f"]):
            await pilot.press(*keys)
            await pilot.pause()
            shown = [k for k in app.screen.query(FooterKey) if k.region.right <= SIZE[0] and k.region.width]
            assert [k.description for k in shown][:2] == ["help", "quit"], type(app.screen).__name__


@pytest.mark.parametrize("width", [66, 80, 200])
def test_help_fits_its_width(width: int):
    from edgetrace.tui._help import help_text

    text = help_text(width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "without" in text and "[causal view (x)]" in text and "[fleet view (f)]" in text


@pytest.mark.app_errors
@sync
async def test_damaged_sessions_are_one_error_and_exit_2(tmp_path: Path, toy_session: Path):
    from sessions import damaged

    for what, path in damaged(toy_session, tmp_path).items():
        app = ExplorerApp(path, follow=False)
        async with app.run_test(size=SIZE):
            pass
        assert app.return_code == 2, what
        assert isinstance(app.error, CorruptSessionError) and "\n" not in str(app.error), what


@pytest.mark.app_errors
@sync
async def test_salvage_skips_the_damaged_frame_and_says_so(tmp_path: Path, toy_session: Path):
    """Without --salvage the one line says how to read the rest; with it the damaged frame is
    skipped, the rest shown, and the status line counts what was skipped."""
    from sessions import torn

    from edgetrace._frames import scan_frames

    whole = torn(toy_session, tmp_path)["zeroed tail"].with_name("whole.ets")  # two records frames
    data = bytearray(whole.read_bytes())
    first = next(f for f in scan_frames(bytes(data), 16, path=whole)
                 if getattr(f, "type", None) is not None and f.type.name == "RECORDS")
    data[first.offset + 40] ^= 0x40  # inside the first records frame's payload
    bad = tmp_path / "bad.ets"
    bad.write_bytes(bytes(data))
    app = ExplorerApp(bad, follow=False)
    async with app.run_test(size=SIZE):
        pass
    assert app.return_code == 2 and "--salvage" in str(app.error) and "\n" not in str(app.error)
    app = ExplorerApp(bad, follow=False, salvage=True)
    async with app.run_test(size=(160, 24)) as pilot:
        await pilot.pause()
        store = app.store
        assert store.at_end and len(store.damage) == 1 and store.damage[0].offset == first.offset
        assert store.span_count > 0 and store.count > 0  # the second frame's spans
        assert "salvaged: 1 damaged frame(s)" in str(app.screen.query_one("#status").render())
        await pilot.press("enter")
        assert isinstance(app.screen, TraceViewScreen)
    assert app.error is None


@sync
async def test_a_torn_tail_opens_what_came_before_it(tmp_path: Path, toy_session: Path):
    """A zero tail or a frame cut short is what a crash leaves: the intact frames are shown,
    the status says how much was not read, nothing is an error."""
    from sessions import torn

    whole = ExplorerApp(toy_session, follow=False)
    async with whole.run_test(size=SIZE):
        spans = whole.store.span_count
    for what, path in torn(toy_session, tmp_path).items():
        app = ExplorerApp(path, follow=False)
        async with app.run_test(size=(120, 24)) as pilot:
            await pilot.pause()
            store = app.store
            assert store.at_end and store.torn and not store.sealed, what
            assert store.span_count == spans // 2, what  # the first frame
            assert "torn tail" in str(app.screen.query_one("#status").render()), what
            await pilot.press("enter")  # a trace of the intact part opens
            assert isinstance(app.screen, TraceViewScreen), what
        assert app.return_code in (0, None) and app.error is None, what


@pytest.mark.app_errors
@sync
async def test_a_bug_is_exit_3(monkeypatch: pytest.MonkeyPatch, toy_session: Path):
    def broken(self: Any, y: int) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(SpanChart, "render_line", broken)
    app = ExplorerApp(toy_session, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
    assert app.return_code == 3 and isinstance(app.error, RuntimeError)


@sync
async def test_control_characters_are_shown_escaped(tmp_path: Path):
    from sessions import hostile_session

    app = ExplorerApp(hostile_session(tmp_path / "h.ets"), follow=False)
    async with app.run_test(size=(120, 30)) as pilot:
        seen = _lines(app.screen.traces)
        await pilot.press("enter")
        seen += _lines(app.screen.chart)
        seen.append(str(app.screen.query_one("#span-info").render()))
        await pilot.press("j", "enter")
        seen.append(str(app.screen.query_one("#detail").render()))
    text = "\n".join(seen)
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "\\x1b[2J" in text


@sync
async def test_picker_offers_recent_sessions_first(tmp_path: Path, toy_session: Path, race_session: Path):
    from edgetrace.tui._recent import remember

    recent = tmp_path / "state" / "recent"
    remember(recent, race_session)
    app = ExplorerApp(search=[toy_session.parent], recent=recent)
    async with app.run_test(size=SIZE) as pilot:
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        assert picker.sessions[0] == race_session.resolve()
        assert toy_session.resolve() in picker.sessions
        await pilot.press("enter")
        await pilot.pause()
        assert app.store is not None and app.store.path.resolve() == race_session.resolve()
    assert ExplorerApp().search[-1].name == "edgetrace-demo"  # where `edgetrace demo` writes
