"""The conventions every verb shares: EXAMPLES in --help, -V, did-you-mean, shell completion,
progress on stderr, output paths checked up front, export failures in one line."""

from __future__ import annotations

import os
import pty
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from edgetrace._version import __version__
from edgetrace.cli import main
from edgetrace.cli._main import VERBS, build_parser

DEMO = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"


def _verbs() -> dict[str, object]:
    parser = build_parser()
    return parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_help_has_examples_that_parse(verb, capsys):
    with pytest.raises(SystemExit) as done:
        main([verb, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "\nexamples:\n" in text and "exit codes: 0 clean" in text
    examples = text.split("\nexamples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert examples
    verbs = _verbs()
    for line in examples:
        line = line.strip()
        if line.startswith('eval "$('):  # eval "$(edgetrace completion bash)"
            line = line[len('eval "$('):].rstrip(')"')
        argv = shlex.split(line)
        argv = argv[next(i for i, w in enumerate(argv) if w == "edgetrace"):]
        assert argv[1] == verb, line
        known = {o for a in verbs[verb]._actions for o in a.option_strings}  # type: ignore[attr-defined]
        assert all(w.split("=")[0] in known for w in argv[2:] if w.startswith("--")), line


def test_top_level_help_and_version(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "\nexamples:\n" in capsys.readouterr().out
    for flag in ("-V", "--version"):
        with pytest.raises(SystemExit):
            main([flag])
        assert capsys.readouterr().out.strip() == f"edgetrace {__version__}"


def test_did_you_mean(capsys):
    assert main(["shwo", str(DEMO)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'show'?" in err and err.count("\n") == 1
    assert main(["show", str(DEMO), "--jsno"]) == 2
    assert "did you mean '--json'?" in capsys.readouterr().err
    assert main(["export", str(DEMO), "--protocol", "grcp"]) == 2
    assert "did you mean 'grpc'?" in capsys.readouterr().err


def _complete(line: str, tmp_path: Path) -> list[str]:
    out = tmp_path / "completions"
    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out), "_ARGCOMPLETE_IFS": "\n"}
    subprocess.run([sys.executable, "-m", "edgetrace"], env=env, timeout=60, capture_output=True)
    return [w.strip() for w in out.read_text().split("\n")] if out.exists() else []


def test_shell_completion_completes_verbs_and_flags(tmp_path, capsys):
    assert "show" in _complete("edgetrace sh", tmp_path)
    assert "--otlp" in _complete("edgetrace export run.ets --ot", tmp_path)
    assert set(_complete("edgetrace export run.ets --protocol ", tmp_path)) >= {"grpc", "http/protobuf"}
    for shell in ("bash", "zsh", "fish"):
        assert main(["completion", shell]) == 0
        script = capsys.readouterr().out
        assert "edgetrace" in script and "_ARGCOMPLETE" in script
        if shell == "bash":
            checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, timeout=30)
            assert checked.returncode == 0, checked.stderr


def test_progress_is_drawn_on_stderr_even_when_stdout_is_a_file(tmp_path):
    """`edgetrace … > log`: the bar goes to the terminal on stderr, the log gets the result only."""
    master, slave = pty.openpty()
    log = tmp_path / "log"
    with open(log, "wb") as out:
        env = {k: v for k, v in os.environ.items() if k != "EDGETRACE_PROGRESS"}
        done = subprocess.run([sys.executable, "-m", "edgetrace", "export", str(DEMO), "--parquet",
                               str(tmp_path / "t")], stdout=out, stderr=slave, env=env, timeout=120)
    os.close(slave)
    drawn = b""
    try:
        while chunk := os.read(master, 65536):
            drawn += chunk
    except OSError:  # the other end is closed: all of it is read
        pass
    os.close(master)
    assert done.returncode == 0
    assert b"writing Parquet" in drawn
    assert log.read_text().startswith("wrote 599 spans") and "\x1b" not in log.read_text()


def test_a_bad_output_path_is_exit_2_in_one_line(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for argv in (["record", "agri", "--out", str(a_file / "s.ets")],
                 ["record", "agri", "--out", str(tmp_path)],
                 ["export", str(DEMO), "--mcap", str(a_file / "x.mcap")],
                 ["export", str(DEMO), "--parquet", str(a_file)],
                 ["replay", str(DEMO), "--save", str(tmp_path)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("edgetrace: error: --") and err.count("\n") == 1, err


def test_export_failures_are_one_line_and_urls_are_checked_first(capsys):
    assert main(["export", str(DEMO), "--otlp", "http://127.0.0.1:9", "--timeout", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("edgetrace: error: 599 of 599 spans were not accepted"), err
    for url, says in (("ftp://collector:4318", "scheme 'ftp'"), ("http://", "no host"),
                      ("http://host:99999", "Port out of range"), ("http://collector:4317/v1/traces", "gRPC takes no path")):
        argv = ["export", str(DEMO), "--otlp", url]
        if "4317" in url:
            argv += ["--protocol", "grpc"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err


def test_a_progress_bar_names_the_phase_it_is_in(monkeypatch, capsys):
    """`record` ends by compacting, which can take a while on a big session: the bar says so."""
    from edgetrace.cli._progress import progress_bar

    monkeypatch.setenv("EDGETRACE_PROGRESS", "1")
    with progress_bar("recording agri") as update:
        update(1, 2)
        update(1, 2, "compacting the session")
    assert "compacting the session" in capsys.readouterr().err
