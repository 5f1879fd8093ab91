"""A minimal agent process for crash tests: records N spans into a spool and ships them.

Run as a script: python crash_agent.py SPOOL HOST:PORT NODE SESSION TOKEN N PACE_MS
Resumes from its spool after being killed; exits 0 once the hub acknowledged all N.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from edgetrace import SpanKind
from edgetrace.agents import Recorder
from edgetrace.agents._shipper import Shipper
from edgetrace.agents._spool import Spool


async def main() -> int:
    spool_path, hub, node, session, token, total, pace_ms = sys.argv[1:8]
    host, port = hub.rsplit(":", 1)
    spool = Spool(Path(spool_path))
    rec = Recorder(node, spool)
    rec.resume(spool.last_seq, spool.clock)
    shipper = Shipper(spool, (host, int(port)), token=token, node=node, session=session,
                      backoff=(0.02, 0.3), timeout=2.0)
    shipper.start()
    while rec.seq < int(total):
        rec.record(SpanKind.LOG, "tick", trace=f"{node}-{rec.seq + 1}",
                   blobs={"input": rec.blob(f"{node}:{rec.seq + 1}".encode())})
        spool.flush()
        shipper.poke()
        await asyncio.sleep(int(pace_ms) / 1000)
    ok = await shipper.flush(60)
    await shipper.stop()
    spool.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
