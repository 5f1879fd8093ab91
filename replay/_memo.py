"""The inference memo: a replayed model or policy step that is the recorded one is not run again.

A replay re-executes every `infer` and `decide` of the recording, and most of them see exactly
what they saw then (85 % of an agri sweep's time went there). ONNX Runtime with the settings
edgetrace fixes is bit-identical run to run, and so is a Rego bundle, so a step whose artifact
(sha256 and runner options) and inputs are byte-identical to the recorded step at the same
causal position gets the recorded output back, rebuilt from the step's blobs:

    replayed step ── key ──► recorded span ── same sha256, same options, same input blob? ──┐
                                                   no: run it        yes: recall the output ◄┘

"Byte-identical" is checked, never assumed: the inputs are encoded the way the recorder
encodes them and compared by content hash with the recorded input blob; a substituted model
or policy has another sha256; a model fault takes the fault's path before the memo is asked.
Runners and engines opt in (`memoisable`, `memo_inputs`, `recall`): one that cannot say what
it records before running is always run. A sample of the steps served from the memo is run
anyway and compared (`verify`): a mismatch stops the replay with `MemoMismatchError`, naming
the step, when the run ends (the replay itself goes on with the re-executed output, so the
mismatch cannot hide behind a handler that catches errors). Faithful replays verify a sample
by default; `reexecute=True` turns the memo off.
"""

from __future__ import annotations

import json
import weakref
from typing import TYPE_CHECKING, Any

from edgetrace import _attrs as attr
from edgetrace._codec import decode_any, encode
from edgetrace._errors import ReplayError
from edgetrace._records import Span, SpanKind, blob_id
from edgetrace._stepkey import StepKey
from edgetrace.agents._models import ModelResult, ModelRunner
from edgetrace.agents._preview import json_bytes
from edgetrace.agents._rules import Decision, RuleEngine

if TYPE_CHECKING:
    from edgetrace.replay._recording import Recording

__all__ = ["DEFAULT_FAITHFUL_VERIFY", "InferenceMemo", "MemoMismatchError", "MemoStats"]

#: How many memoised steps a faithful replay re-executes to check the memo (spread over the session).
DEFAULT_FAITHFUL_VERIFY = 8


class MemoMismatchError(ReplayError):
    """A step served from the memo gave another output when it was re-executed: the model or
    policy is not deterministic, or its runner misstates what it records."""

    def __init__(self, message: str, key: StepKey | None = None) -> None:
        super().__init__(message)
        self.key = key

    def __reduce__(self) -> tuple[type[MemoMismatchError], tuple[str, StepKey | None]]:
        return type(self), (str(self), self.key)  # crosses process pools and Ray intact


class MemoStats:
    """What the memo did in one replay: steps served, run (and why), re-executed to check."""

    __slots__ = ("hits", "misses", "verified")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.verified = 0

    def to_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "verified": self.verified}


# blobs of a recording, read once per process and shared by every replay of it
_BLOBS: weakref.WeakKeyDictionary[Recording, dict[str, bytes]] = weakref.WeakKeyDictionary()


def _json_exact(value: Any) -> bool:
    """True when `json_bytes` loses nothing of `value` that a JSON policy could see."""
    kind = type(value)
    if kind is dict:
        return all(type(k) is str and _json_exact(v) for k, v in value.items())
    if kind is list:
        return all(_json_exact(v) for v in value)
    return kind in (str, int, float, bool) or value is None


