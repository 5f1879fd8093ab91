"""`edgetrace export --parquet` and `edgetrace query`: through DuckDB, read back with DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from edgetrace._session import Session
from edgetrace.cli import main

DEMO = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"


def test_parquet_export_reads_back(tmp_path, capsys):
    out = tmp_path / "tables"
    assert main(["export", str(DEMO), "--parquet", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parquet"]["spans"] == 599
    session = Session(DEMO)
    con = duckdb.connect()
    rows = con.execute(f"SELECT ref, node, kind, trace, parent, start_ns, end_ns, status, clock, "
                       f"attrs->>'edgetrace.decision' FROM '{out}/spans.parquet'").fetchall()
    assert len(rows) == len(session)
    by_ref = {r[0]: r for r in rows}
    for span in session:
        _, node, kind, trace, parent, start, end, status, clock, decision = by_ref[span.ref]
        assert (node, kind, trace, parent, start, end, status) == (
            span.node, span.kind.value, span.trace, span.parent, span.start, span.end, span.status.value)
        assert clock == session.index.clock(span).as_dict()
        assert decision == span.attrs.get("edgetrace.decision")
    (meta,) = con.execute(f"SELECT session, app, seed, epoch_ns, spans FROM '{out}/sessions.parquet'").fetchall()
    assert meta == (session.manifest.session_id, "agri", 0, session.manifest.meta["epoch_ns"], 599)


def test_query_answers_fleet_questions(tmp_path, capsys):
    sql = ("SELECT node, count(*) AS sprays FROM spans WHERE kind = 'act' AND name = 'spray' "
           "GROUP BY node ORDER BY node")
    assert main(["query", str(DEMO), sql, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want: dict[str, int] = {}
    for span in Session(DEMO):
        if span.kind.value == "act":
            want[span.node] = want.get(span.node, 0) + 1
    assert {r["node"]: r["sprays"] for r in got} == want
    copy = tmp_path / "second.ets"
    copy.write_bytes(DEMO.read_bytes())
    assert main(["query", str(DEMO), str(copy), "SELECT (SELECT count(*) FROM spans) AS n, "
                 "(SELECT count(DISTINCT path) FROM sessions) AS files", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n,files", "1198,2"]
    assert main(["query", str(DEMO), "SELECT max(clock['hub']) AS hub FROM spans"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split() == ["hub"] and text[-1] == "(1 row)"


def test_bad_sql_is_one_line_exit_2(capsys):
    assert main(["query", str(DEMO), "SELEC nonsense"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgetrace: error: query failed:") and "\n" not in err
