"""Every example in docs/faults.md parses, and the doc covers every fault kind."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from edgetrace.replay.faults import FaultKind, FaultPlan

DOC = (Path(__file__).resolve().parents[2] / "docs" / "faults.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)


def test_every_spec_example_parses_and_round_trips():
    specs = [line.strip() for block in _blocks("faults") for line in block.splitlines() if line.strip()]
    assert len(specs) > 20
    for spec in specs:
        plan = FaultPlan.parse([spec])
        assert FaultPlan.parse(plan.specs()).specs() == plan.specs()
    kinds = {FaultPlan.parse([s]).faults[0].kind for s in specs}
    assert kinds == set(FaultKind), f"docs/faults.md has no example for {set(FaultKind) - kinds}"


def test_toml_example_parses():
    (block,) = _blocks("toml")
    plan = FaultPlan.from_mapping(tomllib.loads(block), where="docs/faults.md")
    assert plan.seed == 7 and len(plan.faults) == 4


def test_the_documented_error_is_the_real_one():
    import pytest

    from edgetrace import FaultSpecError

    line = next(x for x in DOC.splitlines() if x.startswith("edgetrace: error: unknown fault kind"))
    with pytest.raises(FaultSpecError) as err:
        FaultPlan.parse(["latncy(delay=2s)"])
    assert line == f"edgetrace: error: {err.value}"
