"""Live-path benchmarks (issue 3), baseline and candidate side by side in one run.

1. Cost of recording one step on a node (span + clock tick + encode + spool append) vs an
   OpenTelemetry SDK span with a BatchSpanProcessor and a discarding exporter. Goal ≤ 0.25×.
2. Hub ingest over loopback TCP, persisted and deduplicated, from several agent processes,
   vs the raw decode ceiling of the same frames with msgpack and msgspec. Goal ≥ 500k records/s.

Run: python bench/bench_live.py [--steps 50000] [--agents 4] [--records 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from edgetrace._records import Span, SpanKind

AGRI_ATTRS = {"gen_ai.operation.name": "text_completion", "gen_ai.request.model": "event_extractor",
              "gen_ai.usage.output_tokens": 14, "edgetrace.output": {"type": "weed_detected", "confidence": 0.93}}
SMALL_ATTRS = {"n": 1}  # a log-sized step, close to the ~150 B records of DESIGN.md's decode ceiling


def _median_rate(fn: Any, n: int, repeats: int) -> float:
    """Median µs per operation over `repeats` runs of `n` operations."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        times.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(times)


# --- 1. recording cost ---------------------------------------------------------------------------


def bench_record(steps: int, repeats: int) -> dict[str, float]:
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from edgetrace.agents._recorder import Recorder
    from edgetrace.agents._spool import Spool

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 16))
    tracer = provider.get_tracer("bench")

    def otel(n: int) -> None:
        for i in range(n):
            with tracer.start_as_current_span("infer event_extractor", kind=otel_trace.SpanKind.INTERNAL) as span:
                span.set_attributes({k: str(v) for k, v in AGRI_ATTRS.items()})
                span.set_attribute("i", i)

    tmp = tempfile.TemporaryDirectory()
    spool = Spool(Path(tmp.name) / "node.spool")
    recorder = Recorder("tractor-01", spool)

    def ours(n: int) -> None:
        record = recorder.record
        for i in range(n):
            # every fourth step is a receive that merges another node's clock
            merge = {"hub": i, "tractor-02": i // 2} if i % 4 == 0 else None
            record(SpanKind.INFER, "event_extractor", trace="tractor-01/f0001", parent="tractor-01:1",
                   start=i * 1000, end=i * 1000 + 400, attrs=AGRI_ATTRS, merge=merge)

    ours(1000)
    otel(1000)
    results = {"edgetrace_us": [], "otel_us": []}
    for _ in range(repeats):  # interleaved, so both see the same machine noise
        results["edgetrace_us"].append(_median_rate(ours, steps, 1))
        results["otel_us"].append(_median_rate(otel, steps, 1))
    provider.shutdown()
    spool.close()
    tmp.cleanup()
    e, o = statistics.median(results["edgetrace_us"]), statistics.median(results["otel_us"])
    return {"edgetrace_us": e, "otel_us": o, "ratio": e / o}


# --- 2. hub ingest -------------------------------------------------------------------------------


def _batches(node: str, records: int, batch: int, attrs: dict[str, Any] = AGRI_ATTRS) -> list[bytes]:
    from edgetrace._codec import encode_spans
    from edgetrace._wire import Records, encode_hub

    frames = []
    for lo in range(1, records + 1, batch):
        spans = [Span(node=node, seq=s, kind=SpanKind.INFER, name="event_extractor", trace=f"{node}/f{s // 8:05d}",
                      parent=f"{node}:{s - 1}" if s > 1 else "", start=s * 1000, end=s * 1000 + 400,
                      vc={"hub": s // 3} if s % 4 == 0 else {}, attrs=attrs)
                 for s in range(lo, min(lo + batch, records + 1))]
        # as the Shipper sends them: zlib level 1, stored by the hub as they come
        frames.append(encode_hub(Records(spans=zlib.compress(encode_spans(spans), 1), zlib=True)))
    return frames


def _agent(port: int, node: str, records: int, batch: int, start: Any, done: Any, attrs: dict[str, Any]) -> None:
    from edgetrace._wire import Ack, Hello, decode_hub, encode_hub, read_frame

    frames = _batches(node, records, batch, attrs)

    async def main() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(encode_hub(Hello(token="bench", node=node, session="bench")))
        await read_frame(reader)
        start.wait()
        window = 8  # frames in flight, as the shipper pipelines them
        acked = 0
        sent = 0
        while acked < len(frames):
            while sent < len(frames) and sent - acked < window:
                writer.write(frames[sent])
                sent += 1
            await writer.drain()
            msg = decode_hub(await read_frame(reader))
            assert isinstance(msg, Ack)
            acked += 1
        writer.close()
        done.put(node)

    asyncio.run(main())


def _hub(data: str, port_q: Any, fsync: str) -> None:
    from edgetrace._hub import Hub

    async def main() -> None:
        hub = Hub(data, port=0, token="bench", fsync=fsync)
        _, port = await hub.start()
        port_q.put(port)
        await hub.serve_forever()

    asyncio.run(main())


def bench_ingest(agents: int, records: int, batch: int, fsync: str, attrs: dict[str, Any]) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as data:
        port_q, done = ctx.Queue(), ctx.Queue()
        hub = ctx.Process(target=_hub, args=(data, port_q, fsync), daemon=True)
        hub.start()
        port = port_q.get(timeout=30)
        start = ctx.Event()
        per = records // agents
        procs = [ctx.Process(target=_agent, args=(port, f"tractor-{i:02d}", per, batch, start, done, attrs))
                 for i in range(agents)]
        for p in procs:
            p.start()
        time.sleep(1.5)  # let every agent encode its frames and say hello
        t0 = time.perf_counter()
        start.set()
        for _ in procs:
            done.get(timeout=120)  # an agent that died (hub refused it) fails the run here
        elapsed = time.perf_counter() - t0
        for p in procs:
            p.join()
        hub.terminate()
        hub.join()
        from edgetrace import Session

        session = Session(Path(data) / "bench.ets")
        stored = len(session.spans)
        assert stored == per * agents, (stored, per * agents)
    return {"records_per_s": stored / elapsed, "stored": stored}


def bench_decode_ceiling(records: int, batch: int, attrs: dict[str, Any]) -> dict[str, float]:
    import msgpack
    import msgspec

    from edgetrace._codec import encode_spans

    payloads = []
    for lo in range(1, records + 1, batch):
        spans = [Span(node="n", seq=s, kind=SpanKind.INFER, name="event_extractor", trace=f"n/f{s // 8:05d}",
                      start=s, end=s + 400, attrs=attrs) for s in range(lo, min(lo + batch, records + 1))]
        payloads.append(encode_spans(spans))
    size = sum(map(len, payloads)) / records
    dec = msgspec.msgpack.Decoder(list[Span])
    out = {}
    for name, fn in (("msgpack", lambda b: msgpack.unpackb(b, raw=False)), ("msgspec", dec.decode)):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for p in payloads:
                fn(p)
            times.append(time.perf_counter() - t0)
        out[f"{name}_per_s"] = records / statistics.median(times)
    out["bytes"] = size
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--records", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    r = bench_record(args.steps, args.repeats)
    print(f"record one step       edgetrace {r['edgetrace_us']:.2f} µs   OTel SDK span {r['otel_us']:.2f} µs   "
          f"ratio {r['ratio']:.2f}×  (goal ≤ 0.25×)")
    for label, attrs in (("agri-sized", AGRI_ATTRS), ("log-sized", SMALL_ATTRS)):
        ceiling = bench_decode_ceiling(args.records // 2, args.batch, attrs)
        print(f"{label} records ({ceiling['bytes']:.0f} B): decode ceiling msgpack "
              f"{ceiling['msgpack_per_s'] / 1e3:,.0f}k rec/s, msgspec {ceiling['msgspec_per_s'] / 1e3:,.0f}k rec/s")
        for fsync in ("frame", "never"):
            runs = [bench_ingest(args.agents, args.records, args.batch, fsync, attrs) for _ in range(3)]
            rate = statistics.median(x["records_per_s"] for x in runs)
            print(f"  hub ingest fsync={fsync:<5}  {rate / 1e3:,.0f}k rec/s persisted+deduplicated, {args.agents} "
                  f"agent processes ({rate / ceiling['msgspec_per_s']:.2f}× the msgspec decode ceiling; "
                  "goal ≥ 500k/s)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
