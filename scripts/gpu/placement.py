#!/usr/bin/env python3
"""Where ONNX Runtime's CUDA provider puts a model's nodes, and whether it will capture the model in
a CUDA graph: loads MODEL.onnx in Python onnxruntime-gpu with CUDA graphs asked for and verbose
logging, then prints the node placements ONNX Runtime logged (the nodes it left on the CPU, by
name), the copy nodes it inserted, and whether the session loaded.

    python scripts/gpu/placement.py MODEL.onnx
"""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = """
import sys, onnxruntime as ort
so = ort.SessionOptions()
so.log_severity_level = 0
try:
    ort.InferenceSession(sys.argv[1], so, providers=[("CUDAExecutionProvider", {"enable_cuda_graph": "1"})])
    print("RESULT: the session loaded with CUDA graphs enabled", flush=True)
except Exception as e:
    print("RESULT: refused:", e, flush=True)
"""


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run = subprocess.run([sys.executable, "-c", CHILD, sys.argv[1]], capture_output=True, text=True, env=os.environ)
    lines = (run.stderr + run.stdout).splitlines()
    keep, inside = [], False
    for line in lines:
        if "Node placements" in line or "placed on [" in line:
            inside = True
            keep.append(line)
        elif inside and line.startswith(" "):
            keep.append(line)
        else:
            inside = False
        if "Memcpy" in line and ("Add" in line or "insert" in line.lower()):
            keep.append(line)
        if line.startswith("RESULT:"):
            keep.append(line)
    print("\n".join(keep) if keep else "\n".join(lines[-40:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
