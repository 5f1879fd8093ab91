"""Shared fixtures: small hand-built sessions with correct delta clocks."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=100, deadline=None)
# a long hunt before a stop: pytest --hypothesis-profile=deep (random, 2,000 examples per property)
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def tmp_session_path(tmp_path):
    return tmp_path / "s.ets"
