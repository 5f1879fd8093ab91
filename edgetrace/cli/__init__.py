"""The `edgetrace` command: one verb per module, dispatched from `_main`."""

from edgetrace.cli._main import main

__all__ = ["main"]
