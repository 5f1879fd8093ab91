"""The shipped event extractor: loads, decodes deterministically, meets its stated accuracy."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgetrace.scenarios.agri.captions import CaptionGenerator, held_out
from edgetrace.scenarios.agri.extractor import EVENT_TYPES, EventExtractor, validate_event

MODEL = Path(__file__).resolve().parents[2] / "scenarios" / "agri" / "model" / "event_extractor.onnx"


@pytest.fixture(scope="module")
def extractor():
    return EventExtractor.from_path()


def test_model_is_one_small_self_contained_file():
    assert MODEL.stat().st_size < 1_000_000
    assert not list(MODEL.parent.glob("*.data"))
    import onnxruntime as ort

    names = [i.name for i in ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"]).get_inputs()]
    assert names == ["input_ids"]


def test_decoding_is_bit_identical_across_runs_and_threads(extractor):
    other = EventExtractor.from_path(intra_op_threads=2)
    for caption in CaptionGenerator(3).batch(8):
        first = extractor.extract(caption.text)
        for _ in range(3):
            again = extractor.extract(caption.text)
            assert (again.output_ids, again.token_probs) == (first.output_ids, first.token_probs)
        two = other.extract(caption.text)
        assert (two.output_ids, two.token_probs) == (first.output_ids, first.token_probs)


def test_held_out_accuracy_meets_the_readme(extractor):
    captions = held_out(7, 300)
    correct = sum((extractor.extract(c.text).event or {}).get("type") == c.event_type for c in captions)
    assert correct / len(captions) >= 0.97


def test_ambiguous_captions_are_less_confident(extractor):
    ambiguous = [extractor.extract(c.text).event["confidence"]
                 for c in CaptionGenerator(5, ambiguous_rate=1.0).batch(30)]
    weeds = [extractor.extract(c.text).event["confidence"] for c in held_out(8, 120)
             if c.event_type == "weed_detected"]
    assert statistics.mean(ambiguous) < 0.8 < statistics.mean(weeds)


def test_truncated_output_is_malformed(extractor):
    result = extractor.extract("broadleaf weeds between rows 12 and 13", max_new_tokens=2)
    assert result.event is None and not result.valid and len(result.output_ids) == 2


def test_constrained_output_is_always_a_valid_type(extractor):
    for c in CaptionGenerator(11, ambiguous_rate=0.3).batch(40):
        assert extractor.extract(c.text).event["type"] in EVENT_TYPES


@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers()),
                 st.dictionaries(st.sampled_from(["type", "confidence", "extra"]),
                                 st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True),
                                           st.sampled_from([*EVENT_TYPES, "weed"]), st.integers(-2, 2)))))
def test_validate_event_accepts_only_the_schema(obj):
    try:
        event = validate_event(obj)
    except ValueError:
        return
    assert event["type"] in EVENT_TYPES and 0.0 <= event["confidence"] <= 1.0
