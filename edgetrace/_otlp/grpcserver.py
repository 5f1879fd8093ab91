"""OTLP/gRPC in: `TraceService/Export` on grpcio's asyncio server, into the receiver's ingest.

The transport of `edgetrace hub --otlp-grpc-listen` (client → **gRPC** → decoded → …): what
Python's `opentelemetry-instrument` and most SDKs send by default, on port 4317. The token is
checked from the call's metadata by an interceptor, before the request is handed to the
service; messages are capped at the receiver's body limit, concurrent calls are capped, idle
connections are closed. A call is answered once its spans are stored, like an HTTP request.

Needs `grpcio` (the `edgetrace[grpc]` extra); imported only when gRPC ingest is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgetrace._errors import UsageError

if TYPE_CHECKING:
    from edgetrace._otlp.receiver import OtlpReceiver

__all__ = ["start_grpc"]

MAX_CONCURRENT_CALLS = 32


def _grpc() -> Any:
    try:
        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"OTLP/gRPC needs grpcio ({exc.name} is missing): pip install 'edgetrace[grpc]'") from None
    return grpc


async def start_grpc(receiver: OtlpReceiver, host: str, port: int) -> tuple[Any, int]:
    """Start serving OTLP/gRPC for `receiver`; return the server and the port it is bound to."""
    grpc = _grpc()
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    from edgetrace._otlp.decode import IngestError
    from edgetrace._otlp.receiver import token_matches

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        async def Export(self, request: Any, context: Any) -> Any:
            try:
                _, rejected = await receiver.ingest_request(request)
            except IngestError as exc:
                receiver.bad_requests += 1
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.reason)
            except Exception as exc:  # a bug or a full disk: the client may retry
                await context.abort(grpc.StatusCode.UNAVAILABLE,
                                    f"the hub could not store the spans: {type(exc).__name__}")
            response = trace_service_pb2.ExportTraceServiceResponse()
            if rejected:
                response.partial_success.rejected_spans = len(rejected)
                response.partial_success.error_message = f"{len(rejected)} span(s) rejected; first: {rejected[0]}"
            return response

    class TokenCheck(grpc.aio.ServerInterceptor):  # type: ignore[name-defined,misc]
        """Refuses a call without the token before its request message is handed to the service."""

        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            headers = {k.lower(): v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
            if receiver.token and not token_matches(headers, receiver.token):
                receiver.bad_requests += 1

                async def refuse(request: Any, context: Any) -> Any:
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                        "missing or wrong token (send 'authorization: Bearer TOKEN')")

                return grpc.unary_unary_rpc_method_handler(refuse)
            return await continuation(details)

    options = [
        ("grpc.max_receive_message_length", receiver.max_body),
        ("grpc.max_send_message_length", 1 << 20),
        ("grpc.max_concurrent_streams", 16),
        ("grpc.max_connection_idle_ms", int(receiver.idle_timeout * 1000)),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.aio.server(interceptors=[TokenCheck()], options=options,
                             maximum_concurrent_rpcs=MAX_CONCURRENT_CALLS)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)  # type: ignore[no-untyped-call]
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio raises this when the address is taken
        bound = 0
    if not bound:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    await server.start()
    return server, bound
