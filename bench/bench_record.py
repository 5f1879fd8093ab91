"""Record cost of the whole step path (issue 17, item 3), side by side with the OpenTelemetry SDK.

A handler running in a `NodeRuntime` calls `ctx.log(...)` N times; each call is what every
step costs the app: the step key, the pace hook of the world, the app line that issued it
(`edgetrace.code`), the vector-clock tick, the span, and the spool append (encode + buffered
write, as a live agent does). The baseline is an OpenTelemetry SDK span with the same
attributes, a BatchSpanProcessor and a discarding exporter, in the same run.

Run: python bench/bench_record.py [--steps 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ATTRS = {"model": "event_extractor", "tokens": 14, "type": "weed_detected", "confidence": 0.93}


def edgetrace_step_us(steps: int, spool_dir: Path) -> float:
    from edgetrace.agents import App, Context
    from edgetrace.agents._node import NodeRuntime
    from edgetrace.agents._spool import Spool
    from edgetrace.agents._world import MemoryWorld

    app = App("bench")
    spent: list[float] = []

    @app.on("go", nodes="n")
    async def go(ctx: Context, payload: Any) -> None:
        t0 = time.perf_counter()
        for _ in range(steps):
            ctx.log("step", **ATTRS)
        spent.append(time.perf_counter() - t0)

    world = MemoryWorld()
    world.sink = Spool(spool_dir / f"n-{time.monotonic_ns()}.spool")
    runtime = NodeRuntime(app, "n", world)

    async def main() -> None:
        runtime.inject("go", None, "t-1")
        while runtime.tasks:
            await asyncio.gather(*runtime.tasks)

    asyncio.run(main())
    world.sink.close()
    return spent[0] / steps * 1e6


def otel_span_us(steps: int) -> float:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 16))
    tracer = provider.get_tracer("bench")
    t0 = time.perf_counter()
    for _ in range(steps):
        with tracer.start_as_current_span("log step") as span:
            span.set_attributes(ATTRS)
    took = time.perf_counter() - t0
    provider.shutdown()
    return took / steps * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        edgetrace_step_us(1000, Path(tmp))
        otel_span_us(1000)
        for _ in range(args.repeats):  # interleaved: both see the same machine noise
            ours.append(edgetrace_step_us(args.steps, Path(tmp)))
            theirs.append(otel_span_us(args.steps))
    e, o = statistics.median(ours), statistics.median(theirs)
    print(f"record cost, whole step path (ctx.log → spool)   {e:.2f} µs/step  vs OTel SDK span {o:.1f} µs "
          f"→ {e / o:.2f}×  (goal ≤ 2 µs; ros2_tracing's LTTng path ≈ 3.3 µs/message)")


if __name__ == "__main__":
    main()
