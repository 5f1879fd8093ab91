"""The event extractor as an edgetrace model runner: ONNX Runtime, greedy decoding.

Wraps the scenario's generative extractor so `ctx.infer("event_extractor", caption)`
records what an on-call engineer needs: the caption, the token ids in and out, the decoded
text, per-token probabilities, and the validated event (or why validation failed — the
seed article's defensive check before the rule engine sees anything).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetrace.agents import ModelResult, ModelRunner
from edgetrace.scenarios.agri.extractor import (
    EventExtractor,
    Extraction,
    load_session,
    validate_event,
)

__all__ = ["ExtractorRunner"]


class ExtractorRunner(ModelRunner):
    """`run(caption) -> event dict | None`; None (with an error) when the output is malformed.

    Memoisable: what it records as inputs (the caption and its token ids) follows from the
    caption alone, and the result is rebuilt from the recorded tokens exactly as decoding built it.
    """

    memoisable = True

    def __init__(self, name: str, path: str | Path, *, threads: int = 1) -> None:
        super().__init__(name, path)
        self.threads = threads
        session = load_session(self.path, intra_op_threads=threads)
        self.extractor = EventExtractor(session, _vocab_for(self.path))

    def options(self) -> dict[str, Any]:
        return {
            "provider": "CPUExecutionProvider",
            "intra_op_threads": self.threads,
            "inter_op_threads": 1,
            "execution_mode": "sequential",
            "deterministic_compute": True,
            "decoding": "greedy, constrained to valid event types",
        }

    def run(self, inputs: Any) -> ModelResult:
        return self._result(str(inputs), self.extractor.extract(str(inputs)))

    def memo_inputs(self, inputs: Any) -> Any:
        caption = str(inputs)
        return {"caption": caption, "input_ids": self.extractor.encode(caption)}

    def recall(self, inputs: Any, outputs: Any) -> ModelResult:
        ex = self.extractor
        text, out_ids = str(outputs["text"]), [int(i) for i in outputs["output_ids"]]
        probs = [float(p) for p in outputs["token_probs"]]
        event = None
        if out_ids and out_ids[-1] == ex.eos and text in ex.types:  # as extract() decides it
            event = {"type": text, "confidence": round(float(np.prod(probs)), 4)}
        extraction = Extraction(event, text, [int(i) for i in inputs["input_ids"]], out_ids, probs,
                                event is not None)
        return self._result(str(inputs["caption"]), extraction)

    def run_faulty(self, inputs: Any, mode: str, tokens: int) -> ModelResult:
        """Injected model faults, produced by the real decoder where that makes sense."""
        caption = str(inputs)
        if mode == "truncated_output":
            return self._result(caption, self.extractor.extract(caption, max_new_tokens=max(1, tokens or 2)))
        return self._result(caption, self.extractor.extract(caption, max_new_tokens=0))

    def _result(self, caption: str, extraction: Any) -> ModelResult:
        event, error = None, ""
        try:
            if extraction.event is None:
                raise ValueError(f"malformed model output {extraction.text!r}")
            event = validate_event(extraction.event)
        except ValueError as exc:
            error = f"invalid model output: {exc}"
        return ModelResult(
            output=event,
            inputs={"caption": caption, "input_ids": list(extraction.input_ids)},
            outputs={
                "text": extraction.text,
                "output_ids": list(extraction.output_ids),
                "token_probs": [float(p) for p in extraction.token_probs],
            },
            attrs={
                "gen_ai.usage.input_tokens": len(extraction.input_ids),
                "gen_ai.usage.output_tokens": len(extraction.output_ids),
                "edgetrace.output.text": extraction.text,
            },
            error=error,
        )


def _vocab_for(model_path: Path) -> dict[str, Any]:
    import json

    vocab = model_path.with_name("vocab.json")
    loaded: dict[str, Any] = json.loads(vocab.read_text(encoding="utf-8"))
    return loaded
