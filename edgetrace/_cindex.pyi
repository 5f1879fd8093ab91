"""Types of the causal index built in C (`_cindex.c`; built by setup.py when it can be)."""

def build(spans: object, codes: object, names: object, max_cells: int, /) -> (
    dict[str, tuple[list[int], list[object], list[int], dict[str, tuple[int, int]], bytes, bool, bytes, bool,
                    dict[str, int], int]] | None
): ...
