"""Sessions the explorer opened lately, so the picker can offer them first.

A small text file, one absolute path a line, newest first, in the user's state folder
(`$XDG_STATE_HOME/edgetrace/recent`, else ~/.local/state/edgetrace/recent). Failing to read
or write it never stops the explorer: it is a convenience, not state anyone depends on.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["RECENT_LIMIT", "read_recent", "recent_file", "remember"]

RECENT_LIMIT = 20


def recent_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "edgetrace" / "recent"


def read_recent(path: Path) -> list[Path]:
    """Recent sessions that still exist, newest first."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    found = []
    for line in lines:
        p = Path(line.strip())
        if line.strip() and p.is_file() and p not in found:
            found.append(p)
    return found


def remember(path: Path, session: Path) -> None:
    """Put `session` first in the recent list (best effort)."""
    try:
        session = session.resolve()
        kept = [p for p in read_recent(path) if p != session]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(str(p) for p in [session, *kept][:RECENT_LIMIT]) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
