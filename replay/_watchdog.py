"""The replay watchdog: a handler that never yields stalls virtual time; say which, and where.

A replay runs every node on one virtual-time loop, so a handler stuck in a loop of its own
(or in a blocking call) stops the whole simulation — no timer fires, nothing else runs, and
the replay looks hung. A watchdog thread notices when the loop has not run a single callback
for `after_s` seconds of wall time and reports the stuck handler's stack, once per stall. It is
the one part of a replay that reads a wall clock, and nothing it sees goes into the report:
it warns on stderr, so reports stay byte-identical.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from types import TracebackType
from typing import TextIO

from edgetrace.agents._code import is_app_file
from edgetrace.replay._loop import VirtualLoop

__all__ = ["Watchdog"]


class Watchdog:
    """Watches `loop` from a daemon thread while in the `with` block."""

    def __init__(self, loop: VirtualLoop, *, after_s: float = 10.0, out: TextIO | None = None) -> None:
        self.loop = loop
        self.after_s = after_s
        self.out = out
        self.reports: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="edgetrace-watchdog", daemon=True)
        self._main = threading.get_ident()

    def __enter__(self) -> Watchdog:
        if self.after_s > 0:
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)

    def _watch(self) -> None:
        seen, since, reported = self.loop.ran, time.monotonic(), False
        while not self._stop.wait(min(1.0, self.after_s / 4)):
            now = time.monotonic()
            if self.loop.ran != seen:
                seen, since, reported = self.loop.ran, now, False
            elif not reported and now - since >= self.after_s and self.loop.is_running():
                reported = True
                self._report(now - since)

    def _report(self, stalled_s: float) -> None:
        frame = sys._current_frames().get(self._main)
        stack = traceback.extract_stack(frame) if frame is not None else traceback.StackSummary()
        app = [f for f in stack if is_app_file(f.filename)]
        where = f"{app[-1].filename.rsplit('/', 1)[-1]}:{app[-1].lineno} in {app[-1].name}" if app else "unknown"
        text = (f"edgetrace: watchdog: a handler has not yielded for {stalled_s:.0f} s of wall time, at {where}; "
                "virtual time stands still until it does (a busy loop or a blocking call? use ctx.sleep)\n"
                + "".join(traceback.format_list(app[-6:] or list(stack)[-6:])))
        self.reports.append(text)
        (self.out or sys.stderr).write(text)
