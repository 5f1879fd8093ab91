"""Run the hub: agents connect, ship their spans, and the hub stores each acknowledged
record exactly once in DATA/<session>.ets. Listens on loopback unless told otherwise;
a non-loopback address needs a token ($EDGETRACE_TOKEN or --token-file: not the command
line, which anyone can read in the process list). --tls-cert serves agents over TLS,
--tls-client-ca requires their certificates too (docs/security.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from edgetrace._discovery import DATA_ENV, DEFAULT_DATA_DIR, data_dir
from edgetrace._errors import UsageError
from edgetrace._session import FsyncPolicy
from edgetrace.cli._net import loopback, parse_address, parse_headers

EXAMPLES = """\
edgetrace hub --data sessions
edgetrace hub --listen 0.0.0.0:7411 --token-file token --tls-cert hub.pem --tls-key hub.key
edgetrace hub --otlp-listen --otlp-grpc-listen --otlp-endpoint http://localhost:4318"""



def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default="127.0.0.1:7411", metavar="HOST:PORT",
                   help="address to listen on (default 127.0.0.1:7411; port 0 picks a free one)")
    p.add_argument("--data", default=str(data_dir()), metavar="DIR",
                   help=f"folder for session files (default ${DATA_ENV}, else {DEFAULT_DATA_DIR})")
    p.add_argument("--token-file", metavar="FILE",
                   help="read the shared token agents must present from FILE (mode 600; default $EDGETRACE_TOKEN)")
    p.add_argument("--token", help=argparse.SUPPRESS)  # visible in the process list: kept for old scripts
    tls = p.add_argument_group("TLS (docs/security.md)")
    tls.add_argument("--tls-cert", metavar="FILE", help="serve agents over TLS with this certificate")
    tls.add_argument("--tls-key", metavar="FILE", help="the key of --tls-cert (default: in the same file)")
    tls.add_argument("--tls-client-ca", metavar="FILE",
                     help="require client certificates signed by this CA (mutual TLS)")
    p.add_argument("--max-connections", type=int, default=512, metavar="N",
                   help="connections at most (default 512; at most 64 may still be saying hello)")
    p.add_argument("--fsync", default="frame", choices=[f.value for f in FsyncPolicy],
                   help="force data to disk before each ack (frame, default), at close, or never")
    p.add_argument("--max-frame", type=int, default=16 * 1024 * 1024, metavar="BYTES",
                   help="largest frame accepted from an agent (default 16 MiB)")
    p.add_argument("-v", "--verbose", action="store_true", help="log connections and refusals")
    otlp = p.add_argument_group("OpenTelemetry (see docs/otel.md)")
    otlp.add_argument("--otlp-endpoint", metavar="URL",
                      help="also forward every stored span to this OTLP endpoint (Jaeger, Tempo, "
                      "a collector), in the background")
    otlp.add_argument("--otlp-protocol", choices=["grpc", "http/protobuf"],
                      help="OTLP transport for --otlp-endpoint (default $OTEL_EXPORTER_OTLP_PROTOCOL "
                      "or http/protobuf)")
    otlp.add_argument("--otlp-header", action="append", default=[], metavar="K=V",
                      help="header sent with every forwarded batch (repeatable)")
    otlp.add_argument("--otlp-listen", nargs="?", const="127.0.0.1:4318", metavar="HOST:PORT",
                      help="accept OTLP/HTTP spans (POST /v1/traces) from OTel services "
                      "(default address 127.0.0.1:4318)")
    otlp.add_argument("--otlp-grpc-listen", nargs="?", const="127.0.0.1:4317", metavar="HOST:PORT",
                      help="accept OTLP/gRPC spans (what opentelemetry-instrument sends by default; "
                      "default address 127.0.0.1:4317; needs edgetrace[grpc])")
    otlp.add_argument("--otlp-capture-content", action="store_true",
                      help="forward prompts and decision inputs too (see docs/otel.md)")
    otlp.add_argument("--otlp-session", default="otel", metavar="ID",
                      help="session for OTLP spans whose trace no agent has shipped (default otel)")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from edgetrace._gate import Limits
    from edgetrace._hub import Hub
    from edgetrace.cli._net import cli_token

    host, port = parse_address(args.listen, default_port=7411)
    args.token = cli_token(args)
    if not loopback(host) and not args.token:
        raise UsageError(f"refusing to listen on {host} without a token: set EDGETRACE_TOKEN or --token-file")
    ssl_context = None
    if args.tls_cert:
        from edgetrace._credentials import server_context

        ssl_context = server_context(args.tls_cert, args.tls_key, client_ca=args.tls_client_ca)
    elif args.tls_key or args.tls_client_ca:
        raise UsageError("--tls-key and --tls-client-ca need --tls-cert")
    if args.max_connections < 1:
        raise UsageError(f"--max-connections must be at least 1, got {args.max_connections}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="hub: %(message)s")
    hub = Hub(args.data, host=host, port=port, token=args.token, max_frame=args.max_frame, fsync=args.fsync,
              ssl=ssl_context, limits=replace(Limits(), max_connections=args.max_connections))
    hooks, forwarder, receiver = _otlp(args, hub)
    if hooks:
        def on_spans(session: str, spans: list[Any]) -> None:
            for hook in hooks:
                try:
                    hook(session, spans)
                except Exception as exc:  # one failing hook must not starve the others
                    logging.getLogger("edgetrace.hub").warning("span hook failed: %s", exc)

        hub.on_spans = on_spans

    async def main() -> None:
        try:
            bound = await hub.start()
        except OSError as exc:  # the address: in use, not ours, not an address
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        print(f"edgetrace hub listening on {bound[0]}:{bound[1]}{' (TLS)' if ssl_context else ''}, writing "
              f"sessions to {args.data}", flush=True)
        if receiver is not None:
            try:
                at = await receiver.start()
            except OSError as exc:
                hub.close()
                raise UsageError(f"cannot listen for OTLP on {receiver.host}:{receiver.port}: "
                                 f"{exc.strerror}") from None
            if receiver.port is not None:
                print(f"edgetrace hub accepting OTLP/HTTP on http://{at[0]}:{at[1]}/v1/traces", flush=True)
            if receiver.grpc_port is not None:
                print(f"edgetrace hub accepting OTLP/gRPC on {receiver.grpc_host}:{receiver.grpc_port}", flush=True)
        if forwarder is not None:
            print(f"edgetrace hub forwarding spans to {args.otlp_endpoint or 'the OTLP endpoint'}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        serve = asyncio.create_task(hub.serve_forever())
        await stop.wait()
        serve.cancel()
        if receiver is not None:
            await receiver.aclose()
        hub.close()
        if forwarder is not None:
            forwarder.close()  # exports what is still queued
        s = hub.stats
        print(f"edgetrace hub stopped: {s.records} records stored, {s.duplicates} duplicates dropped, "
              f"{len(s.sessions)} session(s)" + (f", {s.rejected} refused" if s.rejected else "")
              + (f", {s.lost} lost by agents" if s.lost else "") + (f", {s.rollbacks} rollback(s)" if s.rollbacks else "")
              + (f", {s.busy} batch(es) refused for a full disk" if s.busy else ""), flush=True)

    try:
        asyncio.run(main())
    finally:
        if forwarder is not None:
            forwarder.close()
    return 0


def _otlp(args: argparse.Namespace, hub: Any) -> tuple[list[Any], Any, Any]:
    """The OTLP forwarder and receiver the options ask for, and the on_spans hooks they need."""
    hooks: list[Any] = []
    forwarder = receiver = None
    if args.otlp_listen or args.otlp_grpc_listen:
        from edgetrace._otlp import DEFAULT_OTLP_GRPC_PORT, DEFAULT_OTLP_PORT, OtlpReceiver

        listen: dict[str, Any] = {"port": None}
        for given, default, host_key, port_key in (
                (args.otlp_listen, DEFAULT_OTLP_PORT, "host", "port"),
                (args.otlp_grpc_listen, DEFAULT_OTLP_GRPC_PORT, "grpc_host", "grpc_port")):
            if given:
                ohost, oport = parse_address(given, default_port=default)
                if not loopback(ohost) and not args.token:
                    raise UsageError(f"refusing to accept OTLP on {ohost} without a token: set EDGETRACE_TOKEN or "
                                     "--token-file")
                listen[host_key], listen[port_key] = ohost, oport
        receiver = OtlpReceiver(hub, session=args.otlp_session, **listen)
        hooks.append(receiver.observe)
    if args.otlp_endpoint:
        from edgetrace._otlp import OtlpForwarder, make_exporter

        exporter = make_exporter(args.otlp_protocol, args.otlp_endpoint, headers=parse_headers(args.otlp_header))
        forwarder = OtlpForwarder(exporter, manifest_of=hub.manifest, capture=args.otlp_capture_content,
                                  blobs_of=_blob_reader(hub))
        hooks.append(forwarder)
    return hooks, forwarder, receiver


def _blob_reader(hub: Any) -> Any:
    """`session -> (sha -> bytes)` over what the hub stored, for the forwarder's content capture."""
    from edgetrace._otlp.forward import SessionBlobs

    return SessionBlobs(hub.store.read)


