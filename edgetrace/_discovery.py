"""Where sessions live: the one default data folder, shared by the stages that meet there.

The hub stores sessions in it (`edgetrace hub` without `--data`) and the explorer's picker
lists it (`edgetrace explore` without a session): recorded → shipped → **stored** → shown.
`$EDGETRACE_DATA` overrides it for both.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgetrace._session import SESSION_SUFFIX

__all__ = ["DATA_ENV", "DEFAULT_DATA_DIR", "data_dir", "find_sessions"]

#: The environment variable that names the data folder.
DATA_ENV = "EDGETRACE_DATA"
#: The data folder when `$EDGETRACE_DATA` is not set (`~` is the user's home).
DEFAULT_DATA_DIR = "~/.local/share/edgetrace"


def data_dir() -> Path:
    """Where sessions live by default: `$EDGETRACE_DATA`, else ~/.local/share/edgetrace."""
    env = os.environ.get(DATA_ENV)
    # os.path.expanduser, not Path.expanduser: every CLI start asks (the hub's default), and
    # a process with no home folder must still start.
    return Path(env) if env else Path(os.path.expanduser(DEFAULT_DATA_DIR))


def find_sessions(*dirs: Path) -> list[Path]:
    """Session files in the given folders, newest first (the picker's list)."""
    found: dict[Path, float] = {}
    for folder in dirs:
        try:
            for p in folder.glob(f"*{SESSION_SUFFIX}"):
                if p.is_file():
                    found[p.resolve()] = p.stat().st_mtime
        except OSError:
            continue
    return sorted(found, key=lambda p: (-found[p], str(p)))
