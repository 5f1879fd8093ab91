"""Progress bars for long runs, drawn on stderr whenever stderr is a terminal.

Stdout is for results: `edgetrace record … > log` still shows its bar on the terminal, and
the log gets only the summary. Silent when stderr is not a terminal (CI, a pipe) or with
`--json`; `EDGETRACE_PROGRESS=0` turns bars off, `=1` forces them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """Yield `update(done, total)`; a no-op unless stderr is a terminal."""
    forced = os.environ.get("EDGETRACE_PROGRESS", "")
    if not enabled or forced == "0" or (forced != "1" and not sys.stderr.isatty()):
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, force_terminal=True if forced == "1" else None)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), transient=True, console=console) as bar:
        task = bar.add_task(description, total=1)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))

        yield update
