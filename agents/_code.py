"""Where in the app's own code something happened: the source line of each step and of each error.

Every step a handler takes is recorded with the line that issued it (`file.py:57`), so a
replay that goes its own way can say which line of the app produced the step it did not
expect — Temporal's replay errors do the same. A handler's exception is recorded with its type,
message and the app's own frames (edgetrace's and the standard library's trimmed), so
`record`, `replay` and `show` can name the line that raised.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from contextvars import ContextVar
from pathlib import Path
from types import CodeType, FrameType, TracebackType

import edgetrace
from edgetrace import _attrs as attr

__all__ = ["IN_HANDLER", "call_site", "exception_attrs", "is_app_file", "is_library_file", "is_runtime_file"]

_PKG = Path(edgetrace.__file__).resolve().parent  # the core package; agents/replay/tui may be links


def _real(path: Path) -> str:
    return os.path.realpath(path) + os.sep


_RUNTIME = (_real(_PKG), *(_real(_PKG / d) for d in ("agents", "replay", "tui")))
_SCENARIOS = _real(_PKG / "scenarios")  # shipped example apps are app code
_STDLIB = (_real(Path(sysconfig.get_paths()["stdlib"])),)  # the interpreter's own library (not site-packages)
_SITES: dict[tuple[CodeType, int], str] = {}
_APP_FILE: dict[str, str] = {}


def _where(filename: str) -> str:
    """'runtime' (edgetrace itself), 'stdlib' (or generated code) or 'app' (the app and its libraries)."""
    found = _APP_FILE.get(filename)
    if found is None:
        real = os.path.realpath(filename)
        if real.startswith(_RUNTIME) and not real.startswith(_SCENARIOS):
            found = "runtime"
        elif real.startswith(_STDLIB) or filename.startswith("<"):
            found = "stdlib"
        else:
            found = "app"
        _APP_FILE[filename] = found
    return found


def is_app_file(filename: str) -> bool:
    """Code of the app (or a library it uses), not edgetrace's runtime or the standard library."""
    return _where(filename) == "app"


def is_runtime_file(filename: str) -> bool:
    return _where(filename) == "runtime"


def is_library_file(filename: str) -> bool:
    """Installed third-party code (site-packages), as opposed to the app's own source."""
    return "site-packages" in filename or "dist-packages" in filename


#: True inside a handler invocation's task: where the app's code runs (and only there).
IN_HANDLER: ContextVar[bool] = ContextVar("edgetrace_in_handler", default=False)


def _site(code: CodeType, line: int) -> str:
    key = (code, line)
    found = _SITES.get(key)
    if found is None:
        found = _SITES[key] = f"{Path(code.co_filename).name}:{line}"
    return found


def call_site(depth: int = 2) -> str:
    """`file.py:line` of the first app frame at or above `depth` frames up ('' if none)."""
    frame: FrameType | None = sys._getframe(depth)
    while frame is not None:
        if is_app_file(frame.f_code.co_filename):
            return _site(frame.f_code, frame.f_lineno)
        frame = frame.f_back
    return ""


def exception_attrs(exc: BaseException) -> dict[str, str]:
    """OpenTelemetry's exception attributes, with the stack trimmed to the app's own frames,
    and `edgetrace.code`: the app line the exception came out of."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if is_app_file(f.filename)]
    own = [f for f in frames if not {"site-packages", "dist-packages"} & set(Path(f.filename).parts)]
    last = (own or frames)[-1] if frames else None  # the app's own line, not a library's internals
    where = f"{Path(last.filename).name}:{last.lineno}" if last else _innermost(exc.__traceback__)
    stack = "".join(traceback.format_list(frames[-8:])) + "".join(traceback.format_exception_only(exc))
    return {
        attr.EXCEPTION_TYPE: type(exc).__name__,
        attr.EXCEPTION_MESSAGE: str(exc)[:500],
        attr.EXCEPTION_STACKTRACE: stack[-4000:],
        attr.CODE: where,
    }


def _innermost(tb: TracebackType | None) -> str:
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return "" if last is None else f"{Path(last.tb_frame.f_code.co_filename).name}:{last.tb_lineno}"

