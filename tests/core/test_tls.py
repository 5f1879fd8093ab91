"""Links over TLS, tokens off the command line (issue 14, defect 16).

Certificates are made here with the `openssl` command: a CA, a hub certificate it signed
(for 127.0.0.1), an agent's client certificate it signed, and a stranger's CA and
certificate. The hub and the agents' peer ports serve TLS, optionally requiring client
certificates (mutual TLS); a client verifies what it connects to.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgetrace import Session, SpanKind
from edgetrace._hub import Hub
from edgetrace._transport import TcpTransport
from edgetrace.agents import MemorySink, Recorder
from edgetrace.agents._live import LiveWorld
from edgetrace.agents._shipper import Shipper
from edgetrace.agents._spool import Spool

TOKEN = "tls-token"
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command to make certificates")


def _run(*args: str) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], check=True, capture_output=True)


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", f"/CN={name}")
    return cert, key


def _leaf(folder: Path, name: str, ca: tuple[Path, Path], *, server: bool) -> tuple[Path, Path]:
    cert, key, csr, ext = (folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr",
                           folder / f"{name}.ext")
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
         "-out", str(csr), "-subj", f"/CN={name}")
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage="
                   + ("serverAuth,clientAuth" if server else "clientAuth") + "\n")
    _run("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
         "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("pki")
    ca = _ca(folder, "ca")
    rogue = _ca(folder, "rogue")
    return {"ca": ca, "hub": _leaf(folder, "hub", ca, server=True), "agent": _leaf(folder, "agent", ca, server=True),
            "rogue": rogue, "stranger": _leaf(folder, "stranger", rogue, server=True)}


def _fill(spool: Spool, node: str, n: int) -> None:
    rec = Recorder(node, spool)
    for _ in range(n):
        rec.record(SpanKind.LOG, "step")
    spool.flush()


async def _ship(spool: Spool, transport: TcpTransport, node: str, timeout: float = 8.0) -> bool:
    shipper = Shipper(spool, transport, token=TOKEN, node=node, session="s1", backoff=(0.02, 0.2))
    shipper.start()
    ok = await shipper.flush(timeout)
    await shipper.stop()
    return ok


async def _shut(sender: LiveWorld, server: asyncio.Server) -> None:
    """Close the sender's links and the receiver's port, and wait until they are (no stray sockets)."""
    await sender.close_links()
    server.close()
    await server.wait_closed()


def test_mutual_tls_lets_in_only_agents_with_a_certificate_the_hub_trusts(tmp_path, pki):
    from edgetrace._credentials import client_context, server_context

    ca = pki["ca"][0]
    hub_ssl = server_context(*pki["hub"], client_ca=ca)

    async def main() -> dict[str, bool]:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN, ssl=hub_ssl)
        await hub.start()
        cases = {
            "good": client_context(ca, cert=pki["agent"][0], key=pki["agent"][1]),
            "no client cert": client_context(ca),
            "cert from another CA": client_context(ca, cert=pki["stranger"][0], key=pki["stranger"][1]),
            "trusts another CA": client_context(pki["rogue"][0], cert=pki["agent"][0], key=pki["agent"][1]),
            "plain TCP": None,
        }
        results = {}
        for node, ctx in cases.items():
            spool = Spool(tmp_path / f"{node}.spool")
            _fill(spool, node.replace(" ", "-"), 20)
            results[node] = await _ship(spool, TcpTransport("127.0.0.1", hub.port, ssl=ctx, timeout=2),
                                        node.replace(" ", "-"), timeout=3 if node != "good" else 15)
            spool.close()
        hub.close()
        return results

    results = asyncio.run(main())
    assert results == {"good": True, "no client cert": False, "cert from another CA": False,
                       "trusts another CA": False, "plain TCP": False}
    assert {s.node for s in Session(tmp_path / "data" / "s1.ets").spans} == {"good"}


def test_peer_links_run_over_mutual_tls(pki):
    from edgetrace._credentials import PeerSecurity, client_context, server_context
    from edgetrace._records import Span
    from edgetrace.agents._live import LiveWorld
    from edgetrace.agents._message import Message, MessageKind

    ca = pki["ca"][0]

    async def main(sender_ssl: object) -> list[Message]:
        got: list[Message] = []
        receiver = LiveWorld("n1", MemorySink(), epoch_ns=0, peers={}, security=PeerSecurity(
            token=TOKEN, server_ssl=server_context(*pki["agent"], client_ca=ca)))
        server = await receiver.serve(got.append, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sender = LiveWorld("n2", MemorySink(), epoch_ns=0, peers={"n1": ("127.0.0.1", port)},
                           security=PeerSecurity(token=TOKEN, client_ssl=sender_ssl))  # type: ignore[arg-type]
        sender.transmit(Message(kind=MessageKind.SEND, src="n2", dst="n1", topic="hi"),
                        Span(node="n2", seq=1, kind=SpanKind.SEND, name="hi"))
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        await _shut(sender, server)
        return got

    assert [m.topic for m in asyncio.run(main(client_context(ca, cert=pki["hub"][0], key=pki["hub"][1])))] == ["hi"]
    assert asyncio.run(main(client_context(ca))) == []  # no client certificate: not let in
    assert asyncio.run(main(None)) == []  # plain TCP to a TLS port


# --- tokens from the environment or a file, never argv ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hub_cli(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgetrace", "hub", "--data", str(tmp_path / "data"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in {**os.environ, **env}.items() if v})


def test_the_hub_cli_serves_tls_with_a_token_from_a_file(tmp_path, pki):
    from edgetrace._credentials import client_context

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = _free_port()
    hub = _hub_cli(tmp_path, "--listen", f"0.0.0.0:{port}", "--token-file", str(token_file), "--tls-cert",
                   str(pki["hub"][0]), "--tls-key", str(pki["hub"][1]), "--tls-client-ca", str(pki["ca"][0]),
                   env={"EDGETRACE_TOKEN": ""})
    try:
        assert hub.stdout is not None
        line = hub.stdout.readline()
        assert "(TLS)" in line, line + (hub.stderr.read() if hub.stderr else "")
        assert TOKEN not in Path(f"/proc/{hub.pid}/cmdline").read_bytes().decode(errors="replace")
        spool = Spool(tmp_path / "a.spool")
        _fill(spool, "a", 30)
        ctx = client_context(pki["ca"][0], cert=pki["agent"][0], key=pki["agent"][1])
        assert asyncio.run(_ship(spool, TcpTransport("127.0.0.1", port, ssl=ctx), "a"))
        spool.close()
    finally:
        hub.terminate()
        hub.communicate(timeout=20)
    assert len(Session(tmp_path / "data" / "s1.ets").spans) == 30


def test_a_token_file_others_can_read_is_refused(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    r = subprocess.run([sys.executable, "-m", "edgetrace", "hub", "--listen", "127.0.0.1:0", "--data",
                        str(tmp_path / "d"), "--token-file", str(token_file)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "chmod 600" in r.stderr


def test_a_token_on_the_command_line_is_warned_about(tmp_path):
    hub = _hub_cli(tmp_path, "--listen", "127.0.0.1:0", "--token", TOKEN, env={})
    try:
        assert hub.stdout is not None and "listening" in hub.stdout.readline()
    finally:
        hub.terminate()
        _, err = hub.communicate(timeout=20)
    assert "process list" in err
