"""Camera captions for the agri scenario: a seeded generator with ground-truth labels.

Captions come from templates per event type with varied rows, places, camera prefixes and
wording. The held-out set holds only captions whose text never occurs in the training set,
a fifth of them with words training never used, so the extractor's accuracy on it measures
generalisation rather than memory. A small class of ambiguous low-light captions is labelled weed *or* no event at
random, so the model learns to be genuinely unsure about them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["EVENT_TYPES", "Caption", "CaptionGenerator", "held_out"]

EVENT_TYPES = ("weed_detected", "soil_moisture_low", "obstacle_detected", "no_event")

WEEDS = ["broadleaf weeds", "thistle", "pigweed", "ragweed", "a dandelion cluster", "bindweed", "crabgrass",
         "nettle", "lambsquarters", "foxtail"]
WEEDS_HELD = ["dock weed", "chickweed", "a patch of bindweed", "young thistles"]
PLACES = ["near the east gate", "by the irrigation line", "at the headland", "next to the ditch",
          "along the fence", "under the power line", "by the north track", "near the pump house"]
PLACES_HELD = ["beside the windbreak", "at the south corner"]
OBSTACLES = ["a rock", "a fallen branch", "a stray sheep", "an irrigation pipe", "a tyre", "a fence post",
             "a deer", "a pile of stones"]
OBSTACLES_HELD = ["a broken crate", "a parked quad bike"]
DRY = ["dry soil", "cracked earth", "parched ground", "dusty topsoil", "wilting seedlings in dry soil"]
DRY_HELD = ["sun-baked clay", "powdery dry soil"]
CLEAR = ["clear row, no obstacles", "crop rows look healthy", "nothing unusual in the row",
         "even canopy, no weeds visible", "clean furrow", "healthy maize, no gaps"]
CLEAR_HELD = ["uniform crop cover", "the row is clean"]

TEMPLATES = {
    "weed_detected": ["{weed} between rows {r} and {r2}", "{weed} in row {r}", "patch of {weed} {place}",
                      "{weed} growing {place}", "dense {weed} at row {r}", "spotted {weed} near row {r}",
                      "camera sees {weed} around row {r}", "{weed} visible {place}", "a few {weed} plants in row {r}",
                      "weeds: {weed} {place}"],
    "soil_moisture_low": ["{dry} {place}", "{dry} in row {r}", "row {r} shows {dry}",
                          "{dry} between rows {r} and {r2}", "{dry} observed at row {r}", "field shows {dry} {place}",
                          "soil looks dry: {dry} in row {r}"],
    "obstacle_detected": ["{obstacle} blocking row {r}", "{obstacle} {place}", "{obstacle} in the path at row {r}",
                          "row {r} obstructed by {obstacle}", "{obstacle} lying in row {r}", "there is {obstacle} {place}",
                          "stop: {obstacle} ahead in row {r}"],
    "no_event": ["{clear}", "row {r}: {clear}", "{clear} {place}", "{clear} near row {r}", "{clear} at row {r}",
                 "all good: {clear}", "nothing to report, {clear}"],
}
PREFIXES = ["", "", "", "camera 1: ", "camera 2: ", "frame shows ", "front camera: ", "rear camera: "]
AMBIGUOUS = ["possible weeds, low light, row {r}", "blurry green shapes near row {r}", "unclear patch {place}, poor light"]

WEIGHTS = {"weed_detected": 0.32, "soil_moisture_low": 0.2, "obstacle_detected": 0.12, "no_event": 0.36}


@dataclass(frozen=True)
class Caption:
    text: str
    event_type: str
    zone: str
    ambiguous: bool = False


class CaptionGenerator:
    """Deterministic stream of captions; `held=True` draws from the held-out pool."""

    def __init__(self, seed: int, *, held: bool = False, ambiguous_rate: float = 0.05,
                 novel_words: float = 0.2) -> None:
        self._rng = random.Random(f"agri-captions/{seed}/{'held' if held else 'train'}")
        self._held = held
        self._novel = novel_words
        self._ambiguous_rate = ambiguous_rate

    def next(self) -> Caption:
        rng = self._rng
        row = rng.randint(1, 60)
        slots = {
            "r": row, "r2": row + 1,
            "weed": self._word(WEEDS, WEEDS_HELD),
            "place": self._word(PLACES, PLACES_HELD),
            "obstacle": self._word(OBSTACLES, OBSTACLES_HELD),
            "dry": self._word(DRY, DRY_HELD),
            "clear": self._word(CLEAR, CLEAR_HELD),
        }
        prefix = rng.choice(PREFIXES)
        if rng.random() < self._ambiguous_rate:
            text = prefix + rng.choice(AMBIGUOUS).format(**slots)
            label = "weed_detected" if rng.random() < 0.5 else "no_event"
            return Caption(text, label, f"row-{row}", ambiguous=True)
        kinds = list(WEIGHTS)
        kind = rng.choices(kinds, weights=[WEIGHTS[k] for k in kinds])[0]
        text = prefix + rng.choice(TEMPLATES[kind]).format(**slots)
        return Caption(text, kind, f"row-{row}")

    def _word(self, common: list[str], held: list[str]) -> str:
        """Held-out captions use words the model never saw in training (20 % by default)."""
        if self._held and self._rng.random() < self._novel:
            return self._rng.choice(held)
        return self._rng.choice(common)

    def batch(self, n: int) -> list[Caption]:
        return [self.next() for _ in range(n)]


TRAINING_SEED = 20261124
TRAINING_SIZE = 40_000


def training_set(seed: int = TRAINING_SEED, n: int = TRAINING_SIZE) -> list[Caption]:
    return CaptionGenerator(seed).batch(n)


def held_out(seed: int, n: int, *, novel_words: float = 0.0) -> list[Caption]:
    """The evaluation set: captions whose text never occurs in the training set; with
    `novel_words` > 0 that share of slots uses words training never saw. No ambiguous
    captions (their label is a coin toss)."""
    seen = {c.text for c in training_set()}
    gen = CaptionGenerator(seed, held=True, ambiguous_rate=0.0, novel_words=novel_words)
    found: list[Caption] = []
    while len(found) < n:
        c = gen.next()
        if c.text not in seen:
            found.append(c)
    return found
