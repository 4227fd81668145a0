"""The P2b table from a frameworks run (scenarios/gpu/frameworks.yaml): per BERT-base cell, the
mean of each series, xbench's best ONNX configuration end to end and device-resident (the fastest
ort-cuda series on the fp32 model or its fp16 variant whose outputs agree), PyTorch's best plain
practice (fp16 SDPA in a CUDA graph, end to end), and their ratio.

    python scripts/gpu/p2b_table.py RESULTS.json [VARIANT]   # VARIANT: the fp16 model (default: the other bert-base-uncased-*)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    results = json.loads(Path(sys.argv[1]).read_text())
    cells = [c for c in results["cells"] if c["status"] == "ok" and c.get("summary")]
    base = "bert-base-uncased"
    variant = sys.argv[2] if len(sys.argv) > 2 else next((m["name"] for m in results["models"] if m["name"].startswith(base + "-")), None)
    mean = {(c["model"], c["runtime"], c["chars"], c["batch"]): c["summary"]["mean_ms"] for c in cells}
    ok = {(c["model"], c["runtime"], c["chars"], c["batch"]) for c in cells if agrees(c)}
    timer = {c["runtime"]: c["timer"] for c in cells}
    grid = sorted({(c["chars"], c["batch"]) for c in cells if c["model"] == base})
    ort = sorted({r for (m, r, _, _) in mean if r.startswith("ort-cuda") or r.startswith("ort-best")})
    e2e = [r for r in ort if not timer.get(r, "").startswith("device-resident")]
    dev = [r for r in ort if timer.get(r, "").startswith("device-resident")]
    torch = "torch-fp16-sdpa-graph"
    print(f"variant: {variant}\n")
    print(
        "| cell (chars x batch) | tokens | best ONNX end to end | best ONNX device-resident | torch fp16 SDPA eager | torch fp16 SDPA CUDA graph "
        "| Python onnxruntime | torch graph / best ONNX e2e | torch graph / best ONNX device |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    tokens = {(c["chars"], c["batch"]): c["tokens"]["padded_len"] for c in cells if c.get("tokens")}
    def best(series, chars, batch):
        found = [(mean[(m, r, chars, batch)], m, r) for m in (base, variant) for r in series if (m, r, chars, batch) in ok]
        return min(found) if found else None

    def show(b):
        return f"{b[0]:.3f} ({'fp16 variant' if b[1] != base else 'fp32'}, {b[2]})" if b else "-"

    def ratio(t, b):
        return f"{t / b[0]:.2f}x" if b and t else "-"

    def f(v):
        return f"{v:.3f}" if v is not None else "-"

    for chars, batch in grid:
        b_e2e, b_dev = best(e2e, chars, batch), best(dev, chars, batch)
        t = mean.get((base, torch, chars, batch))
        te = mean.get((base, "torch-fp16-sdpa", chars, batch))
        py = mean.get((base, "ort-python", chars, batch))
        print(
            f"| {chars} x {batch} | {batch} x {tokens.get((chars, batch), '?')} | {show(b_e2e)} | {show(b_dev)} | {f(te)} | {f(t)} | {f(py)} | {ratio(t, b_e2e)} | {ratio(t, b_dev)} |"
        )
    return 0


def agrees(c: dict) -> bool:
    a, s = c.get("agreement"), c.get("sibling_agreement")
    return (a is None or a.get("within_tolerance") is not False) and (s is None or s.get("within_tolerance") is not False)


if __name__ == "__main__":
    raise SystemExit(main())
