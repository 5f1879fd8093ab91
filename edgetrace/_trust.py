"""Which app a replay may run: the user's choice, never the session file's (stored → *replayed*).

A session names the app that recorded it (`manifest.app_ref`: `mypkg.pipeline:app`, or a
path such as `/src/tests/test_fleet.py:app`), but a session file is data. Anyone who can write
one, append one frame to one, or send a hello to a hub that has no token can put any reference
there, and importing a reference runs its code. So `app_ref` is only a *name to check*; the app
to run is one of, in this order:

1. the app the user names: `--app REF` on the command line, `app=` in Python (the session's
   `app_ref` is then not consulted at all); `REF` is `MODULE:ATTR`, `FILE.py:ATTR`, or the
   name of an installed app (2.);
2. an **installed app**: a reference registered by an installed package in the entry-point
   group `edgetrace.apps` (edgetrace registers its shipped scenarios' apps there; the
   scenarios shipped inside the `edgetrace` package count as installed even when the package
   metadata is older than the code, as in a checkout);
3. the **trust list**, `DATA/trusted-sessions.jsonl`: `edgetrace record` adds every session it
   records itself (session id + app_ref), so `edgetrace record X --out s.ets && edgetrace
   replay s.ets` needs no flag; the file is ignored unless it is yours and only you can write it;
4. `--trust-session`: the user accepts this session's `app_ref`, once.

Anything else is refused with `ReplayError`, whose message says exactly what to pass.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from edgetrace._discovery import data_dir
from edgetrace._errors import ReplayError
from edgetrace._records import Manifest

__all__ = ["ENTRY_POINT_GROUP", "TRUST_FILE", "AppChoice", "choose_app", "installed_apps", "is_installed_app", "remember_session",
           "trust_file", "trusted_session"]

#: Entry-point group where installed packages register their apps (`name = "module:attr"`).
ENTRY_POINT_GROUP = "edgetrace.apps"
#: The trust list's file name inside the data folder.
TRUST_FILE = "trusted-sessions.jsonl"
_SHIPPED = "edgetrace.scenarios."
_MAX_TRUST_BYTES = 4 << 20  # a trust list is a few hundred bytes a recording; never read a huge one


@dataclass(frozen=True)
class AppChoice:
    """The reference to import and why it may be imported (shown by `--verbose` style messages)."""

    ref: str
    reason: str


def installed_apps() -> dict[str, str]:
    """Installed apps: entry-point name → `module:attr`, plus the scenarios edgetrace ships."""
    found: dict[str, str] = {}
    try:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(ep.name, ep.value.strip())
    except Exception:  # broken metadata of some other package must not break replays
        pass
    try:
        from importlib import resources

        root = resources.files("edgetrace") / "scenarios"
        for entry in root.iterdir():
            if entry.is_dir() and (entry / "scenario.py").is_file():
                found.setdefault(entry.name, f"{_SHIPPED}{entry.name}.scenario:app")
    except (ModuleNotFoundError, OSError):
        pass
    return found


def is_installed_app(ref: str) -> bool:
    """True if `ref` is an installed app's reference (importing it runs only installed code)."""
    module, _, attr = ref.rpartition(":")
    if not module or not attr:
        return False
    if module.endswith(".py"):  # a shipped scenario by its path, as App.reference() names it in a checkout
        return attr == "app" and _shipped_file(module)
    if "/" in module or "\\" in module:
        return False
    if ref in installed_apps().values():
        return True
    # a shipped scenario module is part of edgetrace itself: importing it is running edgetrace
    name = module.removeprefix(_SHIPPED)
    return module.startswith(_SHIPPED) and name.count(".") == 1 and name.endswith(".scenario") and \
        name.split(".")[0] in _shipped_names()


def _shipped_file(text: str) -> bool:
    try:
        from importlib import resources

        file = Path(text).resolve(strict=True)
        root = Path(str(resources.files("edgetrace") / "scenarios")).resolve(strict=True)
    except (OSError, ModuleNotFoundError, RuntimeError):
        return False
    return file.name == "scenario.py" and file.parent.parent == root and file.parent.name in _shipped_names()


def _shipped_names() -> set[str]:
    return {ref.removeprefix(_SHIPPED).split(".")[0] for ref in installed_apps().values()
            if ref.startswith(_SHIPPED)}


def trust_file() -> Path:
    """Where the trust list lives: DATA/trusted-sessions.jsonl (DATA as for sessions)."""
    return data_dir() / TRUST_FILE


def _safe_to_read(path: Path) -> bool:
    """Ours, a regular file, and writable by nobody else: otherwise another user could add entries."""
    try:
        st = path.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_TRUST_BYTES:
        return False
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return False
    return not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _entries(path: Path) -> list[Mapping[str, object]]:
    if not _safe_to_read(path):
        return []
    found: list[Mapping[str, object]] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            found.append(item)
    return found


def trusted_session(manifest: Manifest, *, path: Path | None = None) -> bool:
    """True if the trust list holds this session's (session id, app_ref) pair."""
    if not manifest.session_id or not manifest.app_ref:
        return False
    for item in _entries(path or trust_file()):
        if item.get("session_id") == manifest.session_id and item.get("app_ref") == manifest.app_ref:
            return True
    return False


def remember_session(manifest: Manifest, *, path: Path | None = None) -> None:
    """Add a session this user recorded to the trust list (created private, appended atomically)."""
    if not manifest.session_id or not manifest.app_ref:
        return
    target = path or trust_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"session_id": manifest.session_id, "app_ref": manifest.app_ref,
                       "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, sort_keys=True) + "\n"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o600)
    try:
        os.write(fd, line.encode())  # one short write to an O_APPEND file: concurrent recorders do not interleave
    finally:
        os.close(fd)


def choose_app(manifest: Manifest, *, source: object, app: str | None = None,
               trust_session: bool = False) -> AppChoice:
    """The app reference a replay of this session may import, or ReplayError saying what to pass.

    `app` is what the user named (`--app`): an installed app's name or a reference. `source`
    names the session in messages.
    """
    if app:
        ref = installed_apps().get(app, app)
        return AppChoice(ref, "named by the user")
    ref = manifest.app_ref
    if not ref:
        raise ReplayError(f"{source}: the session names no app to re-run; pass the app with "
                          "--app MODULE:ATTR (or app=... in Python)")
    if is_installed_app(ref):
        return AppChoice(ref, "an installed app")
    if trust_session:
        return AppChoice(ref, "--trust-session")
    if trusted_session(manifest):
        return AppChoice(ref, f"recorded here (listed in {trust_file()})")
    import shlex

    from edgetrace._text import printable

    shown = printable(shlex.quote(ref), limit=200)
    raise ReplayError(
        f"{printable(source)}: not running the app this session names ({shown}): a session file is "
        f"data and does not choose code to run. If that is the app you mean, pass --app {shown} "
        "(or --trust-session to accept the session's app_ref); in Python, Replayer(session, app=...)"
    )
