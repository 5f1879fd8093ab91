"""Argument parsing, the conventions every verb shares, and the error contract.

Exit codes: 0 clean; 1 the run worked and found an invariant violation or a faithful
replay diverged; 2 bad input or usage (one line on stderr, never a traceback); 3 an
internal error (a bug in edgetrace: the message says where to report it).

Each verb lives in its own module with `register(parser)`, `run(args) -> int` and an
`EXAMPLES` string (shown as the EXAMPLES section of its `--help`), and is imported only when
chosen to run, so `edgetrace show` never pays for onnxruntime or textual. Shared here, so no
verb repeats them: `-V/--version`; "did you mean" for misspelt verbs and flags; shell
completion (`edgetrace completion bash|zsh|fish`, through argcomplete); output paths
(`--out`, `--save`, `--mcap`, `--parquet`) checked before a run starts, and a write that fails
later reported in one line (exit 2), never as a bug.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from edgetrace._errors import EdgeTraceError, UsageError
from edgetrace._version import __version__

__all__ = ["main"]

ISSUES_URL = "https://github.com/edgetrace/edgetrace/issues"

# verb -> (module, one-line help). Only verbs that really work are listed.
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("edgetrace.cli._demo", "record, replay and break the agri fleet, end to end"),
    "record": ("edgetrace.cli._record", "record a live session of a scenario (hub + agents)"),
    "hub": ("edgetrace.cli._hub", "run the hub that collects spans into sessions"),
    "agent": ("edgetrace.cli._agent", "run one node of an app and ship its spans to a hub"),
    "replay": ("edgetrace.cli._replay", "replay a session deterministically, with faults"),
    "sweep": ("edgetrace.cli._sweep", "replay many seeded fault plans and minimise failures"),
    "show": ("edgetrace.cli._show", "list nodes, traces and spans of a session in causal order"),
    "diff": ("edgetrace.cli._diff", "compare a recorded session with a replayed one"),
    "merge": ("edgetrace.cli._merge", "combine the sessions several hubs recorded of one run"),
    "compact": ("edgetrace.cli._compact", "recompress a sealed session as record does: smaller, faster to open"),
    "query": ("edgetrace.cli._query", "ask SQL questions of sessions (DuckDB; edgetrace[sql])"),
    "export": ("edgetrace.cli._export", "export a session: OTLP backends, MCAP (Foxglove), Parquet"),
    "explore": ("edgetrace.cli._explore", "open the terminal trace explorer"),
    "completion": ("edgetrace.cli._completion", "print a shell completion script (bash, zsh, fish)"),
}

#: Options naming something a verb writes: checked before the verb runs. dest -> is a folder.
OUTPUTS = {"out": None, "save": False, "mcap": False, "parquet": True}

EXAMPLES = """\
edgetrace demo
edgetrace record agri --out run.ets
edgetrace replay run.ets --fault 'latency(op=state.*, delay=2s)'
edgetrace export run.ets --otlp http://localhost:4318
eval "$(edgetrace completion bash)\""""

_EXIT_CODES = "exit codes: 0 clean, 1 invariant violated or faithful replay diverged, 2 bad input, 3 internal error"


class _ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage + message; the contract is one line and exit 2.
        raise _ArgError(f"{self.prog}: {message}{self._suggestion(message)} (see '{self.prog} --help')")

    def _suggestion(self, message: str) -> str:
        """", did you mean '--json'?" for a misspelt verb or flag, else ""."""
        if "invalid choice:" in message:
            word = message.split("invalid choice:", 1)[1].split("(")[0].strip().strip("'\"")
            choices = [c for a in self._actions for c in (a.choices or [])
                       if isinstance(a, argparse._SubParsersAction | argparse._StoreAction)]
            return _did_you_mean(word, [str(c) for c in choices])
        if message.startswith("unrecognized arguments:"):
            flags = [w for w in message.split(":", 1)[1].split() if w.startswith("-")]
            known = [o for a in self._actions for o in a.option_strings]
            known += [o for p in _chosen_subparsers(self) for a in p._actions for o in a.option_strings]
            for flag in flags:
                hint = _did_you_mean(flag.split("=")[0], known)
                if hint:
                    return hint
        return ""


