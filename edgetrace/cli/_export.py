"""Export a session: to an OpenTelemetry backend over OTLP (Jaeger, Tempo, Phoenix, a
collector), as MCAP for robotics tools (Foxglove), or as Parquet for SQL.

Over OTLP every span keeps a stable trace and span id (derived from the session's identity,
so a replay never merges with its recording), its parent, its vector clock (attribute
`edgetrace.vclock`) and a link to the send that caused it; inference spans follow the GenAI
conventions and OpenInference. Options left out come from the usual OTEL_EXPORTER_OTLP_*
variables. See docs/otel.md (OTLP), docs/robotics.md (MCAP) and docs/cli.md (Parquet)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import msgspec

from edgetrace._errors import EdgeTraceError, UsageError
from edgetrace._session import Session

EXAMPLES = """\
edgetrace export run.ets --otlp http://localhost:4318
edgetrace export run.ets --otlp http://localhost:4317 --protocol grpc --capture-content
edgetrace export run.ets --mcap run.mcap
edgetrace export run.ets --parquet run-tables/
OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 edgetrace export run.ets --json"""


class ExportError(EdgeTraceError):
    """The backend did not take (all of) the session; the message says how many spans and why."""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", help="session file (.ets)")
    p.add_argument("--otlp", metavar="URL",
                   help="OTLP endpoint, e.g. http://localhost:4318 (http/protobuf) or "
                   "http://localhost:4317 (grpc); default $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or "
                   "$OTEL_EXPORTER_OTLP_ENDPOINT (OTLP is the default when no --mcap/--parquet is given)")
    p.add_argument("--mcap", metavar="OUT", help="write the session as an MCAP file (Foxglove; needs edgetrace[mcap])")
    p.add_argument("--parquet", metavar="DIR", help="write spans.parquet and sessions.parquet into DIR "
                   "(needs edgetrace[sql])")
    p.add_argument("--protocol", choices=["grpc", "http/protobuf"],
                   help="OTLP transport (default $OTEL_EXPORTER_OTLP_PROTOCOL or http/protobuf)")
    p.add_argument("--header", action="append", default=[], metavar="K=V",
                   help="header sent with every request, e.g. authorization=Bearer… (repeatable; "
                   "default $OTEL_EXPORTER_OTLP_HEADERS)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="per-request timeout (default $OTEL_EXPORTER_OTLP_TIMEOUT or 10 s)")
    p.add_argument("--batch", type=int, default=512, metavar="N", help="spans per request (default 512)")
    p.add_argument("--id-namespace", default=None, metavar="TEXT",
                   help="derive trace/span ids from TEXT instead of the session's identity")
    p.add_argument("--capture-content", action="store_true", default=None,
                   help="also send prompts and decision inputs from the session's payloads (GenAI "
                   "gen_ai.input.messages, OpenInference input.value; default "
                   "$OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)")
    p.add_argument("--content-limit", type=int, default=16 * 1024, metavar="BYTES",
                   help="largest captured content attribute (default 16384)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="a model file to attach to the MCAP (matched by sha256; installed scenarios are found)")
    p.add_argument("--policy", action="append", default=[], metavar="NAME=PATH",
                   help="a policy file to attach to the MCAP (matched by sha256)")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    p.add_argument("--salvage", action="store_true",
                   help="skip damaged frames (with a warning that counts what is missing) instead of refusing "
                   "the session")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    found = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"bad --{what} {item!r}: expected NAME=PATH")
        found[name] = path
    return found


def run(args: argparse.Namespace) -> int:
    from edgetrace.cli._progress import progress_bar

    if args.batch < 1:
        raise UsageError(f"--batch must be at least 1, got {args.batch}")
    if args.content_limit < 128:
        raise UsageError(f"--content-limit must be at least 128 bytes, got {args.content_limit}")
    from edgetrace.cli._show import open_session

    session = open_session(args.session, args.salvage)
    report: dict[str, Any] = {"session": str(session.path)}
    lines: list[str] = []
    if args.mcap:
        from edgetrace._mcap import export_mcap

        with progress_bar(f"writing MCAP ({len(session)} spans)", enabled=not args.json) as update:
            mcap = export_mcap(session, args.mcap, models=_pairs(args.model, "model"),
                               policies=_pairs(args.policy, "policy"), progress=update)
        report["mcap"] = mcap.as_dict()
        lines.append(f"wrote {mcap.messages} messages on {mcap.channels} channels to {mcap.path} "
                     f"({len(mcap.attachments)} attachments"
                     + (f"; not found: {', '.join(mcap.missing)}" if mcap.missing else "") + ")")
    if args.parquet:
        from edgetrace._parquet import export_parquet

        with progress_bar(f"writing Parquet ({len(session)} spans)", enabled=not args.json) as update:
            tables = export_parquet([session], args.parquet, progress=update)
        report["parquet"] = tables
        lines.append(f"wrote {tables['spans']} spans to {tables['files']['spans']} and the manifest to "
                     f"{tables['files']['sessions']}")
    failure = None
    if args.otlp or not (args.mcap or args.parquet):
        failure = _otlp(args, session, report, lines)
    if args.json:
        data = report if (args.mcap or args.parquet) else report.get("otlp", report)
        sys.stdout.write(msgspec.json.encode(data, order="deterministic").decode() + "\n")
    else:
        sys.stdout.write("".join(line + "\n" for line in lines))
    if failure:
        raise ExportError(failure)
    return 0


def _otlp(args: argparse.Namespace, session: Session, report: dict[str, Any], lines: list[str]) -> str:
    """Send the session over OTLP; return "" or the one-line failure."""
    from edgetrace._otlp import capture_from_env, export_session, make_exporter
    from edgetrace._otlp.exporter import resolve_protocol
    from edgetrace.cli._net import parse_headers
    from edgetrace.cli._progress import progress_bar

    protocol = resolve_protocol(args.protocol)
    if not args.otlp and not (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                              or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        raise UsageError("nowhere to export to: give --otlp URL (or set OTEL_EXPORTER_OTLP_ENDPOINT), "
                         "--mcap OUT or --parquet DIR")
    headers = parse_headers(args.header)
    exporter = make_exporter(protocol, args.otlp, headers=headers, timeout=args.timeout)
    capture = capture_from_env() if args.capture_content is None else args.capture_content
    try:
        with progress_bar(f"exporting {len(session)} spans", enabled=not args.json) as update:
            summary = export_session(session, exporter, batch_size=args.batch, namespace=args.id_namespace,
                                     capture=capture, content_limit=args.content_limit, progress=update)
    finally:
        exporter.shutdown()
    endpoint = getattr(exporter, "_endpoint", None) or args.otlp or "(from environment)"
    report["otlp"] = {"session": str(session.path), "endpoint": str(endpoint), "protocol": protocol,
                      **summary.as_dict()}
    rate = summary.exported / summary.seconds if summary.seconds else 0.0
    lines.append(f"exported {summary.exported} of {summary.spans} spans ({summary.traces} traces) "
                 f"to {endpoint} in {summary.seconds:.2f}s ({rate:,.0f} spans/s)")
    if summary.ok:
        return ""
    return (f"{summary.failed} of {summary.spans} spans were not accepted by {endpoint}: "
            f"{summary.errors[0] if summary.errors else 'unknown error'}")