class InferenceMemo:
    """Serves recorded outputs for byte-identical steps of one replay (one per run)."""

    def __init__(self, recording: Recording, *, reexecute: bool = False, verify: int = 0) -> None:
        self.recording = recording
        self.enabled = not reexecute
        self.stats = MemoStats()
        self.mismatch: MemoMismatchError | None = None  # the first one; raised by `check`
        self._blobs = _BLOBS.setdefault(recording, {})
        self._options: dict[tuple[str, str], bytes] = {}
        self._verify = _spread(recording, verify) if verify > 0 and self.enabled else frozenset()

    def _blob(self, sha: str) -> bytes:
        found = self._blobs.get(sha)
        if found is None:
            found = self._blobs[sha] = self.recording.session.blob(sha)
        return found

    def _recorded(self, key: StepKey, kind: SpanKind) -> Span | None:
        span = self.recording.by_key.get(key)
        if span is None or span.kind is not kind or span.failed:
            return None  # a failed step recorded no output to give back
        return span

    # --- models -------------------------------------------------------------------------------

    def model(self, runner: ModelRunner, inputs: Any, key: StepKey) -> ModelResult | None:
        """The recorded result of this step, or None: run the model."""
        if not self.enabled or not runner.memoisable:
            return None
        span = self._recorded(key, SpanKind.INFER)
        found = self._model_hit(runner, inputs, span) if span is not None else None
        if found is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        if key in self._verify:
            return self._check_model(runner, inputs, key, found)
        return found

    def check(self) -> None:
        """Raise the first mismatch verification found (called when the run ends)."""
        if self.mismatch is not None:
            raise self.mismatch

    def _model_hit(self, runner: ModelRunner, inputs: Any, span: Span) -> ModelResult | None:
        sha_in, sha_out = span.blobs.get("input"), span.blobs.get("output")
        if sha_in is None or sha_out is None or span.attrs.get(attr.MODEL_SHA256) != runner.sha256:
            return None
        if encode(span.attrs.get(attr.MODEL_OPTIONS)) != self._runner_options(runner):
            return None
        wanted = runner.memo_inputs(inputs)
        if wanted is None:
            return None
        data = encode(wanted)
        if blob_id(data) != sha_in:
            return None
        raw_out = self._blob(sha_out)
        try:
            result = runner.recall(decode_any(data), decode_any(raw_out))
        except (KeyError, TypeError, ValueError, IndexError):  # recorded by another runner version: run it
            return None
        # the recorder stores bytes as they are: the replayed blobs are the recorded ones
        result.inputs, result.outputs = data, raw_out
        return result

    def _runner_options(self, runner: ModelRunner) -> bytes:
        mark = (runner.name, runner.sha256)
        found = self._options.get(mark)
        if found is None:
            found = self._options[mark] = encode(runner.options())
        return found

    def _check_model(self, runner: ModelRunner, inputs: Any, key: StepKey, memo: ModelResult) -> ModelResult:
        self.stats.verified += 1
        real = runner.run(inputs)
        if _model_bytes(real, inputs) != _model_bytes(memo, inputs) and self.mismatch is None:
            self.mismatch = MemoMismatchError(
                f"inference memo: model {runner.name!r} at step {_where(key)} gave another output when "
                f"re-executed than the recording holds (recorded {_show(memo.output)}, re-executed "
                f"{_show(real.output)}); the model is not deterministic here — replay with "
                "--reexecute all", key=key)
        return real

    # --- policies -----------------------------------------------------------------------------

    def policy(self, engine: RuleEngine, document: Any, key: StepKey) -> Decision | None:
        """The recorded decision of this step, or None: evaluate the policy."""
        if not self.enabled or not engine.memoisable:
            return None
        span = self._recorded(key, SpanKind.DECIDE)
        found = self._policy_hit(engine, document, span) if span is not None else None
        if found is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        if key in self._verify:
            self.stats.verified += 1
            real = engine.evaluate(document)
            if (json_bytes(real.result) != json_bytes(found.result) or real.value != found.value
                    or real.fired != found.fired) and self.mismatch is None:
                self.mismatch = MemoMismatchError(
                    f"inference memo: policy {engine.name!r} at step {_where(key)} decided otherwise when "
                    f"re-executed (recorded {_show(found.value)}, re-executed {_show(real.value)}); "
                    "replay with --reexecute all", key=key)
            return real
        return found

    def _policy_hit(self, engine: RuleEngine, document: Any, span: Span) -> Decision | None:
        sha_in, sha_result = span.blobs.get("input"), span.blobs.get("result")
        if sha_in is None or sha_result is None or span.attrs.get(attr.POLICY_SHA256) != engine.sha256:
            return None
        if span.attrs.get(attr.TIMED_OUT) or not _json_exact(document):
            return None
        if blob_id(json_bytes(document)) != sha_in:
            return None
        try:
            return engine.recall(json.loads(self._blob(sha_result)))
        except ValueError:  # not the JSON a decision records: evaluate it
            return None


def _model_bytes(result: ModelResult, inputs: Any) -> bytes:
    from edgetrace.agents._models import tensor_to_obj
    from edgetrace.agents._preview import preview

    def raw(value: Any) -> bytes:
        return value if isinstance(value, bytes) else encode(value)

    recorded_in = result.inputs if result.inputs is not None else tensor_to_obj(inputs)
    return encode([preview(result.output), raw(recorded_in),
                   raw(result.outputs) if result.outputs is not None else b"", result.attrs, result.error])


def _spread(recording: Recording, n: int) -> frozenset[StepKey]:
    """`n` model and policy steps spread evenly over the recording (its nodes' streams interleaved
    by position: local clocks of different nodes do not compare)."""
    keys = recording.keys
    steps = sorted((s for s in recording.spans if s.kind in (SpanKind.INFER, SpanKind.DECIDE) and s.ref in keys),
                   key=lambda s: (s.seq, s.node))
    if not steps:
        return frozenset()
    if n >= len(steps):
        return frozenset(keys[s.ref] for s in steps)
    return frozenset(keys[steps[(i * len(steps)) // n].ref] for i in range(n))


def _where(key: StepKey) -> str:
    trace, node, kind, name, n = key
    return f"{node} {kind} {name} #{n} of trace {trace}"


def _show(value: Any) -> str:
    text = json_bytes(value).decode()
    return text if len(text) <= 120 else text[:119] + "…"
