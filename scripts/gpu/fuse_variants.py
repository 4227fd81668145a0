"""BERT-base for ONNX Runtime's fused attention: the fusions ONNX Runtime's transformer optimizer
finds depend on how the graph was exported, so this writes the variants side by side and says
which operators each fused.

    python scripts/gpu/fuse_variants.py [--models-dir models]

Writes, each with its tokenizer.json and model.yaml:
  models/bert-base-uncased-ts-fp32/         TorchScript exporter (torch.onnx.export(dynamo=False)), fp32
  models/bert-base-uncased-ts-fused-fp16/   the same through onnxruntime.transformers.optimizer, fp16
Random weights from the embedded configuration (seed 0), as scripts/export_models.py --random.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import export_models as em


def torchscript_export(wrapper: torch.nn.Module, names: list[str], outputs: list[str], example: dict, path: Path) -> None:
    dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic.update({o: {0: "batch"} for o in outputs})
    torch.onnx.export(
        wrapper,
        tuple(example[n] for n in names),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=names,
        output_names=outputs,
        dynamic_axes=dynamic,
        do_constant_folding=True,
    )


def write_yaml(folder: Path, description: str, compare_with: str | None) -> None:
    lines = [
        "# Written by scripts/gpu/fuse_variants.py.",
        "hub_id: google-bert/bert-base-uncased",
        "architecture: bert",
        "onnx: model.onnx",
        "tokenizer: tokenizer.json",
        "max_positions: 512",
        "weights: random",
        f"description: {json.dumps(description)}",
    ]
    if compare_with:
        lines.append(f"compare_with: {compare_with}")
    (folder / "model.yaml").write_text("\n".join(lines) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models-dir", type=Path, default=Path("models"))
    p.add_argument("--compare-with", default="bert-base-uncased", help="fp32 sibling named in the fp16 variant's model.yaml ('' for none)")
    args = p.parse_args()
    name = "bert-base-uncased"
    definition = em.KNOWN_MODELS[name]
    loaded = em.random_model(definition)
    model = loaded.model.eval()
    names = em.ARCH_INPUTS["bert"]
    outputs = em.output_names(model)
    example = em.example_inputs(names, model.config.vocab_size, 0, batch=3, seq=11)
    tokenizer = args.models_dir / name / "tokenizer.json"
    feed = em.tokenize(tokenizer, names, 0, em.max_tokens(model, "bert"))

    ts = args.models_dir / f"{name}-ts-fp32"
    ts.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        torchscript_export(em.wrap(model, "bert", float_outputs=False), names, outputs, example, ts / "model.onnx")
    except Exception as e:  # the legacy exporter may not trace every transformers version
        print(f"TorchScript export failed: {type(e).__name__}: {e}")
        return 1
    print(f"exported {ts / 'model.onnx'} with the TorchScript exporter in {time.perf_counter() - started:.1f} s")
    ok, _ = em.check_export(ts / "model.onnx", feed, em.run_torch(em.wrap(model, "bert", float_outputs=False), feed), em.TOLERANCE_FP32, "TorchScript fp32 vs torch fp32")
    shutil.copyfile(tokenizer, ts / "tokenizer.json")
    write_yaml(ts, "bert-base-uncased exported with the TorchScript exporter (opset 17), fp32", None)

    from onnxruntime.transformers import optimizer

    fused = args.models_dir / f"{name}-ts-fused-fp16"
    fused.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    m = optimizer.optimize_model(str(ts / "model.onnx"), model_type="bert", num_heads=12, hidden_size=768, use_gpu=True)
    m.convert_float_to_float16(keep_io_types=True)
    m.save_model_to_file(str(fused / "model.onnx"))
    stats = {k: v for k, v in m.get_fused_operator_statistics().items() if v}
    print(f"optimized and converted to fp16 in {time.perf_counter() - started:.1f} s; fused operators: {stats}")
    ok2, _ = em.check_export(fused / "model.onnx", feed, em.run_torch(em.wrap(model, "bert", float_outputs=True), feed), em.TOLERANCE_FP16, "fused fp16 vs torch fp32")
    shutil.copyfile(tokenizer, fused / "tokenizer.json")
    write_yaml(
        fused,
        f"bert-base-uncased, TorchScript export through ONNX Runtime's transformer optimizer, fp16 (fused: {', '.join(f'{k} {v}' for k, v in stats.items())})",
        args.compare_with or None,
    )
    return 0 if ok and ok2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
