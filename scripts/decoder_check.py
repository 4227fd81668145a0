"""Checks a decoder export (see export_decoders.py) against PyTorch: greedy generation from the same
seeded prompt in onnxruntime (the exported file, its presents fed back as pasts) and in
transformers (the model itself with a DynamicCache), compared step by step.

Step 0 is the prefill (past length 0; the logits of every prompt position are compared), steps 1…N
the decode steps (one token each). At every step each side picks its own greedy id per row; the
ids must be identical at every step and the logits within the tolerance. Where the ids part, the
step and the reference's top-2 margin there are printed: a margin near the logits difference is a
near tie, a wide one a bug.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from transformers import DynamicCache


@dataclass(frozen=True)
class CheckSettings:
    batch: int = 2
    prompt: int = 16
    steps: int = 32
    seed: int = 0
    tolerance_fp32: float = 1e-4
    tolerance_fp16: float = 1e-2


@dataclass
class Trajectory:
    """What one side computed: logits per step (float32, [batch, tokens, vocab]) and greedy ids per step."""

    logits: list[np.ndarray]
    ids: list[np.ndarray]
    seconds: float


def prompt_ids(config: Any, settings: CheckSettings) -> np.ndarray:
    generator = np.random.default_rng(settings.seed)
    return generator.integers(0, int(config.vocab_size), (settings.batch, settings.prompt), dtype=np.int64)


def step_inputs(ids: np.ndarray, past: int) -> dict[str, np.ndarray]:
    batch, seq = ids.shape
    return {
        "input_ids": ids,
        "attention_mask": np.ones((batch, past + seq), dtype=np.int64),
        "position_ids": np.tile(np.arange(past, past + seq, dtype=np.int64), (batch, 1)),
    }


def torch_greedy(model: torch.nn.Module, prompt: np.ndarray, steps: int) -> Trajectory:
    """The model in transformers, fed one step at a time with its DynamicCache."""
    started = time.perf_counter()
    cache = DynamicCache(config=model.config)
    logits, chosen = [], []
    ids, past = prompt, 0
    with torch.no_grad():
        for _ in range(steps + 1):
            feed = {k: torch.from_numpy(v) for k, v in step_inputs(ids, past).items()}
            out = model(**feed, past_key_values=cache, use_cache=True)
            logits.append(out.logits.float().numpy())
            past += ids.shape[1]
            ids = logits[-1][:, -1:, :].argmax(-1).astype(np.int64)
            chosen.append(ids[:, 0])
    return Trajectory(logits, chosen, time.perf_counter() - started)


def ort_greedy(path: Path, config: Any, dtype: torch.dtype, prompt: np.ndarray, steps: int) -> Trajectory:
    """The exported file in onnxruntime (CPU), each step's presents fed back as the next pasts."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    started = time.perf_counter()
    layers, heads = int(config.num_hidden_layers), int(config.num_key_value_heads)
    size = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
    empty = np.zeros((prompt.shape[0], heads, 0, size), dtype=np.float16 if dtype == torch.float16 else np.float32)
    pasts = {f"past_key_values.{i}.{kind}": empty for i in range(layers) for kind in ("key", "value")}
    output_names = [o.name for o in session.get_outputs()]
    logits, chosen = [], []
    ids, past = prompt, 0
    for _ in range(steps + 1):
        outs = dict(zip(output_names, session.run(None, {**step_inputs(ids, past), **pasts})))
        logits.append(outs["logits"].astype(np.float32))
        pasts = {name.replace("present.", "past_key_values.", 1): value for name, value in outs.items() if name.startswith("present.")}
        past += ids.shape[1]
        ids = logits[-1][:, -1:, :].argmax(-1).astype(np.int64)
        chosen.append(ids[:, 0])
    return Trajectory(logits, chosen, time.perf_counter() - started)


