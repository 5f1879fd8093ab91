"""A trace as a parent/child tree, the way Jaeger lists it, with collapsible subtrees.

A span's parent is the span that started its handler (an input, or the request it serves);
spans whose parent is not in the trace are roots. Children are listed by when they started on
the common time axis, ties in causal order, so a request comes before the reply it waits
for and the served step on the other node sits under the request that caused it.
"""

from __future__ import annotations

from edgetrace.tui._graph import TraceGraph

__all__ = ["TraceTree"]


class TraceTree:
    """Rows of a trace's tree: which spans show, how deep, and their branch drawing."""

    def __init__(self, graph: TraceGraph) -> None:
        self.graph = graph
        key = lambda i: (graph.t_start[i], i)  # noqa: E731
        self.children = [sorted(c, key=key) for c in graph.children]
        self.roots = sorted((i for i in range(len(graph.spans)) if graph.parent_of[i] < 0), key=key)
        # a parent cycle (a damaged file) leaves spans unreachable from any root: list them as roots
        reached = set()
        stack = list(self.roots)
        while stack:
            i = stack.pop()
            if i in reached:
                continue
            reached.add(i)
            stack.extend(self.children[i])
        self.roots += [i for i in range(len(graph.spans)) if i not in reached]
        self.collapsed: set[int] = set()
        self._rows: list[tuple[int, str]] | None = None

    def rows(self) -> list[tuple[int, str]]:
        """(span index, branch prefix) of every visible row, in order."""
        if self._rows is None:
            out: list[tuple[int, str]] = []
            seen: set[int] = set()

            def walk(i: int, lead: str, last: bool, top: bool) -> None:
                if i in seen:
                    return
                seen.add(i)
                branch = "" if top else ("└" if last else "├")
                out.append((i, lead + branch))
                if i in self.collapsed:
                    return
                kids = self.children[i]
                below = lead if top else lead + (" " if last else "│")
                for k, c in enumerate(kids):
                    walk(c, below, k == len(kids) - 1, False)

            for r in self.roots:
                walk(r, "", True, True)
            self._rows = out
        return self._rows

    def has_children(self, i: int) -> bool:
        return bool(self.children[i])

    def depth_of(self, i: int) -> int:
        d, p, seen = 0, self.graph.parent_of[i], {i}
        while p >= 0 and p not in seen:
            seen.add(p)
            d, p = d + 1, self.graph.parent_of[p]
        return d

    def _changed(self) -> None:
        self._rows = None

    def toggle(self, i: int) -> None:
        if i in self.collapsed:
            self.collapsed.discard(i)
        elif self.children[i]:
            self.collapsed.add(i)
        self._changed()

    def collapse(self, i: int) -> None:
        if self.children[i]:
            self.collapsed.add(i)
            self._changed()

    def expand(self, i: int) -> None:
        self.collapsed.discard(i)
        self._changed()

    def collapse_all(self) -> None:
        self.collapsed = {i for i, c in enumerate(self.children) if c}
        self._changed()

    def expand_all(self) -> None:
        self.collapsed.clear()
        self._changed()

    def reveal(self, i: int) -> None:
        """Expand every ancestor of i so its row shows."""
        p, seen = self.graph.parent_of[i], {i}
        while p >= 0 and p not in seen:
            seen.add(p)
            self.collapsed.discard(p)
            p = self.graph.parent_of[p]
        self._changed()

    def visible_ancestor(self, i: int) -> int:
        """i, or the nearest ancestor of it that shows (the one collapsed over it)."""
        shown = {j for j, _ in self.rows()}
        p, seen = i, set()
        while p not in shown and p >= 0 and p not in seen:
            seen.add(p)
            p = self.graph.parent_of[p]
        return p if p >= 0 else i
