#!/usr/bin/env python3
"""xbench test program (external runtime protocol 1): a correct, minimal external runtime.

It runs the ONNX model with Python onnxruntime on the CPU (numpy in and out) and follows every
rule of docs/runtime-protocol.md, so its outputs agree with xbench's own runtimes. Where
onnxruntime, numpy or safetensors cannot be imported it answers `hello` with an `error` that says
so. Standalone: it does not use scripts/runtimes/."""

import json
import os
import resource
import sys
import time

# Only protocol lines go to the real stdout; anything a library prints goes to stderr.
_protocol = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def send(msg: dict) -> None:
    _protocol.write(json.dumps(msg) + "\n")
    _protocol.flush()


def load(hello: dict):
    try:
        import numpy  # noqa: F401
        import onnxruntime as ort
        from safetensors.numpy import load_file, save_file
    except ImportError as err:
        raise RuntimeError(f"echo.py needs onnxruntime, numpy and safetensors ({err}); pip install onnxruntime safetensors") from None
    options = ort.SessionOptions()
    if hello.get("threads"):
        options.intra_op_num_threads = int(hello["threads"])
    session = ort.InferenceSession(hello["model"]["onnx"], options, providers=["CPUExecutionProvider"])
    return ort.__version__, session, load_file, save_file


def main() -> int:
    hello = json.loads(sys.stdin.readline() or "{}")
    if hello.get("type") != "hello":
        return 2
    started = time.perf_counter_ns()
    try:
        version, session, load_file, save_file = load(hello)
    except Exception as err:
        send({"type": "error", "message": str(err)})
        return 1
    names = [o.name for o in session.get_outputs()]
    send({"type": "ready", "protocol": 1, "engine": "onnxruntime-python (echo test program)", "version": version,
          "device": "CPU", "precision": "fp32", "placement": [["CPUExecutionProvider", 1]],
          "threads": f"intra-op {hello.get('threads') or 'default'}",
          "timer": "end-to-end: session.run(None, feeds) with numpy arrays in and out", "timer_label": "end-to-end",
          "load_ms": (time.perf_counter_ns() - started) / 1e6})
    while line := sys.stdin.readline():
        msg = json.loads(line)
        if msg["type"] == "bye":
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            send({"type": "done", "peak_rss_mib": peak, "peak_device_mib": None})
            return 0
        if msg["type"] != "cell":
            return 2
        try:
            feeds = load_file(msg["inputs"])
            started = time.perf_counter_ns()
            for _ in range(msg["warmup"]):
                session.run(None, feeds)
            warmup_ms = (time.perf_counter_ns() - started) / 1e6
            samples: list[float] = []
            outputs: list = []
            while len(samples) < msg["iterations"] or sum(samples) < 1e3 * (msg.get("min_time_s") or 0):
                t0 = time.perf_counter_ns()
                outputs = session.run(None, feeds)
                samples.append((time.perf_counter_ns() - t0) / 1e6)
            save_file(dict(zip(names, outputs)), msg["outputs"])
            send({"type": "result", "index": msg["index"], "samples_ms": samples, "prepare_ms": 0.0, "warmup_ms": warmup_ms})
        except Exception as err:
            send({"type": "cell_error", "index": msg["index"], "message": f"{type(err).__name__}: {err}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
