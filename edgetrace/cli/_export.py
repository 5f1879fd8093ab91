"""Send a session to an OpenTelemetry backend (Jaeger, Tempo, a collector) over OTLP.

Every span keeps a stable trace and span id, its parent, its vector clock (attribute
`edgetrace.vclock`) and a link to the send that caused it; inference spans follow the GenAI
conventions. Options left out come from the usual OTEL_EXPORTER_OTLP_* variables (endpoint,
protocol, headers, timeout). See docs/otel.md."""

from __future__ import annotations

import argparse
import logging
import sys

import msgspec

from edgetrace._errors import EdgeTraceError


class ExportError(EdgeTraceError):
    """The backend did not take (all of) the session; the message says how many spans and why."""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", help="session file (.ets)")
    p.add_argument("--otlp", metavar="URL",
                   help="OTLP endpoint, e.g. http://localhost:4318 (http/protobuf) or "
                   "http://localhost:4317 (grpc); default $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or "
                   "$OTEL_EXPORTER_OTLP_ENDPOINT")
    p.add_argument("--protocol", choices=["grpc", "http/protobuf"],
                   help="OTLP transport (default $OTEL_EXPORTER_OTLP_PROTOCOL or http/protobuf)")
    p.add_argument("--header", action="append", default=[], metavar="K=V",
                   help="header sent with every request, e.g. authorization=Bearer… (repeatable; "
                   "default $OTEL_EXPORTER_OTLP_HEADERS)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="per-request timeout (default $OTEL_EXPORTER_OTLP_TIMEOUT or 10 s)")
    p.add_argument("--batch", type=int, default=512, metavar="N", help="spans per request (default 512)")
    p.add_argument("--id-namespace", default="", metavar="TEXT",
                   help="mix TEXT into derived trace/span ids, so two exports of sessions with the "
                   "same trace ids (a recording and its replay) do not merge in the backend")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    p.add_argument("--salvage", action="store_true",
                   help="skip damaged frames (with a warning that counts what is missing) instead of refusing "
                   "the session")


def run(args: argparse.Namespace) -> int:
    from edgetrace._otlp import export_session, make_exporter
    from edgetrace.cli._hub import parse_headers
    from edgetrace.cli._progress import progress_bar

    if args.batch < 1:
        raise EdgeTraceError(f"--batch must be at least 1, got {args.batch}")
    from edgetrace.cli._show import open_session

    session = open_session(args.session, args.salvage)
    headers = parse_headers(args.header)
    # the exporters log each failed attempt; keep that to one line per problem on stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="export: %(message)s")
    exporter = make_exporter(args.protocol, args.otlp, headers=headers, timeout=args.timeout)
    try:
        with progress_bar(f"exporting {len(session)} spans", enabled=not args.json) as update:
            summary = export_session(session, exporter, batch_size=args.batch,
                                     namespace=args.id_namespace, progress=update)
    finally:
        exporter.shutdown()
    endpoint = getattr(exporter, "_endpoint", None) or args.otlp or "(from environment)"
    if args.json:
        data = {"session": str(session.path), "endpoint": str(endpoint),
                "protocol": "grpc" if "grpc" in type(exporter).__module__ else "http/protobuf",
                **summary.as_dict()}
        sys.stdout.write(msgspec.json.encode(data, order="deterministic").decode() + "\n")
    else:
        rate = summary.exported / summary.seconds if summary.seconds else 0.0
        sys.stdout.write(f"exported {summary.exported} of {summary.spans} spans ({summary.traces} traces) "
                         f"to {endpoint} in {summary.seconds:.2f}s ({rate:,.0f} spans/s)\n")
    if not summary.ok:
        raise ExportError(f"{summary.failed} of {summary.spans} spans were not accepted by {endpoint}: "
                          f"{summary.errors[0] if summary.errors else 'unknown error'}")
    return 0
