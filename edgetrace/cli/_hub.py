"""Run the hub: agents connect, ship their spans, and the hub stores each acknowledged
record exactly once in DATA/<session>.ets. Listens on loopback unless told otherwise;
a non-loopback address needs a token (--token or EDGETRACE_TOKEN)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys

from edgetrace._errors import UsageError
from edgetrace._session import FsyncPolicy


def parse_address(text: str, *, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"bad address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:{default_port}")
    return host or "127.0.0.1", int(port)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default="127.0.0.1:7411", metavar="HOST:PORT",
                   help="address to listen on (default 127.0.0.1:7411; port 0 picks a free one)")
    p.add_argument("--data", default=os.environ.get("EDGETRACE_DATA", "sessions"), metavar="DIR",
                   help="folder for session files (default $EDGETRACE_DATA or ./sessions)")
    p.add_argument("--token", default=os.environ.get("EDGETRACE_TOKEN", ""),
                   help="shared token agents must present (default $EDGETRACE_TOKEN)")
    p.add_argument("--fsync", default="frame", choices=[f.value for f in FsyncPolicy],
                   help="force data to disk before each ack (frame, default), at close, or never")
    p.add_argument("--max-frame", type=int, default=16 * 1024 * 1024, metavar="BYTES",
                   help="largest frame accepted from an agent (default 16 MiB)")
    p.add_argument("-v", "--verbose", action="store_true", help="log connections and refusals")


def run(args: argparse.Namespace) -> int:
    from edgetrace._hub import Hub

    host, port = parse_address(args.listen, default_port=7411)
    if not _loopback(host) and not args.token:
        raise UsageError(f"refusing to listen on {host} without a token: set --token or EDGETRACE_TOKEN")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="hub: %(message)s")
    hub = Hub(args.data, host=host, port=port, token=args.token, max_frame=args.max_frame, fsync=args.fsync)

    async def main() -> None:
        bound = await hub.start()
        print(f"edgetrace hub listening on {bound[0]}:{bound[1]}, writing sessions to {args.data}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        serve = asyncio.create_task(hub.serve_forever())
        await stop.wait()
        serve.cancel()
        hub.close()
        s = hub.stats
        print(f"edgetrace hub stopped: {s.records} records stored, {s.duplicates} duplicates dropped, "
              f"{len(s.sessions)} session(s)", flush=True)

    try:
        asyncio.run(main())
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return 0
