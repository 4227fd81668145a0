#!/usr/bin/env python3
"""A bare greedy decode loop in Python onnxruntime with IO binding: the baseline xbench's ort-cuda
generation cells are held against (same model, cache kept on the GPU between steps).

Prefill with an empty past, then one step per new token: the presents of a step bound as the next
step's past (left on the GPU), logits bound on the GPU and only the last position copied to the
host, the next ids picked there. Prints one JSON line: the decode steps' times and the ids.

    python scripts/gpu/decode_loop.py MODEL.onnx --prompt 128 --new 128 --batch 1 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime as ort


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-tf32", action="store_true")
    a = ap.parse_args()
    opts = {"device_id": 0}
    if a.no_tf32:
        opts["use_tf32"] = 0
    sess = ort.InferenceSession(a.onnx, providers=[("CUDAExecutionProvider", opts)])
    ins = {i.name: i for i in sess.get_inputs()}
    pasts = [n for n in ins if n.startswith("past_key_values.")]
    presents = [n.replace("past_key_values.", "present.") for n in pasts]
    shape = ins[pasts[0]].shape
    heads, head = int(shape[1]), int(shape[3])
    fp16 = ins[pasts[0]].type == "tensor(float16)"
    vocab = int(sess.get_outputs()[0].shape[-1])
    rng = np.random.default_rng(a.seed)
    prompt = rng.integers(0, vocab, size=(a.batch, a.prompt), dtype=np.int64)

    def generate() -> tuple[list[float], list[list[int]]]:
        past = {n: ort.OrtValue.ortvalue_from_numpy(np.zeros((a.batch, heads, 0, head), np.float16 if fp16 else np.float32)) for n in pasts}
        ids, mask = prompt, np.ones((a.batch, a.prompt), np.int64)
        pos = np.arange(a.prompt, dtype=np.int64)[None, :].repeat(a.batch, 0)
        out, steps = [], []
        for k in range(a.new):
            t = time.perf_counter()
            b = sess.io_binding()
            b.bind_cpu_input("input_ids", ids)
            b.bind_cpu_input("attention_mask", mask)
            b.bind_cpu_input("position_ids", pos)
            for n in pasts:
                b.bind_ortvalue_input(n, past[n])
            for n in presents:
                b.bind_output(n, "cuda")
            b.bind_output("logits", "cuda")
            sess.run_with_iobinding(b)
            vals = b.get_outputs()
            logits = vals[-1].numpy()[:, -1, :]
            nxt = logits.argmax(-1)
            past = {p: v for p, v in zip(pasts, vals[:-1])}
            ids = nxt[:, None].astype(np.int64)
            mask = np.concatenate([mask, np.ones((a.batch, 1), np.int64)], 1)
            pos = pos[:, -1:] + 1
            if k > 0:
                steps.append((time.perf_counter() - t) * 1e3)
            out.append(nxt.tolist())
        return steps, np.array(out).T.tolist()

    generate()  # warm-up
    all_steps, ids = [], None
    for _ in range(a.runs):
        s, ids = generate()
        all_steps += s
    line = {
        "model": a.onnx,
        "prompt": a.prompt,
        "new": a.new,
        "batch": a.batch,
        "steps": len(all_steps),
        "decode_median_ms": statistics.median(all_steps),
        "decode_mean_ms": statistics.fmean(all_steps),
        "ids_row0": ids[0][:16],
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
