#!/usr/bin/env python3
"""Writes a model folder's ONNX weights as a Hugging Face style checkpoint: config.json and
model.safetensors, parameters under their Hugging Face names in the `[out, in]` layout.

The parameter names and shapes are those of the mlx-transformers model for the folder's
configuration (scripts/runtimes/hf_config.py), filled from the ONNX initializers by
scripts/runtimes/onnx_weights.py, so the checkpoint holds exactly the ONNX file's weights: a
runtime that loads it (`mlx_hf.py` or `torch_hf.py` with `weights: checkpoint`) must agree with
the ONNX runtimes. Nothing is fetched from the network.

    python3 scripts/make_checkpoint.py MODEL_DIR OUT_DIR [--prefix bert.] [--dtype fp32|fp16|bf16] [--model-files]

--prefix     put this before every name (as checkpoints of task models do: `bert.`, `roberta.`)
--dtype      store the weights in this type (default fp32; bf16 needs mlx to write)
--model-files  also copy MODEL_DIR's model.onnx, model.yaml and tokenizer.json, so that OUT_DIR is
             a model folder xbench can run (with `weights: checkpoint`)

Needs mlx, mlx-transformers, transformers, onnx, numpy, PyYAML (the mlx_hf.py environment).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the package `runtimes` beside this file

from runtimes import hf_config, mlx_model, onnx_weights
from runtimes.protocol import AdapterError, Hello, ModelInfo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32")
    parser.add_argument("--model-files", action="store_true")
    args = parser.parse_args()
    folder = args.model_dir.resolve()
    onnx_path = folder / str(hf_config.read_model_yaml(folder).get("onnx") or "model.onnx")
    if not onnx_path.is_file():
        print(f"error: {onnx_path} not found; MODEL_DIR must hold the model's ONNX file", file=sys.stderr)
        return 2
    hello = Hello("make-checkpoint", {}, ModelInfo(folder.name, folder, onnx_path, [], []), None, 0)
    try:
        conf = hf_config.configuration(hello)
        model = mlx_model.construct(mlx_model.model_class(conf.config), conf.config, with_pooler=True)
        matched = onnx_weights.match(onnx_path, mlx_model.parameter_shapes(model))
    except (AdapterError, hf_config.StrategyUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    import mlx.core as mx

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    dtype = {"fp32": mx.float32, "fp16": mx.float16, "bf16": mx.bfloat16}[args.dtype]
    tensors = {args.prefix + name: mx.array(array).astype(dtype) for name, array in matched.arrays.items()}
    mx.save_safetensors(str(out / "model.safetensors"), tensors, metadata={"format": "pt"})
    if (folder / "config.json").is_file():
        if (folder / "config.json").resolve() != (out / "config.json").resolve():
            shutil.copy2(folder / "config.json", out / "config.json")
    else:  # the export script's embedded configuration, written out
        config = {k: v for k, v in conf.config.to_dict().items() if not k.startswith("_")}
        (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if args.model_files:
        for name in (onnx_path.name, "model.yaml", "tokenizer.json"):
            if (folder / name).is_file() and (folder / name).resolve() != (out / name).resolve():
                shutil.copy2(folder / name, out / name)
    print(f"{out}: config.json and model.safetensors ({len(tensors)} tensors, {args.dtype}) from {matched.describe(onnx_path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
