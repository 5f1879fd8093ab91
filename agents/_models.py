"""Model runners: the `infer` step. ONNX Runtime with settings that make outputs repeatable.

A runner loads one model file, knows its sha256 (the session manifest names models by
hash, so a replay can tell when the model changed) and returns a `ModelResult` holding the
decoded output plus the raw tensors, which the recorder stores as blobs. Session options
are fixed (one intra-op thread, sequential execution, a fixed optimisation level) because
those are what make ONNX Runtime bit-identical from run to run; they are recorded on the
span so a replay can say when they differ.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from edgetrace._artifacts import callable_sha256, file_sha256
from edgetrace._errors import ModelError

__all__ = ["FunctionRunner", "ModelResult", "ModelRunner", "OnnxRunner", "deterministic_session", "tensor_from_obj",
           "tensor_to_obj"]


@dataclass
class ModelResult:
    """What one model run produced; `output` is what the handler gets back."""

    output: Any
    inputs: Any = None
    outputs: Any = None
    attrs: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def tensor_to_obj(value: Any) -> Any:
    """Make tensors MessagePack-able and exact: dtype, shape and raw little-endian bytes."""
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        return {"dtype": arr.dtype.str, "shape": list(arr.shape), "data": arr.tobytes()}
    if isinstance(value, Mapping):
        return {str(k): tensor_to_obj(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tensor_to_obj(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class ModelRunner(abc.ABC):
    """One loaded model. Subclass and implement `run` for anything that is not plain ONNX.

    A runner built from a file (`path`) is identified by the file's sha256; one that has no
    file (a Python function, a remote endpoint) passes its own `sha256`.
    """

    provider = "onnxruntime"
    #: The replay may serve this runner's steps from the recording when their inputs are
    #: byte-identical (`memo_inputs`, `recall`); only runners that are deterministic and can
    #: say what they record before running opt in.
    memoisable = False

    def __init__(self, name: str, path: str | Path | None = None, *, sha256: str = "") -> None:
        self.name = name
        self.sha256 = sha256
        if path is not None:
            self.path = Path(path)
            if not self.path.is_file():
                raise ModelError(f"model {name!r}: no file at {self.path}", model=name)
            self.sha256 = file_sha256(self.path)

    @abc.abstractmethod
    def run(self, inputs: Any) -> ModelResult:
        """Run the model once. Must be deterministic for the same inputs."""

    def options(self) -> dict[str, Any]:
        """Settings that affect outputs, recorded with every infer span."""
        return {}

    def memo_inputs(self, inputs: Any) -> Any:
        """What `run(inputs)` records as the step's inputs (its `ModelResult.inputs`, else the
        inputs as tensors), computed without running the model; None when that cannot be said
        (the step then runs). The replay's inference memo matches recorded steps on it."""
        return None

    def recall(self, inputs: Any, outputs: Any) -> ModelResult:
        """The `ModelResult` that `run` returned, rebuilt from what it recorded: its `inputs` and
        `outputs`, decoded from the step's blobs. Needed only when `memoisable`."""
        raise NotImplementedError(f"{type(self).__name__} is not memoisable")

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        pass

    def __enter__(self) -> ModelRunner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class FunctionRunner(ModelRunner):
    """A model that is a Python function: `fn(inputs)` returns the output (or a ModelResult).

    The in-memory twin of a model file — for tests, for stand-ins of models not built yet, and
    for rules-of-thumb that sit where a model will. Identified by the function's source.
    """

    provider = "python"

    def __init__(self, name: str, fn: Callable[[Any], Any]) -> None:
        super().__init__(name, sha256=callable_sha256(fn))
        self.fn = fn

    def run(self, inputs: Any) -> ModelResult:
        out = self.fn(inputs)
        return out if isinstance(out, ModelResult) else ModelResult(output=out)


def deterministic_session(path: Path, *, threads: int = 1) -> tuple[Any, dict[str, Any]]:
    """An InferenceSession whose outputs repeat bit for bit, and the settings used."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # BASIC folds constants but leaves out layout-dependent fusions that vary by CPU.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.use_deterministic_compute = True
    opts.log_severity_level = 3
    settings = {
        "provider": "CPUExecutionProvider",
        "intra_op_threads": threads,
        "inter_op_threads": 1,
        "execution_mode": "sequential",
        "optimization": "basic",
        "deterministic_compute": True,
        "onnxruntime": ort.__version__,
    }
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(f"cannot load ONNX model {path}: {exc}", model=str(path)) from None
    return session, settings


def tensor_from_obj(value: Any) -> Any:
    """The inverse of `tensor_to_obj` for what it made of arrays (a fresh, writable array)."""
    if isinstance(value, Mapping):
        if set(value) == {"dtype", "shape", "data"} and isinstance(value["data"], (bytes, bytearray)):
            arr = np.frombuffer(value["data"], dtype=np.dtype(value["dtype"]))
            return arr.reshape([int(n) for n in value["shape"]]).copy()
        return {k: tensor_from_obj(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tensor_from_obj(v) for v in value]
    return value


class OnnxRunner(ModelRunner):
    """Any `.onnx` file: inputs are a mapping name → array, outputs the same."""

    memoisable = True

    def __init__(self, name: str, path: str | Path, *, threads: int = 1) -> None:
        super().__init__(name, path)
        self.session, self._settings = deterministic_session(self.path, threads=threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def options(self) -> dict[str, Any]:
        return dict(self._settings)

    def _feeds(self, inputs: Any) -> dict[str, Any]:
        return {n: np.asarray(inputs[n]) for n in self.input_names}

    def memo_inputs(self, inputs: Any) -> Any:
        if not isinstance(inputs, Mapping) or any(n not in inputs for n in self.input_names):
            return None  # run() says what is wrong
        return tensor_to_obj(self._feeds(inputs))

    def recall(self, inputs: Any, outputs: Any) -> ModelResult:
        values = {n: tensor_from_obj(outputs[n]) for n in self.output_names}
        return ModelResult(output=values, inputs=inputs, outputs=outputs, attrs={})

    def run(self, inputs: Any) -> ModelResult:
        if not isinstance(inputs, Mapping):
            raise ModelError(
                f"model {self.name!r}: expected a mapping of input name to array, "
                f"got {type(inputs).__name__}", model=self.name,
            )
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ModelError(f"model {self.name!r}: missing inputs {missing}", model=self.name)
        feeds = self._feeds(inputs)
        values = self.session.run(self.output_names, feeds)
        outputs = dict(zip(self.output_names, values, strict=True))
        return ModelResult(
            output=outputs,
            inputs=tensor_to_obj(feeds),
            outputs=tensor_to_obj(outputs),
            attrs={},
        )
