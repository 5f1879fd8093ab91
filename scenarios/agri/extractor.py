"""Runtime decoding of the agri event extractor: numpy + ONNX Runtime only (no torch).

Greedy, token by token: the caption's characters and a separator go in, the event type comes
out one character at a time until `<eos>`. With `constrained=True` (the default, as deployed)
each step may only pick characters that continue a valid type name — the defensive decoding
that removed the rare malformed outputs. Confidence is the product of the chosen tokens'
probabilities: a model torn between two types shows it in the first character.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EVENT_TYPES", "EventExtractor", "Extraction", "load_session", "session_options_summary",
           "validate_event"]

EVENT_TYPES = ("weed_detected", "soil_moisture_low", "obstacle_detected", "no_event")


def _model_dir() -> Path:
    return Path(str(resources.files("edgetrace.scenarios.agri") / "model"))


def load_session(path: str | Path | None = None, *, intra_op_threads: int = 1) -> Any:
    """An InferenceSession with the settings that make decoding bit-identical run to run."""
    from edgetrace.agents import deterministic_session

    session, _ = deterministic_session(Path(path or _model_dir() / "event_extractor.onnx"),
                                       threads=intra_op_threads)
    return session


def session_options_summary(session: Any) -> dict[str, Any]:
    opts = session.get_session_options()
    return {"intra_op_threads": opts.intra_op_num_threads, "inter_op_threads": opts.inter_op_num_threads,
            "deterministic_compute": bool(opts.use_deterministic_compute),
            "optimization": str(opts.graph_optimization_level).rsplit(".", 1)[-1]}


@dataclass(frozen=True)
class Extraction:
    event: dict[str, Any] | None
    text: str
    input_ids: list[int]
    output_ids: list[int]
    token_probs: list[float]
    valid: bool


def validate_event(obj: Any) -> dict[str, Any]:
    """The schema the rule engine relies on; anything else is refused before it gets there."""
    if not isinstance(obj, dict):
        raise ValueError(f"event must be an object, got {type(obj).__name__}")
    extra = sorted(set(obj) - {"type", "confidence"})
    if extra:
        raise ValueError(f"event has unexpected fields {extra}")
    kind = obj.get("type")
    if kind not in EVENT_TYPES:
        raise ValueError(f"event type {kind!r} is not one of {', '.join(EVENT_TYPES)}")
    conf = obj.get("confidence")
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 <= float(conf) <= 1.0:
        raise ValueError(f"event confidence {conf!r} is not a number in [0, 1]")
    return {"type": kind, "confidence": float(conf)}


class EventExtractor:
    """Caption → event object, by greedy decoding on an ONNX Runtime session."""

    def __init__(self, session: Any, vocab: dict[str, Any]) -> None:
        self.session = session
        self.vocab = vocab
        self.chars: dict[str, int] = vocab["chars"]
        self.inverse = {i: ch for ch, i in self.chars.items()}
        self.context = int(vocab["context"])
        self.max_caption = int(vocab["max_caption"])
        self.max_output = int(vocab["max_output"])
        self.eos, self.sep, self.unk, self.pad = vocab["eos"], vocab["sep"], vocab["unk"], vocab["pad"]
        self.types = list(vocab["types"])
        self.input_name = session.get_inputs()[0].name

    @classmethod
    def from_path(cls, model_path: str | Path | None = None, vocab_path: str | Path | None = None, *,
                  intra_op_threads: int = 1) -> EventExtractor:
        vocab = json.loads(Path(vocab_path or _model_dir() / "vocab.json").read_text(encoding="utf-8"))
        return cls(load_session(model_path, intra_op_threads=intra_op_threads), vocab)

    def encode(self, caption: str) -> list[int]:
        return [self.chars.get(ch, self.unk) for ch in caption.lower()[: self.max_caption]]

    def _allowed(self, prefix: str) -> list[int]:
        allowed = set()
        for t in self.types:
            if t.startswith(prefix):
                allowed.add(self.eos if len(t) == len(prefix) else self.chars[t[len(prefix)]])
        return sorted(allowed)

    def extract(self, caption: str, *, constrained: bool = True, max_new_tokens: int | None = None) -> Extraction:
        input_ids = self.encode(caption)
        seq = [*input_ids, self.sep]
        limit = self.max_output if max_new_tokens is None else max(0, min(max_new_tokens, self.max_output))
        out_ids: list[int] = []
        probs: list[float] = []
        text = ""
        finished = False
        buf = np.full((1, self.context), self.pad, dtype=np.int64)
        for _ in range(limit):
            pos = len(seq) - 1
            buf[0, : len(seq)] = seq
            logits = self.session.run(None, {self.input_name: buf})[0][0, pos].astype(np.float64)
            p = np.exp(logits - logits.max())
            p /= p.sum()
            candidates = self._allowed(text) if constrained else list(range(len(p)))
            token = max(candidates, key=lambda i: (p[i], -i))
            out_ids.append(int(token))
            probs.append(round(float(p[token]), 6))
            if token == self.eos:
                finished = True
                break
            text += self.inverse.get(int(token), "?")
            seq.append(int(token))
            if len(seq) >= self.context:
                break
        event = None
        if finished and text in self.types:
            confidence = float(np.prod(probs))
            event = {"type": text, "confidence": round(confidence, 4)}
        return Extraction(event, text, input_ids, out_ids, probs, event is not None)
