"""The key bar at the bottom of every screen: help and quit first, so 80 columns keep them.

Textual's `Footer` lists the focused widget's keys, then the screen's, then the app's, and
cuts what does not fit — at 80 columns that was `q quit` and `? help`. `KeyFooter` lists the
app's keys first and leaves out the command palette's, then the rest in order.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

__all__ = ["KeyFooter"]


class KeyFooter(Footer):
    """A footer whose first keys are the app's (help, quit)."""

    def __init__(self) -> None:
        super().__init__(show_command_palette=False, compact=True)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        app_first = sorted(active.values(), key=lambda b: b.node is not self.app)
        seen: set[str] = set()
        for node, binding, enabled, tooltip in app_first:
            if not binding.show or binding.action in seen or binding.key == self.app.COMMAND_PALETTE_BINDING:
                continue
            seen.add(binding.action)
            _ = node
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
