"""The caption generator is seeded, varied, and its held-out set is really held out."""

from __future__ import annotations

from edgetrace.scenarios.agri.captions import EVENT_TYPES, CaptionGenerator, held_out, training_set


def test_same_seed_same_captions():
    assert CaptionGenerator(4).batch(50) == CaptionGenerator(4).batch(50)
    assert CaptionGenerator(4).batch(50) != CaptionGenerator(5).batch(50)


def test_all_types_appear():
    assert {c.event_type for c in CaptionGenerator(1).batch(300)} == set(EVENT_TYPES)


def test_held_out_texts_never_occur_in_training():
    seen = {c.text for c in training_set()}
    assert not any(c.text in seen for c in held_out(7, 200))
