"""Build `hazard.onnx`: a two-layer MLP that scores a drone's sensor reading as a hazard.

The weights are written down, not trained: the point of the swarm scenario is topology
(peer-to-peer gossip, happens-before between drones), so the model only has to be a real
ONNX graph that ONNX Runtime executes deterministically. Features, in order:
smoke, heat, wind, obstacle (each 0..1). Regenerate with
`python -m edgetrace.scenarios.swarm.model.build` (needs the `onnx` package, dev-only).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

W1 = np.array(
    [[2.5, 0.2, 1.8, 0.0], [2.0, 0.1, 0.0, 1.5], [0.3, 2.2, 0.0, 0.2], [0.0, 0.0, 0.1, 3.0]],
    dtype=np.float32,
)  # 4 features -> 4 hidden
B1 = np.array([-1.0, -0.8, -0.5, -1.2], dtype=np.float32)
W2 = np.array([[1.6], [1.4], [1.2], [1.8]], dtype=np.float32)
B2 = np.array([-2.2], dtype=np.float32)


def build(out: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("MatMul", ["features", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "B1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W2"], ["o0"]),
        helper.make_node("Add", ["o0", "B2"], ["o1"]),
        helper.make_node("Sigmoid", ["o1"], ["hazard"]),
    ]
    graph = helper.make_graph(
        nodes, "hazard_mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("hazard", TensorProto.FLOAT, [1, 1])],
        [numpy_helper.from_array(a, n) for a, n in ((W1, "W1"), (B1, "B1"), (W2, "W2"), (B2, "B2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgetrace")
    model.ir_version = 8
    onnx.checker.check_model(model)
    out.write_bytes(model.SerializeToString())


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "hazard.onnx"
    build(target)
    print(f"wrote {target} ({target.stat().st_size} bytes)")
