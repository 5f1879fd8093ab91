"""Types of the C walk of a records frame (`_recscan.c`; built by setup.py when it can be)."""

def columns(body: bytes, /) -> (
    tuple[int, list[str], bytes, bytes, bytes, bytes, list[bytes], bytes, bytes,
          tuple[int, int, int, int, int, int, int, int, int], bytes, bytes, bytes] | None
): ...
