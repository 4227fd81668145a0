#!/usr/bin/env python3
"""Write a dynamically quantized (int8) copy of the tiny BERT test model, and measure how much
ONNX Runtime's own results on it move with optimization level and thread count.

The copy is made with onnxruntime.quantization.quantize_dynamic: MatMul weights are stored as
8-bit integers, and activations are quantized at run time, so the graph uses
DynamicQuantizeLinear + MatMulInteger. Only the ONNX file is written; a runner that needs a
tokenizer next to it sets that up itself.

Prints, for batch 2, sequence 16, random token ids in [0, 1000) (fixed seed):
  - the op types of the quantized graph and its size;
  - fp32 vs int8: max abs difference of last_hidden_state (the quantization error);
  - int8 vs int8 on ORT CPU: graph optimizations ORT_DISABLE_ALL vs ORT_ENABLE_ALL, and 1 vs 2
    intra-op threads;
  - int8 on ORT vs int8 on onnx.reference.ReferenceEvaluator, a second, independent implementation
    (the same comparison for fp32 as a baseline). ORT's settings share one set of quantization
    kernels; a different runtime rounds its fp32 activations slightly differently, and a value
    that lands on the other side of a rounding step in DynamicQuantizeLinear moves by a whole
    quantization step. This last number is the one to size a cross-runtime int8 tolerance on.

    PYTHONPATH=$PYENV python3 scripts/make_int8_model.py \
        [--fp32 models/tiny-bert/model.onnx] [--weight-type qint8|quint8] [OUT]

OUT defaults to tests/data/models/tiny-bert-int8/model.onnx.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic


def session(path: Path, opt: ort.GraphOptimizationLevel, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = opt
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default="tests/data/models/tiny-bert-int8/model.onnx")
    ap.add_argument("--fp32", default="models/tiny-bert/model.onnx")
    ap.add_argument("--weight-type", choices=["qint8", "quint8"], default="qint8")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic warns about pre-processing

    fp32, out = Path(args.fp32), Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    weight_type = QuantType.QInt8 if args.weight_type == "qint8" else QuantType.QUInt8
    quantize_dynamic(fp32, out, weight_type=weight_type)

    model = onnx.load(out)
    ops = Counter(n.op_type for n in model.graph.node)
    print(f"wrote {out}: {out.stat().st_size} bytes (fp32 {fp32.stat().st_size} bytes), "
          f"opset {[(o.domain or 'ai.onnx', o.version) for o in model.opset_import]}, ir {model.ir_version}")
    print("op types:", dict(sorted(ops.items())))
    assert ops["DynamicQuantizeLinear"] and ops["MatMulInteger"], "expected DynamicQuantizeLinear + MatMulInteger"

    # Random token ids, all positions real (mask 1), one segment.
    rng = np.random.default_rng(0)
    feeds_list = []
    for _ in range(8):
        ids = rng.integers(0, 1000, size=(2, 16), dtype=np.int64)
        feeds_list.append({"input_ids": ids, "attention_mask": np.ones_like(ids),
                           "token_type_ids": np.zeros_like(ids)})

    def run(path: Path, opt, threads: int) -> list[np.ndarray]:
        s = session(path, opt, threads)  # first output: last_hidden_state
        return [s.run(None, f)[0] for f in feeds_list]

    def maxdiff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
        return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))

    L = ort.GraphOptimizationLevel
    ref = run(fp32, L.ORT_ENABLE_ALL, 1)
    print(f"last_hidden_state range in fp32: [{min(r.min() for r in ref):.3g}, {max(r.max() for r in ref):.3g}]")
    print(f"fp32 vs int8 (ORT_ENABLE_ALL, 1 thread): max abs diff {maxdiff(ref, run(out, L.ORT_ENABLE_ALL, 1)):.3g}")

    # The same int8 model under different ORT settings.
    configs = {f"{name} threads={t}": run(out, opt, t)
               for name, opt in [("ORT_DISABLE_ALL", L.ORT_DISABLE_ALL), ("ORT_ENABLE_ALL", L.ORT_ENABLE_ALL)]
               for t in (1, 2)}
    for (na, a), (nb, b) in combinations(configs.items(), 2):
        print(f"int8 {na} vs {nb}: max abs diff {maxdiff(a, b):.3g}")

    # A second implementation. The reference evaluator has DequantizeLinear from opset 19 only;
    # the ops used here mean the same at 19 (Cast: float to float, so `saturate` plays no part).
    from onnx.reference import ReferenceEvaluator

    for name, path, ort_out in [("fp32", fp32, ref), ("int8", out, configs["ORT_DISABLE_ALL threads=1"])]:
        m = onnx.load(path)
        for o in m.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = max(o.version, 19)
        evaluator = ReferenceEvaluator(m)
        ev = [evaluator.run(None, f)[0] for f in feeds_list]
        per_feed = [float(np.max(np.abs(x - y))) for x, y in zip(ort_out, ev)]
        print(f"{name} ORT vs onnx.reference: max abs diff {max(per_feed):.3g} "
              f"(per batch: {', '.join(f'{d:.2g}' for d in per_feed)})")


if __name__ == "__main__":
    main()
