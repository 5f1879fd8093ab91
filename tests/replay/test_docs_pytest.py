"""The worked example in docs/pytest.md runs, and says what the doc says it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "pytest.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(# test_agri_safety\.py\n.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/pytest.md should hold exactly one worked example file"
    return blocks[0]


@pytest.mark.slow
def test_worked_example_in_docs_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_agri_safety=_example())
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=6, xfailed=1)
