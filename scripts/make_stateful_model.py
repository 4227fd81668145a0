#!/usr/bin/env python3
"""Write a small stateful ONNX model with control flow (shaped like a voice-activity detector),
with expected outputs in the ONNX backend-test layout.

Graph (opset 17, IR version 8, fixed-seed random weights, about 30 kB):

    inputs   x      float32 [batch, 64]      audio chunk
             sr     int64   []               sample rate, 16000 or 8000
             state  float32 [2, batch, 16]   LSTM hidden (state[0]) and cell (state[1])
    feat   = If(Equal(sr, 16000),
                then: Tanh(x @ W16)                    W16 [64, 32]
                else: Tanh(x[:, ::2] @ W8 + b8))       W8 [32, 32]  (every second sample)
    Y_h, Y_c = LSTM(Unsqueeze(feat, 0), initial_h=state[0:1], initial_c=state[1:2])  hidden 16
    outputs  prob      float32 [batch, 1]      Sigmoid(Y_h[0] @ Wout + bout)
             state_out float32 [2, batch, 16]  Concat(Y_h, Y_c)

Writes (into OUT, default tests/data/models/stateful-vad):

    model.onnx, model.yaml
    test_data_set_0/input_{0,1,2}.pb output_{0,1}.pb   batch 2, sr = 16000
    test_data_set_1/...                                  the same x and state, sr = 8000

Expected outputs come from onnx.reference.ReferenceEvaluator; the script checks them against
onnxruntime (CPU) and prints the max abs difference. Output is deterministic (same bytes on rerun).

    PYTHONPATH=$PYENV python3 scripts/make_stateful_model.py [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IN, FEAT, HIDDEN = 64, 32, 16
BATCH = 2


def build_model() -> onnx.ModelProto:
    rng = np.random.default_rng(20240517)

    def w(name: str, *shape: int, scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    def i64(name: str, values: int | list[int]) -> onnx.TensorProto:  # an int gives a 0-d tensor
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    feat_info = helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["batch", FEAT])

    # 16 kHz branch: all 64 samples through W16. Weights live inside the branch (subgraph initializers).
    then_graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W16"], ["mm16"]),
            helper.make_node("Tanh", ["mm16"], ["feat"]),
        ],
        "branch_16k",
        [],
        [feat_info],
        initializer=[w("W16", IN, FEAT, scale=1 / np.sqrt(IN))],
    )
    # 8 kHz branch: every second sample (x[:, 0::2], 32 values), a different matrix and a bias.
    else_graph = helper.make_graph(
        [
            helper.make_node("Slice", ["x", "s8_start", "s8_end", "s8_axes", "s8_step"], ["x_half"]),
            helper.make_node("MatMul", ["x_half", "W8"], ["mm8"]),
            helper.make_node("Add", ["mm8", "b8"], ["pre8"]),
            helper.make_node("Tanh", ["pre8"], ["feat"]),
        ],
        "branch_8k",
        [],
        [feat_info],
        initializer=[
            i64("s8_start", [0]), i64("s8_end", [IN]), i64("s8_axes", [1]), i64("s8_step", [2]),
            w("W8", IN // 2, FEAT, scale=1.5 / np.sqrt(IN // 2)),
            w("b8", FEAT, scale=0.5),
        ],
    )

    nodes = [
        helper.make_node("Equal", ["sr", "sr_16k"], ["is_16k"]),
        helper.make_node("If", ["is_16k"], ["feat"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Unsqueeze", ["feat", "axis0"], ["seq"]),  # [1, batch, 32]
        helper.make_node("Slice", ["state", "h_start", "h_end", "axis0"], ["h0"]),  # [1, batch, 16]
        helper.make_node("Slice", ["state", "h_end", "c_end", "axis0"], ["c0"]),
        helper.make_node(
            "LSTM", ["seq", "W", "R", "B", "", "h0", "c0"], ["", "Y_h", "Y_c"], hidden_size=HIDDEN
        ),
        helper.make_node("Concat", ["Y_h", "Y_c"], ["state_out"], axis=0),
        helper.make_node("Squeeze", ["Y_h", "axis0"], ["h"]),  # [batch, 16]
        helper.make_node("MatMul", ["h", "Wout"], ["logit_mm"]),
        helper.make_node("Add", ["logit_mm", "bout"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["prob"]),
    ]
    initializers = [
        i64("sr_16k", 16000),
        i64("axis0", [0]), i64("h_start", [0]), i64("h_end", [1]), i64("c_end", [2]),
        # ONNX LSTM layout: W [dirs, 4*hidden, input], R [dirs, 4*hidden, hidden], B [dirs, 8*hidden]
        w("W", 1, 4 * HIDDEN, FEAT, scale=1 / np.sqrt(FEAT)),
        w("R", 1, 4 * HIDDEN, HIDDEN, scale=1 / np.sqrt(HIDDEN)),
        w("B", 1, 8 * HIDDEN, scale=0.1),
        w("Wout", HIDDEN, 1, scale=1.0),
        w("bout", 1, scale=0.1),
    ]

    graph = helper.make_graph(
        nodes,
        "stateful_vad",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", IN]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "batch", HIDDEN]),
        ],
        [
            helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", 1]),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [2, "batch", HIDDEN]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="xbench", ir_version=8
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/models/stateful-vad")
    out.mkdir(parents=True, exist_ok=True)
    model = build_model()
    (out / "model.onnx").write_bytes(model.SerializeToString())
    (out / "model.yaml").write_text(
        "description: stateful VAD-like test model (If on sample rate, LSTM state in/out, random weights)\n"
        "weights: random\n"
    )

    # Inputs: one fixed x and state, run once per sample rate.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((BATCH, IN)).astype(np.float32)
    state = (rng.standard_normal((2, BATCH, HIDDEN)) * 0.5).astype(np.float32)

    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    ref = ReferenceEvaluator(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    in_names = [i.name for i in model.graph.input]
    out_names = [o.name for o in model.graph.output]

    ort_results = {}
    for set_ix, sr in enumerate([16000, 8000]):
        feeds = dict(zip(in_names, [x, np.array(sr, dtype=np.int64), state]))
        expected = ref.run(None, feeds)
        got = sess.run(None, feeds)
        diff = max(float(np.max(np.abs(e - g))) for e, g in zip(expected, got))
        print(f"sr={sr}: reference vs onnxruntime max abs diff {diff:.3g}")
        assert diff <= 1e-5, diff
        ort_results[sr] = got

        folder = out / f"test_data_set_{set_ix}"
        folder.mkdir(exist_ok=True)
        for i, name in enumerate(in_names):
            (folder / f"input_{i}.pb").write_bytes(
                numpy_helper.from_array(feeds[name], name).SerializeToString()
            )
        for i, (name, arr) in enumerate(zip(out_names, expected)):
            (folder / f"output_{i}.pb").write_bytes(
                numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name).SerializeToString()
            )

    # The two branches must give clearly different numbers.
    for name, a, b in zip(out_names, ort_results[16000], ort_results[8000]):
        print(f"{name}: sr=16000 {a.ravel()[:4]} | sr=8000 {b.ravel()[:4]} | max abs diff {np.max(np.abs(a - b)):.3g}")
    print(f"wrote {out} (model.onnx {(out / 'model.onnx').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
