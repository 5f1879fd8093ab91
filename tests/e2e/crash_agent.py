"""A minimal agent process for crash tests: records spans into a spool and ships them.

Run as a script: python crash_agent.py SPOOL HOST:PORT NODE SESSION TOKEN N PACE_MS [STATE]
Resumes from its spool after being killed (the spool may also have been cut or deleted in
between: every start is a new incarnation); exits 0 once the hub acknowledged everything it
holds and N spans were recorded over all its runs. Each span's blob is "NODE:RUN:LOCAL_SEQ",
RUN being random per process. With STATE, a folder outside the spool, it counts there the
spans recorded over all runs, and logs, in order, where its spool ends when it starts
("s SEQ"), each span it records ("r SEQ BLOB"), each rebase ("j FROM TO") and each
acknowledgement ("a SEQ"), so a checker knows exactly which spans were acknowledged.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path

from edgetrace import SpanKind
from edgetrace.agents import Recorder
from edgetrace.agents._shipper import Shipper
from edgetrace.agents._spool import Spool


async def main() -> int:
    spool_path, hub, node, session, token, total, pace_ms = sys.argv[1:8]
    state = Path(sys.argv[8]) if len(sys.argv) > 8 else None
    host, port = hub.rsplit(":", 1)
    spool = Spool(Path(spool_path))
    rec = Recorder(node, spool)
    rec.resume(spool.last_seq, spool.clock)
    count_file = state / f"{node}.count" if state else None
    done = int(count_file.read_text() or 0) if count_file and count_file.exists() else rec.seq
    log = open(state / f"{node}.log", "a") if state else None
    run = secrets.token_hex(4)
    logged = -1
    if log is not None:  # seqs past what the spool kept (cut, deleted) hold nothing of ours any more
        log.write(f"s {spool.last_seq}\n")

    def rebase(after: int) -> None:
        if log is not None:  # seqs a rebase jumps over hold nothing
            log.write(f"j {rec.seq} {after}\n")
        rec.resume(after, rec.clock_dict())

    def log_acks() -> None:
        nonlocal logged
        if log is not None and spool.acked != logged:
            logged = spool.acked
            log.write(f"a {spool.acked}\n")
            log.flush()

    shipper = Shipper(spool, (host, int(port)), token=token, node=node, session=session,
                      backoff=(0.02, 0.3), timeout=2.0, on_rebase=rebase)
    shipper.start()
    while done < int(total):
        seq = rec.seq + 1
        tag = f"{node}:{run}:{seq}"
        rec.record(SpanKind.LOG, "tick", trace=f"{node}-{done + 1}", blobs={"input": rec.blob(tag.encode())})
        done += 1
        if log is not None and count_file is not None:
            log.write(f"r {seq} {tag}\n")
            log.flush()
            count_file.write_text(str(done))
        spool.flush()
        shipper.poke()
        log_acks()
        await asyncio.sleep(int(pace_ms) / 1000)
    ok = await shipper.flush(60)
    log_acks()
    await shipper.stop()
    spool.close()
    if log is not None:
        log.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
