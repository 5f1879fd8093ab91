"""Progress bars for long runs, drawn on stderr whenever stderr is a terminal.

Stdout is for results: `edgetrace record … > log` still shows its bar on the terminal, and
the log gets only the summary. Silent when stderr is not a terminal (CI, a pipe) or with
`--json`; `EDGETRACE_PROGRESS=0` turns bars off, `=1` forces them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

__all__ = ["Progress", "progress_bar"]


class Progress(Protocol):
    def __call__(self, done: int, total: int, description: str | None = None) -> None: ...


def _ignore(done: int, total: int, description: str | None = None) -> None:
    pass


@contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Progress]:
    """Yield `update(done, total)` (`update(…, description=…)` for the next phase of the same
    work); a no-op unless stderr is a terminal."""
    forced = os.environ.get("EDGETRACE_PROGRESS", "")
    if not enabled or forced == "0" or (forced != "1" and not sys.stderr.isatty()):
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bars

    console = Console(stderr=True, force_terminal=True if forced == "1" else None)
    with Bars(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), transient=True, console=console) as bar:
        task = bar.add_task(description, total=1)

        def update(done: int, total: int, description: str | None = None) -> None:
            bar.update(task, completed=done, total=max(total, 1), description=description)

        yield update
