"""BERT-base variants for the batch-32 target: ONNX Runtime's transformer optimizer with different
options on the TorchScript export (which is where it fuses attention), and bf16 exports.

    python scripts/gpu/p2_variants.py [--models-dir models]

Needs models/bert-base-uncased-ts-fp32/ (scripts/gpu/fuse_variants.py). Writes, each with its
tokenizer.json and a model.yaml naming bert-base-uncased as the model to compare with:
  bert-base-uncased-ts-fused-fp16-io16      fused, fp16, fp16 outputs too (keep_io_types off)
  bert-base-uncased-ts-fused-fp16-rawmask   fused, fp16, Attention given the 2-D mask as it is
  bert-base-uncased-ts-fused-fp16-mha       fused into MultiHeadAttention instead of Attention, fp16
  bert-base-uncased-ts-fused-fp16-fastgelu  fused, fp16, GELU by its tanh approximation (FastGelu)
  bert-base-uncased-ts-fused-fp16-packed    the fused fp16 model in ONNX Runtime's packing mode: padding
                                            removed before the first layer (RemovePadding, PackedAttention)
                                            and put back after the last (RestorePadding)
  bert-base-uncased-ts-fused-bf16           the TorchScript export of the model in bf16, fused
  bert-base-uncased-bf16                    the dynamo export of the model in bf16, fp32 outputs
A variant that cannot be built is reported and left out; the others are still written.
Every variant's outputs are checked against the fp32 model on the machine by xbench (sibling
comparison), not here.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuse_variants as fv

import export_models as em

NAME = "bert-base-uncased"


def optimize(source: Path, folder: Path, describe: str, tweak, fp16: bool = True, keep_io_types: bool = True) -> None:
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions("bert")
    tweak(options)
    m = optimizer.optimize_model(str(source), model_type="bert", num_heads=12, hidden_size=768, optimization_options=options, use_gpu=True)
    if fp16:
        m.convert_float_to_float16(keep_io_types=keep_io_types)
    folder.mkdir(parents=True, exist_ok=True)
    m.save_model_to_file(str(folder / "model.onnx"))
    stats = {k: v for k, v in m.get_fused_operator_statistics().items() if v}
    fused = ", ".join(f"{k} {v}" for k, v in stats.items())
    fv.write_yaml(folder, f"{describe} (fused: {fused})", NAME)
    print(f"  fused operators: {stats}")


def packed(models: Path, folder: Path) -> None:
    import onnx
    from onnxruntime.transformers.convert_to_packing_mode import PackingMode
    from onnxruntime.transformers.onnx_model import OnnxModel

    source = models / f"{NAME}-ts-fused-fp16" / "model.onnx"
    mode = PackingMode(OnnxModel(onnx.load(str(source))))
    mode.convert()
    ops = [n.op_type for n in mode.model.nodes()]
    if "PackedAttention" not in ops or "RemovePadding" not in ops:
        raise RuntimeError(f"packing mode left the graph without PackedAttention/RemovePadding (operators: {sorted(set(ops))})")
    folder.mkdir(parents=True, exist_ok=True)
    mode.model.save_model_to_file(str(folder / "model.onnx"))
    fv.write_yaml(folder, f"bert-base-uncased, TorchScript export, fused, fp16, ONNX Runtime's packing mode (PackedAttention {ops.count('PackedAttention')}, RemovePadding, RestorePadding)", NAME)


def bf16_torchscript(models: Path, folder: Path) -> None:
    loaded = em.random_model(em.KNOWN_MODELS[NAME])
    model = loaded.model.eval().to(torch.bfloat16)
    names = em.ARCH_INPUTS["bert"]
    outputs = em.output_names(model)
    example = em.example_inputs(names, model.config.vocab_size, 0, batch=3, seq=11)
    raw = folder.parent / (folder.name + "-raw")
    raw.mkdir(parents=True, exist_ok=True)
    fv.torchscript_export(em.wrap(model, "bert", float_outputs=True), names, outputs, example, raw / "model.onnx")
    optimize(raw / "model.onnx", folder, "bert-base-uncased in bf16, TorchScript export through ONNX Runtime's transformer optimizer", lambda o: None, fp16=False)
    shutil.rmtree(raw, ignore_errors=True)


def bf16_dynamo(models: Path, folder: Path) -> None:
    loaded = em.random_model(em.KNOWN_MODELS[NAME])
    model = loaded.model.eval().to(torch.bfloat16)
    names = em.ARCH_INPUTS["bert"]
    outputs = em.output_names(model)
    example = em.example_inputs(names, model.config.vocab_size, 0, batch=3, seq=11)
    folder.mkdir(parents=True, exist_ok=True)
    em.export(em.wrap(model, "bert", float_outputs=True), names, outputs, example, em.max_tokens(model, "bert"), folder / "model.onnx")
    fv.write_yaml(folder, "bert-base-uncased in bf16 (weights and arithmetic), dynamo export, fp32 outputs", NAME)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models-dir", type=Path, default=Path("models"))
    args = p.parse_args()
    models = args.models_dir
    ts = models / f"{NAME}-ts-fp32" / "model.onnx"
    tokenizer = models / NAME / "tokenizer.json"
    if not ts.is_file():
        print(f"error: {ts} is missing: run scripts/gpu/fuse_variants.py first")
        return 1

    def mha(o):
        o.use_multi_head_attention = True

    def fastgelu(o):
        o.enable_gelu_approximation = True

    variants = [
        ("ts-fused-fp16-io16", lambda f: optimize(ts, f, "bert-base-uncased, TorchScript export, fused, fp16 with fp16 outputs", lambda o: None, keep_io_types=False)),
        ("ts-fused-fp16-rawmask", lambda f: optimize(ts, f, "bert-base-uncased, TorchScript export, fused with the raw 2-D attention mask, fp16", lambda o: o.use_raw_attention_mask(True))),
        ("ts-fused-fp16-mha", lambda f: optimize(ts, f, "bert-base-uncased, TorchScript export, fused into MultiHeadAttention, fp16", mha)),
        ("ts-fused-fp16-fastgelu", lambda f: optimize(ts, f, "bert-base-uncased, TorchScript export, fused, GELU approximated (FastGelu), fp16", fastgelu)),
        ("ts-fused-fp16-packed", lambda f: packed(models, f)),
        ("ts-fused-bf16", lambda f: bf16_torchscript(models, f)),
        ("bf16", lambda f: bf16_dynamo(models, f)),
    ]
    failed = []
    for suffix, build in variants:
        folder = models / f"{NAME}-{suffix}"
        started = time.perf_counter()
        print(f"== {folder.name}")
        try:
            build(folder)
            shutil.copyfile(tokenizer, folder / "tokenizer.json")
            print(f"  written in {time.perf_counter() - started:.1f} s")
        except Exception as e:  # one variant's failure is reported; the rest are still built
            traceback.print_exc()
            print(f"  FAILED: {type(e).__name__}: {e}")
            shutil.rmtree(folder, ignore_errors=True)
            failed.append(folder.name)
    print(f"built {len(variants) - len(failed)} of {len(variants)} variants" + (f"; not built: {', '.join(failed)}" if failed else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
