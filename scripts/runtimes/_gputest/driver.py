"""Throwaway stand-in for xbench's side of the external runtime protocol (v1), for testing adapters."""

from __future__ import annotations

import json
import math
import os
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from safetensors.numpy import save_file
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parents[3]
TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Benchmarks of on-device machine learning compare how fast the same transformer runs in different runtimes.",
    "Short one.",
    "Café, naïve, Straße: the inputs are short sentences cut from ordinary prose, padded to the longest row of each batch.",
]
ELEM = {1: "float32", 7: "int64", 6: "int32", 10: "float16", 16: "bfloat16"}


def model_info(folder: Path) -> dict:
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    inits = {t.name for t in graph.initializer}

    def info(v):
        return {"name": v.name, "elem_type": ELEM.get(v.type.tensor_type.elem_type, "?"),
                "dims": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]}

    return {"name": folder.name, "dir": str(folder), "onnx": str(folder / "model.onnx"),
            "inputs": [info(v) for v in graph.input if v.name not in inits], "outputs": [info(v) for v in graph.output]}


def make_feed(folder: Path, batch: int, names: list[str], max_len: int | None = None) -> dict[str, np.ndarray]:
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_padding(pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]")
    if max_len:
        tok.enable_truncation(max_length=max_len)
    enc = tok.encode_batch([TEXTS[i % len(TEXTS)] for i in range(batch)])
    seq = len(enc[0].ids)
    arrays = {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
        "position_ids": np.tile(np.arange(seq, dtype=np.int64), (batch, 1)),
    }
    return {n: arrays[n] for n in names}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Reads any safetensors file, bf16 included (widened to float32)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    types = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "F64": np.float64}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        buf = raw[base + a: base + b]
        if meta["dtype"] == "BF16":
            arr = (np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=types[meta["dtype"]])
        out[name] = arr.reshape(meta["shape"])
    return out


def dtypes_of(path: Path) -> dict[str, str]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return {k: v["dtype"] for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__"}


class Session:
    def __init__(self, program: Path, pythonpath: str | None, scratch: Path, stderr_path: Path):
        scratch.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if pythonpath is not None:
            env["PYTHONPATH"] = pythonpath
        cmd = ["python3", "-P", str(program)] if program.suffix == ".py" else [str(program)]
        self.stderr = open(stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=scratch, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.scratch = scratch
        self.buffer = b""

    def send(self, msg: dict) -> None:
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> tuple[str, object]:
        """('msg', dict) | ('garbage', line) | ('exit', code) | ('timeout', None)."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self.proc.wait(timeout=10)
                    return "exit", code
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            return "garbage", line.decode(errors="replace")
        return "msg", msg

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def check_result(msg: dict, cell: dict, model: dict, feed: dict[str, np.ndarray]) -> list[str]:
    """xbench's checks on a `result`, as the protocol document states them."""
    problems = []
    if msg.get("type") != "result":
        return [f"answer type {msg.get('type')}: {msg.get('message')}"]
    if msg.get("index") != cell["index"]:
        problems.append(f"index {msg.get('index')} != {cell['index']}")
    samples = msg.get("samples_ms", [])
    if len(samples) < cell["iterations"]:
        problems.append(f"{len(samples)} samples < {cell['iterations']}")
    if not all(isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in samples):
        problems.append("a sample is not finite and positive")
    path = Path(cell["outputs"])
    if not path.is_file():
        problems.append("no outputs file")
        return problems
    outs = read_safetensors(path)
    b, s = next(iter(feed.values())).shape
    for o in model["outputs"]:
        want = [b if d == "batch" else s if d == "sequence" else d for d in o["dims"]]
        if o["name"] not in outs:
            problems.append(f"output {o['name']} missing")
        elif list(outs[o["name"]].shape) != want:
            problems.append(f"output {o['name']} shape {list(outs[o['name']].shape)} != {want}")
    return problems


def run(program: Path, pythonpath: str | None, model: dict, options: dict, feeds: list[dict[str, np.ndarray]],
        scratch: Path, warmup=3, iterations=10, min_time_s=None, timeout=120.0, threads=None, tag="run") -> dict:
    """Plays xbench: hello, one cell per feed, bye. Returns what happened."""
    report = {"ready": None, "cells": [], "done": None, "events": []}
    session = Session(program, pythonpath, scratch, scratch / f"{tag}.stderr")
    try:
        session.send({"type": "hello", "protocol": 1, "runtime": {"name": tag, "options": options},
                      "model": model, "threads": threads, "device": 0})
        kind, msg = session.receive(timeout)
        report["events"].append((kind, msg))
        if kind != "msg" or msg.get("type") != "ready":
            try:
                report["exit"] = session.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                report["exit"] = "still running"
            return report
        report["ready"] = msg
        for i, feed in enumerate(feeds):
            inputs = scratch / f"{tag}-cell-{i}-inputs.safetensors"
            outputs = scratch / f"{tag}-cell-{i}-outputs.safetensors"
            outputs.unlink(missing_ok=True)
            save_file(feed, str(inputs))
            cell = {"type": "cell", "index": i, "warmup": warmup, "iterations": iterations, "min_time_s": min_time_s,
                    "inputs": str(inputs), "outputs": str(outputs)}
            session.send(cell)
            kind, answer = session.receive(timeout)
            report["events"].append((kind, answer))
            if kind != "msg":
                report["cells"].append({"index": i, "failed": f"{kind}: {answer}"})
                return report
            entry = {"index": i, "answer": answer, "problems": check_result(answer, cell, model, feed)}
            if answer.get("type") == "result" and outputs.is_file():
                entry["outputs"] = read_safetensors(outputs)
                entry["dtypes"] = dtypes_of(outputs)
            report["cells"].append(entry)
        session.send({"type": "bye"})
        kind, msg = session.receive(timeout)
        report["events"].append((kind, msg))
        if kind == "msg":
            report["done"] = msg
            report["exit"] = session.proc.wait(timeout=30)
        return report
    finally:
        session.close()
        report["stderr"] = (scratch / f"{tag}.stderr").read_text(errors="replace")
