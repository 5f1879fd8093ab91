"""What the live verbs (`hub`, `agent`, `export`) parse alike: addresses, whether one is
loopback (off loopback a token is required), header options and where the token comes from."""

from __future__ import annotations

import argparse
import ipaddress

from edgetrace._errors import UsageError

__all__ = ["cli_token", "loopback", "parse_address", "parse_headers"]


def parse_address(text: str, *, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"bad address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:{default_port}")
    return host or "127.0.0.1", int(port)


def loopback(host: str) -> bool:
    """True for an address only this machine can reach (a wildcard or a name is not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_headers(items: list[str]) -> dict[str, str] | None:
    """`K=V` options as a header map; None when there are none, so OTEL_EXPORTER_OTLP_HEADERS applies."""
    headers: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad header {item!r}: expected KEY=VALUE")
        headers[key.strip()] = value.strip()
    return headers or None


def cli_token(args: argparse.Namespace) -> str:
    """The token a verb was given: --token-file, else $EDGETRACE_TOKEN (--token still works, with a warning)."""
    import sys

    from edgetrace._credentials import load_token

    if getattr(args, "token", None):
        print("edgetrace: warning: --token shows in the process list (/proc/PID/cmdline); use $EDGETRACE_TOKEN "
              "or --token-file", file=sys.stderr)
        return str(args.token)
    return load_token(args.token_file)
