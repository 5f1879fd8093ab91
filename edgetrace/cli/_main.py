"""Argument parsing and the error contract of every verb.

Exit codes: 0 clean; 1 the run worked and found an invariant violation or a faithful
replay diverged; 2 bad input or usage (one line on stderr, never a traceback); 3 an
internal error (a bug in edgetrace: the message says where to report it).
Each verb lives in its own module with `register(subparsers)` and `run(args) -> int`, and
is imported only when chosen, so `edgetrace show` never pays for onnxruntime or textual.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from edgetrace._errors import EdgeTraceError
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
    "export": ("edgetrace.cli._export", "send a session to an OpenTelemetry backend over OTLP"),
    "explore": ("edgetrace.cli._explore", "open the terminal trace explorer"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage + message; the contract is one line and exit 2.
        raise _ArgError(f"{self.prog}: {message} (see '{self.prog} --help')")


class _ArgError(Exception):
    pass


def _available() -> dict[str, tuple[str, str]]:
    found = {}
    for verb, (module, text) in VERBS.items():
        if importlib.util.find_spec(module) is not None:
            found[verb] = (module, text)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgetrace",
        description="Trace, replay and break reasoning pipelines that run across edge grids.",
        epilog="Exit codes: 0 clean, 1 invariant violated or faithful replay diverged, "
        "2 bad input, 3 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"edgetrace {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser)
    for verb, (module, text) in _available().items():
        mod = importlib.import_module(module)
        p = sub.add_parser(verb, help=text, description=(mod.__doc__ or text).strip())
        mod.register(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "verb", None):
            parser.print_help()
            return 2
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
    except Exception as exc:  # a bug in edgetrace, not in the user's input
        if os.environ.get("EDGETRACE_DEBUG"):
            raise
        print(
            f"edgetrace: internal error: {type(exc).__name__}: {_one_line(exc)} — this is a bug; "
            f"please report it at {ISSUES_URL} (set EDGETRACE_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 3
    return code


def _one_line(exc: BaseException) -> str:
    from edgetrace._text import printable

    # messages quote session contents (ids, names): no escape sequence reaches the terminal
    return printable(" ".join(str(exc).split()) or type(exc).__name__, limit=4000)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
