"""Tokens and TLS contexts: how hubs, agents and peers prove who they are (docs/security.md).

- **Tokens** come from the environment (`EDGETRACE_TOKEN`) or a file (`--token-file`), never
  from the command line: argv is world-readable in /proc/PID/cmdline. A token file must be
  readable by its owner only (like an ssh key), else it is refused.
- **TLS** is the standard library's `ssl`: a listener (the hub, an agent's peer port) has a
  certificate and key, and with a client CA it requires client certificates signed by it
  (mutual TLS); a connector verifies the listener against a CA file (or the system's) and
  the name it dialled, and presents its own certificate when it has one.
- `PeerSecurity` bundles what an agent's peer links need: the token, both TLS contexts and
  the admission limits of its peer port.
"""

from __future__ import annotations

import os
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path

from edgetrace._errors import UsageError
from edgetrace._gate import Limits

__all__ = ["TOKEN_ENV", "PeerSecurity", "client_context", "load_token", "server_context"]

#: The environment variable a token is read from.
TOKEN_ENV = "EDGETRACE_TOKEN"


def load_token(token_file: str | os.PathLike[str] | None = None, *, env: str = TOKEN_ENV) -> str:
    """The shared token: from `token_file` if given (owner-only, one line), else `$EDGETRACE_TOKEN`, else ""."""
    if token_file is None:
        return os.environ.get(env, "").strip()
    path = Path(token_file)
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    if hasattr(os, "getuid") and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"the token file {path} can be read by others (mode {stat.S_IMODE(st.st_mode):o}); "
                         f"make it yours alone: chmod 600 {path}")
    token = text.strip()
    if not token or "\n" in token:
        raise UsageError(f"the token file {path} must hold the token on one line")
    return token


def _tls_error(what: str, exc: Exception) -> UsageError:
    detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
    return UsageError(f"{what}: {detail}")


def server_context(cert: str | os.PathLike[str], key: str | os.PathLike[str] | None = None, *,
                   client_ca: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A listener's TLS context; with `client_ca`, clients must present a certificate it signed."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:
        raise _tls_error(f"cannot load the TLS certificate {cert} (key {key or 'in the same file'})", exc) from None
    if client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise _tls_error(f"cannot load the client CA {client_ca}", exc) from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(ca: str | os.PathLike[str] | None = None, *, cert: str | os.PathLike[str] | None = None,
                   key: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A connector's TLS context: verify the listener against `ca` (else the system's CAs)."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise _tls_error(f"cannot load the CA {ca}", exc) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        try:
            ctx.load_cert_chain(str(cert), str(key) if key else None)
        except (OSError, ssl.SSLError) as exc:
            raise _tls_error(f"cannot load the TLS certificate {cert}", exc) from None
    return ctx


@dataclass(frozen=True)
class PeerSecurity:
    """What an agent's peer links need: the token peers present, TLS both ways, the port's limits."""

    token: str = ""
    server_ssl: ssl.SSLContext | None = None
    client_ssl: ssl.SSLContext | None = None
    limits: Limits = field(default_factory=Limits)
