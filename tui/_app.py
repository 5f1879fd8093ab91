"""The explorer application: it only routes between screens; each screen is its own module.

    picker → trace list → trace view → span detail
                 └──────→ diff view (with --against)

Screens and widgets post messages (`TraceList.Opened`, `TraceViewScreen.OpenDetail`, ...);
the app answers them by pushing the next screen, so no screen knows about another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from edgetrace._discovery import data_dir, find_sessions
from edgetrace._errors import EdgeTraceError
from edgetrace.tui._store import TraceStore
from edgetrace.tui._trace_list import TraceList, TraceListScreen

# Only the trace list is needed for the first screen; the other screens (and the modules
# they pull in) are imported when first opened.
if TYPE_CHECKING:
    from edgetrace._index import CausalIndex
    from edgetrace._records import Span
    from edgetrace._session import Session
    from edgetrace.tui._detail import DetailScreen
    from edgetrace.tui._diff import DiffModel
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
    """`edgetrace explore`: trace list, trace view, span detail and diff of one session."""

    CSS_PATH = "explorer.tcss"
    TITLE = "edgetrace explore"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        Binding("ctrl+p", "command_palette", "commands", show=False),
    ]

    def __init__(self, session: str | Path | None = None, *, against: str | Path | None = None,
                 follow: bool = True, search: Sequence[Path] | None = None,
                 initial_scan_s: float = 0.1) -> None:
        super().__init__()
        self.session_path = Path(session) if session else None
        self.against = Path(against) if against else None
        self.follow = follow
        self.search = list(search) if search is not None else [data_dir(), Path.cwd()]
        self.initial_scan_s = initial_scan_s
        self.store: TraceStore | None = None
        self.diff: DiffModel | None = None
        self._session: Session | None = None
        #: Why the explorer ended early: a session it cannot read (the CLI prints it, exit 2).
        self.error: EdgeTraceError | None = None

    def fail(self, error: EdgeTraceError) -> None:
        """End with `error`: one line and exit 2 once the screen is gone, as `show` does."""
        self.error = error
        self.exit(return_code=2)

    def on_mount(self) -> None:
        if self.session_path is not None:
            try:
                self.open_session(self.session_path)
            except EdgeTraceError as exc:
                self.fail(exc)
        else:
            from edgetrace.tui._picker import PickerScreen

            self.push_screen(PickerScreen(find_sessions(*self.search), self.search))

    # --- routing ------------------------------------------------------------------------

    def open_session(self, path: Path) -> None:
        store = TraceStore(path)
        # enough for the first screen; a worker of the list screen reads the rest.
        store.scan(budget_s=self.initial_scan_s, min_rows=FIRST_SCREEN_ROWS)
        self.store = store
        self._session = None
        marks: set[str] = set()
        if self.against is not None:
            from edgetrace.tui._diff import DiffModel

            self.diff = DiffModel(path, self.against)
            marks = set(self.diff.diverged)
        self.push_screen(TraceListScreen(store, follow=self.follow, marks=marks))

    def on_picker_screen_picked(self, event: PickerScreen.Picked) -> None:
        self.pop_screen()
        try:
            self.open_session(event.path)
        except EdgeTraceError as exc:
            self.fail(exc)

    def on_trace_list_screen_unreadable(self, event: TraceListScreen.Unreadable) -> None:
        self.fail(event.error)

    def on_trace_list_opened(self, event: TraceList.Opened) -> None:
        from edgetrace.tui._trace_view import TraceViewScreen

        assert self.store is not None
        graph = self.store.graph(event.trace)
        query = self.screen.filter_query if isinstance(self.screen, TraceListScreen) else None
        self.push_screen(TraceViewScreen(graph, query=query))

    def on_trace_view_screen_open_detail(self, event: TraceViewScreen.OpenDetail) -> None:
        self.push_screen(self._detail(event.graph, event.index))

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
                self._session = Session(store.path)
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
            yield SystemCommand("Cycle sort", "arrival, trace, duration, spans, errors (s)",
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
            yield SystemCommand("Span detail", "(Enter)", lambda: self._run_on_screen("detail"))
