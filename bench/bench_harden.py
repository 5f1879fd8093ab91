"""What strangers cost the hub, and what TLS costs an agent (issue 14), each with its baseline in the same run.

Run: python bench/bench_harden.py [--old DIR] [--connections 200] [--attempts 2000] [--spans 20000]

1. hub RSS with N unauthenticated connections, each claiming a 16 MiB hello and sending
   1 MiB of it (goal: <= 64 MiB);
2. the hub's file descriptors under a 1,024 limit while 2,000 connections are attempted and
   left idle, and whether a good agent still ships 300 spans (and how long it takes);
3. ingest throughput of one agent shipping over TLS vs plain TCP to an in-process hub
   (medians of 5 alternating runs, and their ratio).

With --old DIR (a checkout of the code before, e.g. `git archive daba3d9 | tar -x -C DIR`),
1 and 2 run against that hub too, as the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hub(code: Path, data: Path, *, nofile: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen([sys.executable, "-m", "edgetrace", "hub", "--listen", f"127.0.0.1:{port}", "--data",
                             str(data)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=limit,
                            env={**os.environ, "EDGETRACE_TOKEN": TOKEN, "PYTHONPATH": str(code)}, cwd=data.parent)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc, port


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


async def _knock(port: int) -> asyncio.StreamWriter | None:
    try:
        return (await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3))[1]
    except (OSError, TimeoutError):
        return None


async def _strangers(port: int, n: int, *, send: int) -> list[asyncio.StreamWriter]:
    crowd = [w for w in await asyncio.gather(*(_knock(port) for _ in range(n))) if w is not None]
    for w in crowd:
        if send:
            w.write(struct.pack(">I", 16 * 1024 * 1024) + b"\0" * send)
    for w in crowd:
        try:
            await asyncio.wait_for(w.drain(), 1)
        except (OSError, TimeoutError):
            pass
    return crowd


def _spool(path: Path, n: int) -> object:
    from edgetrace import SpanKind
    from edgetrace.agents import Recorder
    from edgetrace.agents._spool import Spool

    spool = Spool(path)
    rec = Recorder("good", spool)
    for i in range(n):
        rec.record(SpanKind.LOG, "step", trace=f"t{i}", attrs={"i": i})
    spool.flush()
    return spool


async def _ship(spool: object, transport: object, timeout: float) -> tuple[bool, float]:
    from edgetrace.agents._shipper import Shipper

    shipper = Shipper(spool, transport, token=TOKEN, node="good", session="bench",  # type: ignore[arg-type]
                      backoff=(0.02, 0.2), timeout=3.0)
    t0 = time.perf_counter()
    shipper.start()
    ok = await shipper.flush(timeout)
    took = time.perf_counter() - t0
    await shipper.stop()
    return ok, took


def memory(code: Path, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        hub, port = _hub(code, Path(tmp) / "data")
        try:
            start = _rss_mib(hub.pid)

            async def main() -> float:
                crowd = await _strangers(port, n, send=1024 * 1024)
                await asyncio.sleep(1.5)
                rss = _rss_mib(hub.pid)
                for w in crowd:
                    w.close()
                return rss

            return {"start": start, "crowd": asyncio.run(main())}
        finally:
            hub.kill()
            hub.wait()


def descriptors(code: Path, attempts: int) -> dict[str, float]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, attempts + 1024), hard))
    with tempfile.TemporaryDirectory() as tmp:
        hub, port = _hub(code, Path(tmp) / "data", nofile=1024)
        peak = 0
        try:
            async def main() -> tuple[bool, float, int]:
                nonlocal peak
                crowd: list[asyncio.StreamWriter] = []
                for _ in range(attempts // 100):
                    crowd += await _strangers(port, 100, send=0)
                    peak = max(peak, _fds(hub.pid))
                from edgetrace._transport import TcpTransport

                spool = _spool(Path(tmp) / "good.spool", 300)
                shipping = asyncio.ensure_future(_ship(spool, TcpTransport("127.0.0.1", port, timeout=3), 30))
                while not shipping.done():
                    peak = max(peak, _fds(hub.pid))
                    await asyncio.sleep(0.05)
                ok, took = shipping.result()
                spool.close()  # type: ignore[attr-defined]
                for w in crowd:
                    w.close()
                return ok, took, len(crowd)

            ok, took, established = asyncio.run(main())
            return {"peak_fds": peak, "shipped": float(ok), "ship_s": took, "established": established,
                    "alive": float(hub.poll() is None)}
        finally:
            hub.kill()
            hub.wait()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _pki(folder: Path) -> tuple[Path, Path, Path]:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
        str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=bench-ca")
    cert, key, csr, ext = folder / "hub.pem", folder / "hub.key", folder / "hub.csr", folder / "hub.ext"
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
        str(csr), "-subj", "/CN=hub")
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert),
        "-days", "2", "-extfile", str(ext))
    return ca, cert, key


def tls_throughput(spans: int, repeats: int) -> dict[str, float]:
    from edgetrace._credentials import client_context, server_context
    from edgetrace._hub import Hub
    from edgetrace._transport import TcpTransport

    rates: dict[str, list[float]] = {"plain": [], "tls": []}
    with tempfile.TemporaryDirectory() as tmp:
        ca, cert, key = _pki(Path(tmp))
        for r in range(repeats):
            for kind in (("plain", "tls") if r % 2 == 0 else ("tls", "plain")):
                async def main(kind: str = kind, r: int = r) -> float:
                    hub = Hub(Path(tmp) / f"data-{kind}-{r}", port=0, token=TOKEN, fsync="never",
                              ssl=server_context(cert, key) if kind == "tls" else None)
                    await hub.start()
                    spool = _spool(Path(tmp) / f"{kind}-{r}.spool", spans)
                    transport = TcpTransport("127.0.0.1", hub.port, ssl=client_context(ca) if kind == "tls" else None)
                    ok, took = await _ship(spool, transport, 300)
                    assert ok
                    spool.close()  # type: ignore[attr-defined]
                    hub.close()
                    return spans / took

                rates[kind].append(asyncio.run(main()))
    plain, tls = statistics.median(rates["plain"]), statistics.median(rates["tls"])
    return {"plain": plain, "tls": tls, "ratio": tls / plain}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="a checkout of the code before, for the baseline hub")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--spans", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    codes = {"this build": ROOT, **({"before": args.old.resolve()} if args.old else {})}
    for name, code in codes.items():
        m = memory(code, args.connections)
        print(f"[{name}] hub RSS: {m['start']:.1f} MiB at start, {m['crowd']:.1f} MiB with {args.connections} "
              "unauthenticated connections each sending 1 MiB of a claimed 16 MiB hello", flush=True)
    for name, code in codes.items():
        d = descriptors(code, args.attempts)
        print(f"[{name}] hub fds under a 1,024 limit, {args.attempts} connection attempts "
              f"({int(d['established'])} established): peak {int(d['peak_fds'])}; a good agent "
              f"{'shipped 300 spans in ' + format(d['ship_s'], '.2f') + ' s' if d['shipped'] else 'did NOT ship'}"
              f"; hub {'alive' if d['alive'] else 'DEAD'}", flush=True)
    if shutil.which("openssl"):
        t = tls_throughput(args.spans, args.repeats)
        print(f"ingest, one agent, {args.spans} spans, median of {args.repeats}: plain TCP {t['plain']:,.0f} spans/s, "
              f"TLS {t['tls']:,.0f} spans/s, TLS/plain = {t['ratio']:.2f}", flush=True)
    else:
        print("TLS throughput: skipped (no openssl to make certificates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
