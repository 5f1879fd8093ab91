"""The explorer application: it only routes between screens; each screen is its own module.

    picker → trace list ─→ trace view ─→ span detail
               │  │            │  └────→ trace view of the other end of a message
               │  └→ fleet     └───────→ causal view (all traces around a span)
               └──→ diff view (with --against)

Screens and widgets post messages (`TraceList.Opened`, `TraceViewScreen.OpenSpan`, ...);
the app answers them by pushing the next screen, so no screen knows about another. An
error the app meets is kept (`error`) and ends it: bad input exits 2 with one line, a bug
exits 3 with where to report it (`edgetrace explore` prints them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import WorkerFailed

from edgetrace._discovery import data_dir, find_sessions
from edgetrace._errors import EdgeTraceError
from edgetrace.tui._list_screen import TraceListScreen
from edgetrace.tui._store import TraceStore
from edgetrace.tui._trace_list import TraceList

# Only the trace list is needed for the first screen; the other screens (and the modules
# they pull in) are imported when first opened.
if TYPE_CHECKING:
    from edgetrace._index import CausalIndex
    from edgetrace._records import Span
    from edgetrace._session import Session
    from edgetrace.tui._causal_view import CausalViewScreen
    from edgetrace.tui._detail import DetailScreen
    from edgetrace.tui._diff import DiffModel
    from edgetrace.tui._fleet_view import FleetTable
    from edgetrace.tui._graph import TraceGraph
    from edgetrace.tui._picker import PickerScreen
    from edgetrace.tui._trace_view import TraceViewScreen

__all__ = ["ExplorerApp"]

#: Sessions up to this size get exact full vector clocks in the detail view (the causal
#: index of the whole session is built on first use); larger ones show the record's delta.
FULL_CLOCK_SPANS = 300_000
#: The first screen is drawn from the first frames that hold this many traces.
FIRST_SCREEN_ROWS = 1_000


class ExplorerApp(App[None]):
    """`edgetrace explore`: trace list, trace and causal views, fleet, span detail and diff."""

    CSS_PATH = "explorer.tcss"
    TITLE = "edgetrace explore"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+p", "command_palette", "commands", show=False),
    ]

    def __init__(self, session: str | Path | None = None, *, against: str | Path | None = None,
                 follow: bool = True, search: Sequence[Path] | None = None,
                 initial_scan_s: float = 0.1, focus: Sequence[str] = (), cut: bool = False,
                 query: str = "", recent: Path | None = None, salvage: bool = False) -> None:
        super().__init__()
        self.session_path = Path(session) if session else None
        self.against = Path(against) if against else None
        self.follow = follow
        self.salvage = salvage
        self.search = list(search) if search is not None else [data_dir(), Path.cwd(), Path.cwd() / "edgetrace-demo"]
        self.initial_scan_s = initial_scan_s
        self.focus_refs = list(focus)
        self.cut = cut or len(self.focus_refs) > 1
        self.initial_query = query
        self.recent = recent
        self.store: TraceStore | None = None
        self.diff: DiffModel | None = None
        self.error: BaseException | None = None
        self._session: Session | None = None

    def on_mount(self) -> None:
        if self.session_path is not None:
            self.open_session(self.session_path)
        else:
            from edgetrace.tui._picker import PickerScreen
            from edgetrace.tui._recent import read_recent

            recent = read_recent(self.recent) if self.recent is not None else []
            self.push_screen(PickerScreen(find_sessions(*self.search), self.search, recent))

    # --- errors: bad input is exit 2, a bug exit 3 (the CLI prints the one line) ------------

    def _handle_exception(self, error: Exception) -> None:
        if isinstance(error, WorkerFailed) and isinstance(error.error, Exception):
            error = error.error
        if self.error is None:
            self.error = error
        self.exit(return_code=2 if isinstance(error, EdgeTraceError) else 3)
        self._exception_event.set()  # what Textual's own handler does: waiters (Pilot) stop waiting

    # --- routing ------------------------------------------------------------------------

    def open_session(self, path: Path) -> None:
        store = TraceStore(path, salvage=self.salvage)
        # enough for the first screen; a worker of the list screen reads the rest.
        store.scan(budget_s=self.initial_scan_s, min_rows=FIRST_SCREEN_ROWS)
        store.estimate_clocks()
        self.store = store
        self._session = None
        if self.recent is not None:
            from edgetrace.tui._recent import remember

            remember(self.recent, path)
        marks: set[str] = set()
        if self.against is not None:
            from edgetrace.tui._diff import DiffModel

            self.diff = DiffModel(path, self.against, salvage=self.salvage)
            marks = set(self.diff.diverged)
        self.push_screen(TraceListScreen(store, follow=self.follow, marks=marks, query=self.initial_query))
        if self.focus_refs:
            self.open_causal(self.focus_refs if self.cut else None, focus=self.focus_refs[0])

    def open_causal(self, refs: Sequence[str] | None, *, focus: str) -> None:
        """The causal view of exactly the spans `refs` (a cut, e.g. a finding's causal past),
        or the session around `focus` when refs is None."""
        from edgetrace.tui._causal_view import CausalViewScreen

        assert self.store is not None
        self._need_scanned([*(refs or []), focus])
        self.push_screen(CausalViewScreen(self.store, list(refs) if refs else None, focus=focus))

    def _need_scanned(self, refs: Sequence[str]) -> None:
        """Refs may be anywhere in the file: read it all before looking them up."""
        store = self.store
        assert store is not None
        if any(store.span_index(r) is None for r in refs) and not store.at_end:
            store.scan()
            store.estimate_clocks()

    def on_picker_screen_picked(self, event: PickerScreen.Picked) -> None:
        self.pop_screen()
        self.open_session(event.path)

    def _trace_screen(self, trace: str, select: str | None = None) -> TraceViewScreen:
        from edgetrace.tui._trace_view import TraceViewScreen

        assert self.store is not None
        graph = self.store.graph(trace)
        lists = [s for s in self.screen_stack if isinstance(s, TraceListScreen)]
        query = lists[-1].filter_query if lists else None
        return TraceViewScreen(graph, store=self.store, query=query, select=select)

    def on_trace_list_opened(self, event: TraceList.Opened) -> None:
        self.push_screen(self._trace_screen(event.trace))

    def on_trace_list_screen_open_fleet(self, event: TraceListScreen.OpenFleet) -> None:
        from edgetrace.tui._fleet_view import FleetScreen

        assert self.store is not None
        self.push_screen(FleetScreen(self.store))

    def on_fleet_table_picked(self, event: FleetTable.Picked) -> None:
        self.pop_screen()
        if isinstance(self.screen, TraceListScreen):
            self.screen.apply_filter(event.query)

    def on_trace_list_screen_open_causal(self, event: TraceListScreen.OpenCausal) -> None:
        assert self.store is not None
        row = self.store.row_of(event.trace)
        if row is not None:
            self.open_causal(None, focus=row.root)

    def on_trace_view_screen_open_detail(self, event: TraceViewScreen.OpenDetail) -> None:
        self.push_screen(self._detail(event.graph, event.index))

    def on_trace_view_screen_open_span(self, event: TraceViewScreen.OpenSpan) -> None:
        self.push_screen(self._trace_screen(event.trace, select=event.ref))

    def on_trace_view_screen_open_causal(self, event: TraceViewScreen.OpenCausal) -> None:
        self.open_causal(None, focus=event.ref)

    def on_causal_view_screen_open_span(self, event: CausalViewScreen.OpenSpan) -> None:
        self.push_screen(self._trace_screen(event.trace, select=event.ref))

    def on_detail_screen_jump(self, event: DetailScreen.Jump) -> None:
        self.switch_screen(self._detail(event.graph, event.index))

    def _detail(self, graph: TraceGraph, index: int) -> DetailScreen:
        from edgetrace.tui._detail import DetailScreen, describe_span

        span = graph.spans[index]
        store = self.store
        assert store is not None
        return DetailScreen(graph, index, describe_span(span, graph, self.full_clock(span), store.blob))

    def full_clock(self, span: Span) -> dict[str, int] | None:
        """Exact vector clock of a span from the session's causal index (small sessions)."""
        store = self.store
        if store is None or store.span_count > FULL_CLOCK_SPANS or not store.at_end:
            return None  # (a partly scanned session may be far larger than it looks yet)
        from edgetrace._session import Session

        try:
            if self._session is None:
                self._session = Session(store.path, salvage=store.salvage)
            else:
                self._session.refresh()
            index: CausalIndex = self._session.index  # (`Session.index` is untyped: built lazily)
            return index.clock(span).as_dict()
        except Exception:  # the detail view must open even if the index cannot answer
            return None

    def open_diff(self, trace: str | None) -> None:
        if self.diff is None:
            self.notify("no replayed session: start with `edgetrace explore SESSION --against REPLAYED`")
            return
        from edgetrace.tui._diff import DiffScreen

        self.push_screen(DiffScreen(self.diff, trace))

    # --- actions and the command palette ------------------------------------------------

    def action_help(self) -> None:
        from edgetrace.tui._help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def _run_on_screen(self, action: str) -> None:
        self.call_later(self.screen.run_action, action)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        from edgetrace.tui._trace_view import TraceViewScreen

        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "every key binding and the filter language", self.action_help)
        if isinstance(screen, TraceListScreen):
            yield SystemCommand("Filter traces", "type a query (/)", lambda: self._run_on_screen("filter"))
            yield SystemCommand("Time range", "traces by start and duration (t)", lambda: self._run_on_screen("ranges"))
            yield SystemCommand("Duration chart", "start × duration, select a box (h)",
                                lambda: self._run_on_screen("chart"))
            yield SystemCommand("Fleet", "nodes and links (f)", lambda: self._run_on_screen("fleet"))
            yield SystemCommand("Cycle sort", "arrival, start, trace, duration, spans, errors (s)",
                                lambda: self._run_on_screen("sort"))
            yield SystemCommand("Open trace", "open the selected trace (Enter)",
                                lambda: screen.traces.action_open())
            if self.diff is not None:
                yield SystemCommand("Diff against replay", "recorded vs replayed (d)",
                                    lambda: self._run_on_screen("diff"))
        if isinstance(screen, TraceViewScreen):
            yield SystemCommand("Toggle waterfall / space-time", "(v)", lambda: self._run_on_screen("toggle_view"))
            yield SystemCommand("Provenance", "step back to the facts behind this span (p)",
                                lambda: self._run_on_screen("provenance"))
            yield SystemCommand("Causal view", "every trace around this span (x)",
                                lambda: self._run_on_screen("causal"))
            yield SystemCommand("Span detail", "(Enter)", lambda: self._run_on_screen("detail"))
