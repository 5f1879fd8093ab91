"""Types of the causal index built in C (`_cindex.c`; built by setup.py when it can be)."""

def build(spans: object, codes: object, names: object, max_cells: int, /) -> (
    dict[str, tuple[list[int], list[object], list[int], dict[str, tuple[int, int]], bytes, bytes,
                    dict[str, int], int]] | None
): ...

class Query:
    """happens-before over a causal index's streams, in one flat table."""

    def happens_before(self, a: object, b: object, /) -> bool | None: ...
    def happens_before_at(self, a_node: object, a_seq: object, b_node: object, b_seq: object, /) -> bool | None: ...

def query(streams: object, codes: object, max_cells: int, /) -> Query | None: ...
