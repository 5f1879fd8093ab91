"""Recompress a finished session, as `edgetrace record` does when its hub stops: zstd frames of
8,000 records, and each receive's clock stored by reference to its send where that is smaller.

A hub's session (and one saved by `replay --save` or a test) is written in the live form:
zlib level 1, every record's delta clock. Compacted, the 1,000-node fleet benchmark is ≈ 7×
smaller and the explorer scans it ≈ 3× faster. The file is replaced atomically (or `--out`
is written), so a crash leaves the old session or the new one, never a mix.

Exit 0 when compacted; 2 when the session is missing, damaged or not sealed (a hub may still
be writing it), the original left as it was."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = """\
edgetrace compact sessions/field-2026-06-01.ets
edgetrace compact run.ets --out run-small.ets --json"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", help="a sealed session (.ets)")
    p.add_argument("--out", metavar="OUT", help="write the compacted session here instead of replacing SESSION")
    p.add_argument("--no-references", dest="references", action="store_false",
                   help="keep every record's own clock (format 2, which readers before format 3 open)")
    p.add_argument("--json", action="store_true", help="print the sizes as JSON")


def run(args: argparse.Namespace) -> int:
    import msgspec

    from edgetrace._compact import compact
    from edgetrace._errors import SessionNotFoundError
    from edgetrace._frames import FILE_HEADER_SIZE, read_file_header
    from edgetrace._records import CLOCK_REF_VERSION
    from edgetrace._session import SESSION_MAGIC
    from edgetrace.cli._progress import progress_bar

    source = Path(args.session)
    if not source.is_file():
        raise SessionNotFoundError(f"{source}: no such session", path=source)
    target = Path(args.out) if args.out else source
    with progress_bar("compacting the session", enabled=not args.json) as update:
        before, after = compact(source, references=args.references, progress=update,
                                out=None if target == source else target)
    with open(target, "rb") as fh:
        version = read_file_header(fh.read(FILE_HEADER_SIZE), magic=SESSION_MAGIC, supported=CLOCK_REF_VERSION,
                                   path=target, what="session")
    result = {"session": str(source), "out": str(target), "bytes_before": before, "bytes_after": after,
              "ratio": round(after / before, 4) if before else 1.0, "format_version": version,
              "clock_references": version >= CLOCK_REF_VERSION}
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")
        return 0
    refs = "receives' clocks by reference" if result["clock_references"] else "every record's own clock"
    sys.stdout.write(f"compacted {source}{'' if target == source else f' into {target}'}: "
                     f"{before / 1e6:,.2f} MB -> {after / 1e6:,.2f} MB ({result['ratio']:.2f}x), {refs}\n")
    return 0