def _did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


_LAST_ARGV: list[str] = []


def _chosen_subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser of the verb on the command line being parsed (unrecognized flags are reported
    by the top parser, which does not know the verb's own flags)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word in _LAST_ARGV:
                if word in action.choices:
                    found.append(action.choices[word])
                    break
    return found


def _available() -> dict[str, tuple[str, str]]:
    found = {}
    for verb, (module, text) in VERBS.items():
        if importlib.util.find_spec(module) is not None:
            found[verb] = (module, text)
    return found


def _epilog(examples: str) -> str:
    lines = ["examples:"] + [f"  {line}" for line in examples.strip().splitlines()] if examples.strip() else []
    return "\n".join([*lines, "", _EXIT_CODES]) if lines else _EXIT_CODES


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgetrace",
        description="Trace, replay and break reasoning pipelines that run across edge grids.",
        epilog=_epilog(EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"edgetrace {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser)
    for verb, (module, text) in _available().items():
        mod = importlib.import_module(module)
        p = sub.add_parser(verb, help=text, description=(mod.__doc__ or text).strip(),
                           epilog=_epilog(getattr(mod, "EXAMPLES", "")),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.register(p)
        p.set_defaults(_module=module)
    return parser


def _check_outputs(args: argparse.Namespace) -> list[str]:
    """Refuse an output path that cannot be written before any work starts; return the paths."""
    paths = []
    for dest, folder in OUTPUTS.items():
        value = getattr(args, dest, None)
        if not isinstance(value, str) or not value:
            continue
        if folder is None:  # `--out`: a folder for demo, a file for record
            folder = args.verb == "demo"
        path = Path(value)
        option = f"--{dest}"
        if path.exists() and path.is_dir() != folder:
            want = "a folder" if folder else "a file"
            raise UsageError(f"{option} {value}: is {'a folder' if path.is_dir() else 'a file'}; expected {want}")
        ancestor = path.parent if not path.exists() else path
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise UsageError(f"{option} {value}: {ancestor} is not a folder")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {value}: cannot write in {ancestor}")
        paths.append(os.path.abspath(value))
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _LAST_ARGV[:] = argv
    outputs: list[str] = []
    try:
        parser = build_parser()
        if "_ARGCOMPLETE" in os.environ:  # a shell asking for completions (see `edgetrace completion`)
            import argcomplete

            argcomplete.autocomplete(parser)
        args = parser.parse_args(argv)
        if not getattr(args, "verb", None):
            parser.print_help()
            return 2
        outputs = _check_outputs(args)
        module = importlib.import_module(args._module)
        code = int(module.run(args))
    except _ArgError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except EdgeTraceError as exc:
        print(f"edgetrace: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgetrace: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `edgetrace show x | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        if _concerns(exc, outputs):  # the disk or the path the user gave, not a bug
            print(f"edgetrace: error: cannot write {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        return _internal(exc)
    except Exception as exc:  # a bug in edgetrace, not in the user's input
        return _internal(exc)
    return code


def _concerns(exc: OSError, outputs: list[str]) -> bool:
    names = [n for n in (exc.filename, exc.filename2) if isinstance(n, str | os.PathLike)]
    for name in names:
        full = os.path.abspath(os.fspath(name))
        if any(full == out or full.startswith(out.rstrip(os.sep) + os.sep) or out.startswith(full + os.sep)
               for out in outputs):
            return True
    return False


def _internal(exc: BaseException) -> int:
    if os.environ.get("EDGETRACE_DEBUG"):
        raise exc
    print(
        f"edgetrace: internal error: {type(exc).__name__}: {_one_line(exc)} — this is a bug; "
        f"please report it at {ISSUES_URL} (set EDGETRACE_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
    return 3


def _one_line(exc: BaseException) -> str:
    from edgetrace._text import printable

    # messages quote session contents (ids, names): no escape sequence reaches the terminal
    return printable(" ".join(str(exc).split()) or type(exc).__name__, limit=4000)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
