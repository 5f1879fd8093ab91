"""A real OpenTelemetry backend for the suite: Arize Phoenix, started once per test session.

`phoenix serve` runs as a subprocess on free loopback ports with its own working folder (a
SQLite database in a temporary folder), is waited for until `/healthz` answers, and is stopped
at the end (terminate, then kill). Which `phoenix` to run: `$EDGETRACE_PHOENIX` (what `.ci/run`
sets: Phoenix lives in its own virtualenv, since its ~850 MB of pinned dependencies are not
this project's), else the one on PATH. Without one the Phoenix tests skip — except under CI,
where that is a failure, so a missing install step cannot pass as green.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Phoenix:
    http: str  # base URL: REST API, UI and OTLP/HTTP at /v1/traces
    grpc: str  # OTLP/gRPC endpoint
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    binary = os.environ.get("EDGETRACE_PHOENIX") or shutil.which("phoenix")
    if not binary:
        if os.environ.get("CI"):
            pytest.fail("Phoenix is not installed: .ci/run installs it and sets EDGETRACE_PHOENIX")
        pytest.skip("Arize Phoenix is not installed (pip install arize-phoenix; set EDGETRACE_PHOENIX)")
    work = tmp_path_factory.mktemp("phoenix")
    http_port, grpc_port = _free_port(), _free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(work), "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_PORT": str(http_port), "PHOENIX_GRPC_PORT": str(grpc_port),
           "PHOENIX_TELEMETRY_ENABLED": "false"}
    for var in [k for k in env if k.startswith("OTEL_")]:
        env.pop(var)
    log = work / "phoenix.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "serve"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work,
                                start_new_session=True)
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 180  # a cold start on a loaded 2-core machine
        while not _ready(url):
            if proc.poll() is not None:
                pytest.fail(f"phoenix serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"phoenix serve did not answer within 180 s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield Phoenix(http=url, grpc=f"http://127.0.0.1:{grpc_port}", log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
