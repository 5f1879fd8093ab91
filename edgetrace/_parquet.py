"""Sessions as SQL tables: `edgetrace export --parquet DIR` and `edgetrace query SESSION "SQL"`.

Sits after the store (stored → **exported** as columns). Both go through DuckDB (the
`edgetrace[sql]` extra): rows from `_tables.session_rows` are written once as newline-delimited
JSON and read by DuckDB with declared column types, so a 1M-span session is one bulk load, not
a million inserts. Two tables:

- `spans`: one row per span (`_tables.SPAN_COLUMNS`): session, ref, node, seq, kind, name,
  trace, parent, cause, local and Unix times, duration, status, error, `clock`
  (`MAP(VARCHAR, BIGINT)`), `attrs` (JSON: `attrs->>'edgetrace.decision'`), `blobs`;
- `sessions`: one row per session: its manifest fields, `meta` as JSON.

`export --parquet DIR` writes `DIR/spans.parquet` and `DIR/sessions.parquet`; `query` loads the
same tables into an in-memory database and runs the statement on them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from edgetrace._errors import UsageError
from edgetrace._session import Session
from edgetrace._tables import SPAN_COLUMNS, session_rows, time_base_ns

__all__ = ["SESSION_COLUMNS", "connect", "export_parquet", "load_sessions", "run_query"]

SESSION_COLUMNS: dict[str, str] = {
    "session": "VARCHAR", "path": "VARCHAR", "app": "VARCHAR", "scenario": "VARCHAR", "profile": "VARCHAR",
    "seed": "BIGINT", "created": "VARCHAR", "epoch_ns": "BIGINT", "nodes": "VARCHAR[]", "spans": "BIGINT",
    "models": "MAP(VARCHAR, VARCHAR)", "policies": "MAP(VARCHAR, VARCHAR)", "edgetrace": "VARCHAR",
    "python": "VARCHAR", "meta": "JSON",
}

_encoder = msgspec.json.Encoder(enc_hook=lambda v: v.hex() if isinstance(v, bytes) else repr(v))


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise UsageError("SQL over sessions needs DuckDB: pip install 'edgetrace[sql]'") from None
    return duckdb


def connect() -> Any:
    """An in-memory DuckDB connection (one thread: results are deterministic and 2 cores are shared)."""
    con = _duckdb().connect(":memory:")
    con.execute("SET threads TO 1")
    return con


def _columns(spec: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in spec.items()) + "}"


def load_sessions(con: Any, sessions: Sequence[Session], *,
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Create the `spans` and `sessions` tables in `con` from `sessions`; return the span count."""
    total = sum(len(s) for s in sessions)
    done = 0
    with tempfile.TemporaryDirectory(prefix="edgetrace-sql-") as tmp:
        spans_file, sessions_file = Path(tmp) / "spans.ndjson", Path(tmp) / "sessions.ndjson"
        with open(spans_file, "wb") as out, open(sessions_file, "wb") as meta:
            for session in sessions:
                for row in session_rows(session):
                    out.write(_encoder.encode(row) + b"\n")
                    done += 1
                    if progress is not None and done % 2000 == 0:
                        progress(done, total)
                m = session.manifest
                meta.write(_encoder.encode({
                    "session": m.session_id or session.path.stem, "path": str(session.path), "app": m.app,
                    "scenario": m.scenario, "profile": m.profile, "seed": m.seed, "created": m.created,
                    "epoch_ns": time_base_ns(session), "nodes": session.nodes, "spans": len(session),
                    "models": m.models, "policies": m.policies, "edgetrace": m.edgetrace, "python": m.python,
                    "meta": m.meta}) + b"\n")
        for table, file, spec in (("spans", spans_file, SPAN_COLUMNS), ("sessions", sessions_file, SESSION_COLUMNS)):
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_json(?, format='newline_delimited', "
                        f"columns={_columns(spec)})", [str(file)])
    if progress is not None:
        progress(total, total)
    return total


def export_parquet(sessions: Sequence[Session], out_dir: str | os.PathLike[str], *,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write `spans.parquet` and `sessions.parquet` into `out_dir`; return what was written."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    con = connect()
    try:
        spans = load_sessions(con, sessions, progress=progress)
        files = {}
        for table in ("spans", "sessions"):
            target = folder / f"{table}.parquet"
            con.execute(f"COPY (SELECT * FROM {table}) TO '{_quote(target)}' (FORMAT parquet, COMPRESSION zstd)")
            files[table] = str(target)
    finally:
        con.close()
    return {"dir": str(folder), "spans": spans, "sessions": len(sessions), "files": files}


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def run_query(sessions: Sequence[Session], sql: str, *,
              progress: Callable[[int, int], None] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` over the sessions' `spans` and `sessions` tables; return (columns, rows)."""
    duckdb = _duckdb()
    con = connect()
    try:
        load_sessions(con, sessions, progress=progress)
        try:
            result = con.execute(sql)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"query failed: {first}") from None
        if result.description is None:
            return [], []
        return [d[0] for d in result.description], result.fetchall()
    finally:
        con.close()
