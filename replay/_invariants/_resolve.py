"""Naming invariants: `--check NAME`, `run.assert_invariants("NAME")` and the app's declarations.

A name picks one the app declared (an `Invariant`, an expression, or a Python function);
anything that is not a bare name is parsed as an expression, so a typo in a name is reported
as an unknown name rather than as a parse error about its first letter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from edgetrace._errors import InvariantError
from edgetrace.replay._invariants._kinds import FunctionInvariant
from edgetrace.replay._invariants._model import Invariant
from edgetrace.replay._invariants._parser import parse_invariant

__all__ = ["resolve"]


def resolve(names_or_exprs: Sequence[str], declared: Mapping[str, Any]) -> list[Invariant]:
    """Known names pick declared invariants; anything else must parse as an expression."""
    found: list[Invariant] = []
    for item in names_or_exprs:
        if item in declared:
            value = declared[item]
            if isinstance(value, Invariant):
                found.append(value)
            elif isinstance(value, str):
                found.append(parse_invariant(value, name=item))
            elif callable(value):
                found.append(FunctionInvariant(item, value))
            else:
                raise InvariantError(f"invariant {item!r} is a {type(value).__name__}, not an Invariant")
        elif re.fullmatch(r"[\w.\-]+", item) and not item.startswith(("every", "never")):
            raise InvariantError(
                f"unknown invariant {item!r}; declared: {', '.join(sorted(declared)) or 'none'} "
                "(or give an expression, see docs/invariants.md)"
            )
        else:
            found.append(parse_invariant(item))
    return found
