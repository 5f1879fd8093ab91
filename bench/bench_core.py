"""Core benchmarks (issue 2): session size vs OTLP, clock bytes, happens-before, throughput.

Run: python bench/bench_core.py [--records 1000000] [--nodes 1000] [--topology fleet|mesh|both]
Everything is measured in this one run, side by side; figures are medians. The default is the
fleet: this benchmark holds every generated span, and the 1M-record mesh's (≈ 100M clock
entries in dicts) do not fit in 24 GB — bench/bench_mesh.py streams the mesh instead.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgspec
from _synth import synth_spans

from edgetrace import Manifest, Session, SessionWriter
from edgetrace._compact import compact


def otlp_bytes_per_span(spans) -> float:
    """Encode the same spans as OTLP protobuf (ExportTraceServiceRequest), grouped per node."""
    import hashlib

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

    def kv(k, v):
        return KeyValue(key=k, value=AnyValue(string_value=str(v)))

    by_node = {}
    for s in spans:
        by_node.setdefault(s.node, []).append(s)
    req = ExportTraceServiceRequest()
    for node, items in by_node.items():
        rs = ResourceSpans(resource=Resource(attributes=[kv("service.name", "bench"), kv("service.instance.id", node)]))
        ss = ScopeSpans(scope=InstrumentationScope(name="edgetrace"))
        for s in items:
            pb = PbSpan(
                trace_id=hashlib.blake2b(s.trace.encode(), digest_size=16).digest(),
                span_id=hashlib.blake2b(s.ref.encode(), digest_size=8).digest(),
                name=s.name, start_time_unix_nano=1_700_000_000_000_000_000 + s.start,
                end_time_unix_nano=1_700_000_000_000_000_000 + s.end,
                attributes=[kv("edgetrace.kind", s.kind.value), kv("edgetrace.seq", s.seq)]
                + [kv(k, v) for k, v in s.attrs.items()],
            )
            if s.cause:
                pb.links.add(trace_id=pb.trace_id, span_id=hashlib.blake2b(s.cause.encode(), digest_size=8).digest())
            ss.spans.append(pb)
        rs.scope_spans.append(ss)
        req.resource_spans.append(rs)
    return len(req.SerializeToString()) / len(spans)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--topology", choices=["fleet", "mesh", "both"], default="fleet")
    args = ap.parse_args()
    for topology in (["fleet", "mesh"] if args.topology == "both" else [args.topology]):
        run(args.records, args.nodes, topology)
        print()


_RSS_CHILD = """
import resource, sys
from edgetrace import Session
session = Session(sys.argv[1])
session.index
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def read_rss_mb(path: Path) -> float:
    """Peak RSS of opening and indexing the session, alone: this process holds the generated spans."""
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def run(records: int, nodes: int, topology: str) -> None:
    t0 = time.perf_counter()
    spans = list(synth_spans(records, nodes, seed=7, topology=topology))
    gen_s = time.perf_counter() - t0
    print(f"== {topology}: {len(spans):,} records, {nodes:,} nodes (generated in {gen_s:.1f} s)")

    enc = msgspec.msgpack.Encoder(order="deterministic")
    vc_sizes = sorted(len(enc.encode(s.vc)) for s in spans)
    print(f"vector clock bytes/record: median {statistics.median(vc_sizes):.0f} B, "
          f"p99 {vc_sizes[int(len(vc_sizes) * 0.99)]} B, mean {statistics.fmean(vc_sizes):.2f} B  (goal: median ≤ 8 B)")
    full = [len(enc.encode({**s.vc, s.node: s.seq})) for s in spans[:: max(1, len(spans) // 20000)]]
    print(f"  (an undeltaed map of the entries known so far would cost median {statistics.median(full):.0f} B)")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.ets"
        batch = 1000
        t0 = time.perf_counter()
        with SessionWriter(path, Manifest(app="bench", nodes=[])) as w:
            for i in range(0, len(spans), batch):
                w.append(spans[i : i + batch])
        write_s = time.perf_counter() - t0
        size = os.path.getsize(path)
        t0 = time.perf_counter()
        session = Session(path)
        read_s = time.perf_counter() - t0
        assert len(session) == len(spans)
        t0 = time.perf_counter()
        index = session.index
        index_s = time.perf_counter() - t0

        sample = spans[:: max(1, len(spans) // 20000)]
        otlp = otlp_bytes_per_span(sample)
        ours = size / len(spans)
        print(f"session bytes/record, live (zlib 1, as the hub writes): {ours:.1f} B vs OTLP protobuf "
              f"{otlp:.1f} B/span → ratio {ours / otlp:.3f}×")
        with SessionWriter(path) as w:
            w.seal()
        t0 = time.perf_counter()
        compact(path)
        compact_s = time.perf_counter() - t0
        packed = os.path.getsize(path) / len(spans)
        t0 = time.perf_counter()
        assert len(Session(path)) == len(spans)
        packed_read_s = time.perf_counter() - t0
        print(f"session bytes/record, sealed + compacted (zstd): {packed:.1f} B → ratio {packed / otlp:.3f}× OTLP "
              f"(goal ≤ 0.4×); compaction {len(spans) / compact_s:,.0f} records/s, "
              f"read {len(spans) / packed_read_s:,.0f} records/s")
        print(f"read + causal index in a fresh process: peak RSS {read_rss_mb(path):,.0f} MB "
              f"(goal for the 1M mesh: ≤ 4,096 MB)")
        print(f"session write: {len(spans) / write_s:,.0f} records/s ({write_s:.2f} s, batches of {batch})")
        print(f"session full read (decode + CRC): {len(spans) / read_s:,.0f} records/s ({read_s:.2f} s); "
              f"causal index build {len(spans) / index_s:,.0f} records/s ({index_s:.2f} s)")

        rng = random.Random(3)
        refs = [(rng.choice(spans).ref, rng.choice(spans).ref) for _ in range(20000)]
        timings = []
        hb = index.happens_before
        for _ in range(5):
            t0 = time.perf_counter()
            for a, b in refs:
                hb(a, b)
            timings.append((time.perf_counter() - t0) / len(refs) * 1e6)
        print(f"happens_before query: median {statistics.median(timings):.2f} µs over 5×20,000 random pairs "
              f"(goal ≤ 5 µs)")
        focus = rng.choice(spans)
        t0 = time.perf_counter()
        past = index.causal_past(focus)
        fut = index.causal_future(focus)
        print(f"causal past+future of one record ({len(past):,} + {len(fut):,} records): "
              f"{(time.perf_counter() - t0) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