def top2_margin(logits: np.ndarray) -> np.ndarray:
    """Per row, the largest logit less the second largest, at the last position."""
    top = np.sort(logits[:, -1, :], axis=-1)[:, -2:]
    return top[:, 1] - top[:, 0]


def parting(ref_logits: np.ndarray, ref_ids: np.ndarray, got_ids: np.ndarray, diff: float, tolerance: float) -> str:
    """Where the ids part: per row, the reference's top-2 margin and its margin over the other side's
    id. With the logits within the tolerance, a margin below twice their largest difference (each of
    the two logits may move by that much) is a near tie that the precision explains; above, a bug."""
    margins = top2_margin(ref_logits)
    last = ref_logits[:, -1, :]
    rows = []
    for r in (int(r) for r in np.nonzero(ref_ids != got_ids)[0]):
        over = float(last[r, ref_ids[r]] - last[r, got_ids[r]])
        if diff > tolerance:
            verdict = "the logits are beyond the tolerance"
        else:
            verdict = "a near tie" if over <= 2 * diff else "NOT a near tie"
        rows.append(f"row {r}: reference top-2 margin {margins[r]:.3g}, its id {ref_ids[r]} over {got_ids[r]} by {over:.3g}: {verdict}")
    return "; ".join(rows) + f"; logits differ by up to {diff:.3g} at this step"


def compare(reference: Trajectory, got: Trajectory, tolerance: float, label: str) -> bool:
    """Step by step: identical greedy ids and logits within the tolerance. Prints one line a step."""
    diffs: list[float] = []
    for step, (ref_logits, got_logits, ref_ids, got_ids) in enumerate(zip(reference.logits, got.logits, reference.ids, got.ids)):
        diff = float(np.max(np.abs(ref_logits.astype(np.float64) - got_logits.astype(np.float64))))
        diffs.append(diff)
        what = f"prefill, {ref_logits.shape[1]} tokens" if step == 0 else "decode"
        print(f"    step {step:2d} ({what}): ids torch {ref_ids.tolist()} onnxruntime {got_ids.tolist()}, max |logits diff| {diff:.3g}")
        if not np.array_equal(ref_ids, got_ids):
            print(f"  {label}: greedy ids PART at step {step} ({parting(ref_logits, ref_ids, got_ids, diff, tolerance)}) FAILED")
            return False
    worst = max(diffs)
    ok = bool(np.isfinite(worst)) and worst <= tolerance
    steps = len(diffs)
    margin = min(float(top2_margin(logits).min()) for logits in reference.logits)
    print(
        f"  {label}: greedy ids identical at all {steps} steps (prefill + {steps - 1} decode steps); max |logits diff| per step "
        f"{min(diffs):.3g}…{worst:.3g} (prefill {diffs[0]:.3g}), tolerance {tolerance:g}; smallest reference top-2 margin {margin:.3g}; "
        f"{'OK' if ok else 'FAILED'}  [torch {reference.seconds:.1f} s, onnxruntime {got.seconds:.1f} s]"
    )
    return ok


def check_decoder(path: Path, model: torch.nn.Module, dtype: torch.dtype, settings: CheckSettings, reference: Trajectory | None = None) -> tuple[bool, Trajectory]:
    """onnxruntime on the export vs `reference` (default: `model` in torch); returns (ok, reference)."""
    config = model.config
    prompt = prompt_ids(config, settings)
    print(f"  check: batch {settings.batch}, seeded prompt of {settings.prompt} ids (seed {settings.seed}), prefill + {settings.steps} greedy decode steps")
    if reference is None:
        reference = torch_greedy(model, prompt, settings.steps)
    got = ort_greedy(path, config, dtype, prompt, settings.steps)
    tolerance = settings.tolerance_fp16 if dtype == torch.float16 else settings.tolerance_fp32
    precision = "fp16" if dtype == torch.float16 else "fp32"
    label = f"onnxruntime {onnxruntime.__version__} {precision} vs torch {torch.__version__} fp32"
    return compare(reference, got, tolerance, label), reference
