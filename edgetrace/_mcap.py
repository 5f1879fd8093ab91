"""`edgetrace export --mcap OUT.mcap`: a session as an MCAP file for robotics tools (Foxglove).

Sits after the store (stored → **exported**). The session file stays ours; MCAP is what
Foxglove, `mcap` and ROS tooling open. Layout:

- one channel per node and step kind (`/tractor-01/infer`, `/hub/state.put`), JSON messages
  with a JSON schema (`edgetrace.Span`; Foxglove decodes json, protobuf and ros, not
  MessagePack), one message per span at its start time (publish time: its end);
- decisions and logs on `foxglove.Log`-shaped channels (`timestamp`, `level`, `message`,
  `name`, `file`, `line`, plus the span), so Foxglove's Log panel lists them;
- attachments: the models and policies the session names, found by sha256 among the files
  given (`--model`/`--policy NAME=PATH`) and the installed scenarios' folders — files are
  read, never imported — and a replay's fault plan (`fault-plan.txt`, one spec a line);
- metadata: `edgetrace.session` (ids, app, scenario, nodes), `edgetrace.run` (seed, profile,
  faults), `edgetrace.build` (versions), `edgetrace.artifacts` (every artifact's sha256 and
  whether it is attached);
- chunked, zstd-compressed, with chunk and data CRCs.

Needs the `mcap` package (`edgetrace[mcap]`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._artifacts import file_sha256
from edgetrace._errors import UsageError
from edgetrace._records import FORMAT_VERSION
from edgetrace._session import Session
from edgetrace._tables import session_rows, time_base_ns
from edgetrace._version import __version__

__all__ = ["LOG_KINDS", "McapSummary", "export_mcap", "find_artifacts"]

#: Step kinds written as `foxglove.Log` messages.
LOG_KINDS = frozenset({"decide", "log"})

_SPAN_SCHEMA: dict[str, Any] = {
    "title": "edgetrace.Span",
    "description": "One recorded step of a reasoning chain (see edgetrace docs/format.md)",
    "type": "object",
    "properties": {
        "ref": {"type": "string"}, "node": {"type": "string"}, "seq": {"type": "integer"},
        "kind": {"type": "string"}, "name": {"type": "string"}, "trace": {"type": "string"},
        "parent": {"type": "string"}, "cause": {"type": "string"},
        "start_ns": {"type": "integer"}, "end_ns": {"type": "integer"}, "duration_ns": {"type": "integer"},
        "status": {"type": "string", "enum": ["ok", "error"]}, "error": {"type": "string"},
        "vclock": {"type": "object", "additionalProperties": {"type": "integer"}},
        "attrs": {"type": "object"}, "blobs": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["ref", "node", "seq", "kind", "name"],
}

_LOG_SCHEMA: dict[str, Any] = {
    "title": "foxglove.Log",
    "description": "A log message (Foxglove's Log schema), with the edgetrace span it came from",
    "type": "object",
    "properties": {
        "timestamp": {"type": "object", "properties": {
            "sec": {"type": "integer", "minimum": 0}, "nsec": {"type": "integer", "minimum": 0, "maximum": 999999999}}},
        "level": {"type": "integer", "enum": [0, 1, 2, 3, 4, 5],
                  "description": "0 unknown, 1 debug, 2 info, 3 warning, 4 error, 5 fatal"},
        "message": {"type": "string"}, "name": {"type": "string"},
        "file": {"type": "string"}, "line": {"type": "integer", "minimum": 0},
        "span": _SPAN_SCHEMA,
    },
    "required": ["timestamp", "level", "message", "name", "file", "line"],
}

INFO, WARNING, ERROR = 2, 3, 4


@dataclass
class McapSummary:
    path: Path
    messages: int = 0
    channels: int = 0
    attachments: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "messages": self.messages, "channels": self.channels,
                "attachments": self.attachments, "missing_artifacts": self.missing}


def _mcap() -> Any:
    try:
        from mcap.writer import CompressionType, Writer
    except ImportError:
        raise UsageError("MCAP export needs the mcap package: pip install 'edgetrace[mcap]'") from None
    return Writer, CompressionType


def _installed_artifact_files() -> list[Path]:
    """Model and policy files of the installed scenarios (read to hash, never imported)."""
    folder = Path(__file__).resolve().parent / "scenarios"
    if not folder.is_dir():
        return []
    return sorted(p for ext in ("*.onnx", "*.rego") for p in folder.rglob(ext))


def find_artifacts(wanted: Mapping[str, str], given: Mapping[str, str | os.PathLike[str]] | None = None,
                   search: Iterable[Path] | None = None) -> dict[str, Path]:
    """name → file whose sha256 is the one `wanted` names (given files first, then `search`)."""
    found: dict[str, Path] = {}
    hashes: dict[str, str] = {}

    def sha(path: Path) -> str:
        key = str(path)
        if key not in hashes:
            try:
                hashes[key] = file_sha256(path)
            except OSError:
                hashes[key] = ""
        return hashes[key]

    for name, path in (given or {}).items():
        if name in wanted and sha(Path(path)) == wanted[name]:
            found[name] = Path(path)
    candidates = list(search if search is not None else _installed_artifact_files())
    for name, digest in sorted(wanted.items()):
        if name not in found:
            match = next((p for p in candidates if sha(p) == digest), None)
            if match is not None:
                found[name] = match
    return found


def _log_message(row: dict[str, Any], at: int) -> dict[str, Any]:
    a = row["attrs"]
    if row["kind"] == "decide":
        fired = ", ".join(a.get(attr.RULES_FIRED) or []) or "-"
        text = f"{row['name']} → {a.get(attr.DECISION)!s} (rules fired: {fired})"
        level = WARNING if a.get(attr.TIMED_OUT) else INFO
    else:
        text = str(a.get(attr.MESSAGE, row["name"]))
        level = INFO
    if row["status"] == "error":
        level = ERROR
        text = f"{text}: {row['error']}" if row["error"] else text
    code = str(a.get(attr.CODE, ""))
    file, _, line = code.rpartition(":")
    return {"timestamp": {"sec": at // 1_000_000_000, "nsec": at % 1_000_000_000}, "level": level,
            "message": text, "name": row["node"], "file": file if line.isdigit() else code,
            "line": int(line) if line.isdigit() else 0}


def _message(row: dict[str, Any]) -> dict[str, Any]:
    return {"ref": row["ref"], "node": row["node"], "seq": row["seq"], "kind": row["kind"], "name": row["name"],
            "trace": row["trace"], "parent": row["parent"], "cause": row["cause"], "start_ns": row["start_ns"],
            "end_ns": row["end_ns"], "duration_ns": row["duration_ns"], "status": row["status"],
            "error": row["error"], "vclock": row["clock"], "attrs": row["attrs"], "blobs": row["blobs"]}


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_describe, ensure_ascii=False).encode()


def _describe(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


def export_mcap(session: Session, out: str | os.PathLike[str], *,
                models: Mapping[str, str | os.PathLike[str]] | None = None,
                policies: Mapping[str, str | os.PathLike[str]] | None = None,
                progress: Callable[[int, int], None] | None = None) -> McapSummary:
    """Write `session` to `out` as MCAP (see the module docstring); return what went in."""
    Writer, CompressionType = _mcap()
    path = Path(out)
    m = session.manifest
    summary = McapSummary(path)
    base = time_base_ns(session)
    created = base or 0
    with open(path, "wb") as fh:
        writer = Writer(fh, compression=CompressionType.ZSTD, enable_crcs=True, enable_data_crcs=True)
        writer.start(profile="edgetrace", library=f"edgetrace {__version__}")
        span_schema = writer.register_schema("edgetrace.Span", "jsonschema", _json(_SPAN_SCHEMA))
        log_schema = writer.register_schema("foxglove.Log", "jsonschema", _json(_LOG_SCHEMA))
        channels: dict[tuple[str, str], int] = {}
        sequence: dict[int, int] = {}
        total = len(session)
        for i, row in enumerate(session_rows(session)):
            key = (row["node"], row["kind"])
            channel = channels.get(key)
            if channel is None:
                schema = log_schema if row["kind"] in LOG_KINDS else span_schema
                channel = channels[key] = writer.register_channel(
                    f"/{row['node']}/{row['kind']}", "json", schema,
                    metadata={"node": row["node"], "kind": row["kind"], "session": row["session"]})
            start, end = row["start_unix_ns"], row["end_unix_ns"]
            body = _message(row)
            if row["kind"] in LOG_KINDS:
                body = {**_log_message(row, start), "span": body}
            sequence[channel] = sequence.get(channel, 0) + 1
            writer.add_message(channel, log_time=start, data=_json(body), publish_time=end,
                               sequence=sequence[channel])
            summary.messages += 1
            if progress is not None and (i % 500 == 0 or i + 1 == total):
                progress(i + 1, total)
        summary.channels = len(channels)
        artifacts: dict[str, str] = {}
        for what, wanted, given, media in (("models", m.models, models, "application/octet-stream"),
                                           ("policies", m.policies, policies, "text/plain")):
            found = find_artifacts(wanted, given)
            for name, digest in sorted(wanted.items()):
                file = found.get(name)
                label = f"{what}/{name}{file.suffix if file else ''}"
                if file is None:
                    summary.missing.append(f"{what}/{name}")
                    artifacts[f"{what}/{name}"] = f"{digest} (not attached: pass --{what[:-1] if what == 'models' else 'policy'} {name}=PATH)"
                    continue
                writer.add_attachment(create_time=created, log_time=created, name=label, media_type=media,
                                      data=file.read_bytes())
                summary.attachments.append(label)
                artifacts[label] = digest
        faults = m.meta.get("faults") if isinstance(m.meta, dict) else None
        if faults:
            text = "".join(f"{spec}\n" for spec in faults)
            writer.add_attachment(create_time=created, log_time=created, name="fault-plan.txt",
                                  media_type="text/plain", data=text.encode())
            summary.attachments.append("fault-plan.txt")
        writer.add_metadata("edgetrace.session", {
            "session_id": m.session_id, "app": m.app, "scenario": m.scenario, "created": m.created,
            "nodes": ",".join(session.nodes), "epoch_ns": str(base), "spans": str(len(session)),
            "replay_of": str(m.meta.get("replay_of", "")) if isinstance(m.meta, dict) else ""})
        writer.add_metadata("edgetrace.run", {
            "seed": str(m.meta.get("seed", m.seed) if isinstance(m.meta, dict) else m.seed),
            "profile": m.profile, "faults": json.dumps(list(faults or []))})
        writer.add_metadata("edgetrace.build", {
            "edgetrace": m.edgetrace, "python": m.python, "format_version": str(FORMAT_VERSION),
            "exported_by": f"edgetrace {__version__}", "exported_with_python": sys.version.split()[0]})
        writer.add_metadata("edgetrace.artifacts", artifacts)
        writer.finish()
    return summary
