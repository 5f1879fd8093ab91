"""Malformed fault specs, fault-plan TOML, invariants and link profiles: one clear error, never a crash."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetrace import ConfigError, FaultSpecError, InvariantError
from edgetrace.agents._grid import GridProfile
from edgetrace.replay._invariants import parse_invariant, parse_selector
from edgetrace.replay.faults import FaultKind, FaultPlan

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ALPHABET = st.sampled_from(list("()=,;<->|*?._ ab0123456789smkbit\"'\\\n\t{}[]µ") +
                            [k.value for k in FaultKind] + ["delay", "p", "at", "for", "node", "link", "2s"])
spec_text = st.lists(_ALPHABET, max_size=30).map("".join)


def _one_line(exc: Exception) -> None:
    text = str(exc)
    assert text.strip() and "Traceback" not in text


@FUZZ
@given(spec_text)
def test_fault_spec_garbage(text):
    try:
        plan = FaultPlan.parse([text])
    except FaultSpecError as exc:
        _one_line(exc)
        return
    # what parses must print back to a spec that parses to the same plan
    again = FaultPlan.parse(plan.specs())
    assert again.specs() == plan.specs()


@FUZZ
@given(st.sampled_from(list(FaultKind)), st.dictionaries(
    st.sampled_from(["delay", "p", "at", "for", "until", "node", "nodes", "link", "op", "amount", "window",
                     "copies", "gap", "rate", "offset", "ppm", "restart", "fault", "name", "tokens", "oneway"]),
    st.one_of(st.text(max_size=8), st.integers(-5, 5).map(str), st.sampled_from(["2s", "150ms", "0.5", "true"])),
    max_size=4))
def test_fault_kinds_with_random_arguments(kind, args):
    spec = f"{kind.value}(" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")"
    try:
        FaultPlan.parse([spec])
    except FaultSpecError as exc:
        _one_line(exc)


toml_value = st.one_of(st.text(max_size=10), st.integers(-10, 10), st.floats(allow_nan=True), st.booleans(),
                       st.lists(st.integers(), max_size=2))


@FUZZ
@given(st.dictionaries(st.sampled_from(["name", "seed", "fault", "description", "extra"]),
                       st.one_of(toml_value, st.lists(st.dictionaries(
                           st.sampled_from(["kind", "delay", "p", "node", "at", "op", "link"]),
                           st.one_of(toml_value, st.sampled_from([k.value for k in FaultKind])), max_size=4),
                           max_size=3)), max_size=4))
def test_fault_plan_tables(data):
    try:
        FaultPlan.from_mapping(data, where="fuzz.toml")
    except FaultSpecError as exc:
        _one_line(exc)


@FUZZ
@given(st.binary(max_size=200))
def test_fault_plan_files_with_random_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("plans") / "plan.toml"
    path.write_bytes(raw)
    try:
        FaultPlan.load(path)
    except FaultSpecError as exc:
        _one_line(exc)


inv_words = st.sampled_from(["every", "never", "after", "at", "where", "on", "and", "or", "not", "in", "act", "infer",
                             "decide", "(", ")", "spray", "==", ">", "~", "0.8", '"weed"', "output.type", "state",
                             ".", "get", "tractor-*", "[", "]", ",", "true", "null", "'", '"', "-", "1s"])


@FUZZ
@given(st.lists(inv_words, max_size=14).map(" ".join))
def test_invariant_garbage(text):
    try:
        parse_invariant(text)
    except InvariantError as exc:
        _one_line(exc)
    try:
        parse_selector(text)
    except InvariantError as exc:
        _one_line(exc)


@FUZZ
@given(st.dictionaries(st.sampled_from(["description", "default", "links", "x"]),
                       st.one_of(toml_value, st.dictionaries(st.sampled_from(
                           ["latency", "latency_min", "latency_max", "jitter", "loss", "spike", "from", "to", "bad"]),
                           toml_value, max_size=4), st.lists(st.dictionaries(st.sampled_from(
                               ["from", "to", "latency", "loss"]), toml_value, max_size=3), max_size=2)), max_size=3))
def test_link_profiles(data):
    try:
        GridProfile.from_mapping("fuzz", data)
    except ConfigError as exc:
        _one_line(exc)


def test_error_names_the_bad_token_and_the_choices():
    with pytest.raises(FaultSpecError, match=r"unknown fault kind 'latncy'.*expected one of: .*latency"):
        FaultPlan.parse(["latncy(delay=2s)"])
    with pytest.raises(FaultSpecError, match=r"unknown key 'dealy'.*expected one of: .*delay"):
        FaultPlan.parse(["latency(dealy=2s)"])
    with pytest.raises(FaultSpecError, match=r"bad duration '2 parsecs'"):
        FaultPlan.parse(["latency(delay=2 parsecs)"])


def test_shipped_fault_plans_parse():
    from edgetrace.scenarios.agri.scenario import FOLDER

    for path in sorted((FOLDER / "faults").glob("*.toml")):
        tomllib.loads(path.read_text())
        assert FaultPlan.load(path)
