#!/usr/bin/env python3
"""Time the same ONNX files on the same token ids in Python onnxruntime (CUDA) and PyTorch eager,
and print them beside xbench's results, cell by cell, with the ratios.

Inputs:
  --feeds FILE     the exact inputs xbench fed (`xbench feeds SCENARIO --out FILE`)
  --xbench FILE    one or more xbench results.json files (e.g. end-to-end and device-resident runs)
Baselines (each cell: --warmup untimed runs, then --iterations timed runs; mean in ms):
  ort-python       onnxruntime.InferenceSession with CUDAExecutionProvider, numpy in and out
  torch-fp32/fp16  the model rebuilt from its configuration (scripts/export_models.py) in PyTorch
                   eager mode on the GPU, with torch.cuda.synchronize() before the timer stops
Output: a Markdown table on stdout (and --out FILE), per cell and averaged per model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def feed_arrays(feed: dict) -> dict[str, np.ndarray]:
    out = {}
    for t in feed["inputs"]:
        dtype = {"int64": np.int64, "int32": np.int32, "float32": np.float32}[t["dtype"]]
        out[t["name"]] = np.asarray(t["data"], dtype=dtype).reshape(t["shape"])
    return out


def time_calls(call, warmup: int, iterations: int, sync=None) -> float:
    for _ in range(warmup):
        call()
    if sync:
        sync()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        if sync:
            sync()
        samples.append((time.perf_counter() - start) * 1e3)
    return sum(samples) / len(samples)


def ort_python(feeds: list[dict], warmup: int, iterations: int) -> tuple[dict, float]:
    import onnxruntime as ort

    results, sessions = {}, {}
    started = time.perf_counter()
    for f in feeds:
        key = f["model"]
        if key not in sessions:
            sessions[key] = ort.InferenceSession(f["onnx"], providers=["CUDAExecutionProvider"])
            providers = sessions[key].get_providers()
            if providers[0] != "CUDAExecutionProvider":
                sys.exit(f"error: onnxruntime did not register CUDA for {key} (providers: {providers})")
        s, arrays = sessions[key], feed_arrays(f)
        results[(f["model"], f["chars"], f["batch"])] = time_calls(lambda: s.run(None, arrays), warmup, iterations)
    return results, time.perf_counter() - started


def torch_eager(feeds: list[dict], warmup: int, iterations: int, half: bool) -> dict:
    import torch

    sys.path.insert(0, str(HERE))
    import export_models as em  # the same architectures xbench's ONNX files were exported from

    results, models = {}, {}
    for f in feeds:
        name = f["model"].removesuffix("-fp16")
        if name not in em.KNOWN_MODELS:
            continue
        if name not in models:
            d = em.KNOWN_MODELS[name]
            config_class, model_class = em.model_classes(d.architecture)
            config = config_class(**d.config)
            torch.manual_seed(0)
            m = model_class(config).eval().cuda()
            models[name] = m.half() if half else m
        m = models[name]
        arrays = {k: torch.from_numpy(v).cuda() for k, v in feed_arrays(f).items()}
        with torch.inference_mode():
            results[(f["model"], f["chars"], f["batch"])] = time_calls(lambda: m(**arrays), warmup, iterations, torch.cuda.synchronize)
    return results


def xbench_means(path: Path) -> tuple[str, dict]:
    r = json.loads(path.read_text())
    label = f"xbench ort-cuda ({r['cells'][0].get('timer', 'end-to-end') if r['cells'] else '?'})"
    out = {}
    for c in r["cells"]:
        if c["runtime"] == "ort-cuda" and c["status"] == "ok":
            out[(c["model"], c["chars"], c["batch"])] = c["summary"]["mean_ms"]
    return label, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--feeds", type=Path, required=True)
    p.add_argument("--xbench", type=Path, nargs="*", default=[])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    feeds = json.loads(args.feeds.read_text())
    columns: list[tuple[str, dict]] = []
    for path in args.xbench:
        columns.append(xbench_means(path))
    ort_res, ort_wall = ort_python(feeds, args.warmup, args.iterations)
    columns.append(("Python onnxruntime CUDA (numpy in/out)", ort_res))
    if not args.no_torch:
        fp32_feeds = [f for f in feeds if not f["model"].endswith("-fp16")]
        columns.append(("PyTorch eager fp32", torch_eager(fp32_feeds, args.warmup, args.iterations, half=False)))
        columns.append(("PyTorch eager fp16", torch_eager(fp32_feeds, args.warmup, args.iterations, half=True)))

    keys = sorted({k for _, col in columns for k in col}, key=lambda k: (k[0], k[1], k[2]))
    base = "Python onnxruntime CUDA (numpy in/out)"
    lines = [f"Mean of {args.iterations} runs after {args.warmup} warm-ups, ms. Ratio columns: xbench / Python onnxruntime (below 1: xbench faster).", ""]
    header = ["model / chars / batch"] + [name for name, _ in columns] + [f"{name} / ort-python" for name, _ in columns if name.startswith("xbench")]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + " --- |" * len(header))
    per_model: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for k in keys:
        row = [f"{k[0]} / {k[1]} / {k[2]}"]
        for name, col in columns:
            v = col.get(k)
            row.append(f"{v:.3f}" if v is not None else "—")
            if v is not None:
                per_model[k[0]][name].append(v)
        for name, col in columns:
            if name.startswith("xbench"):
                a, b = col.get(k), ort_res.get(k)
                row.append(f"{a / b:.3f}" if a and b else "—")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Average over each model's cells (the paper's table F), ms:", ""]
    lines.append("| model | " + " | ".join(name for name, _ in columns) + " |")
    lines.append("|" + " --- |" * (len(columns) + 1))
    for model, cols in sorted(per_model.items()):
        lines.append(f"| {model} | " + " | ".join(f"{np.mean(cols[name]):.3f}" if cols.get(name) else "—" for name, _ in columns) + " |")
    lines += ["", f"Python onnxruntime: session loads plus all runs took {ort_wall:.2f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
