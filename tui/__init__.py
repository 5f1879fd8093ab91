"""The terminal trace explorer (`edgetrace explore`): the last stage of the pipeline,
recorded → shipped → stored → replayed → **shown**.

`ExplorerApp` is the Textual application; the query language (`parse_query`) and the
per-trace happens-before graph (`TraceGraph`) are plain Python and usable without a terminal.
Textual is imported only when `ExplorerApp` is first used, so `import edgetrace.tui` is light.
"""

from __future__ import annotations

from typing import Any

from edgetrace.tui._graph import TraceGraph
from edgetrace.tui._query import Query, QueryError, parse_query

__all__ = ["ExplorerApp", "Query", "QueryError", "TraceGraph", "parse_query"]


def __getattr__(name: str) -> Any:
    if name == "ExplorerApp":
        from edgetrace.tui._app import ExplorerApp

        return ExplorerApp
    raise AttributeError(name)
