#!/usr/bin/env python3
"""xbench test program (external runtime protocol 1): answers `hello` with `ready`, then answers
every `cell` with a `result` that has one sample fewer than the iterations asked for, and writes
an outputs file whose tensors have the declared names but one row too many (batch + 1). Both must
fail the cell. Standard library only (the safetensors files are read and written by hand)."""

import json
import struct
import sys
from pathlib import Path

READY = {"type": "ready", "protocol": 1, "engine": "test-liar", "version": "0", "device": "none", "precision": "fp32",
         "placement": [["cpu", 1]], "threads": "1", "timer": "nothing is timed: this program lies", "load_ms": 0.1}


def send(msg: dict) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def input_shape(path: Path) -> list[int]:
    """[batch, sequence] from the first tensor in a safetensors file's header."""
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return next(v["shape"] for k, v in header.items() if k != "__metadata__")


def write_zeros(path: Path, shapes: dict[str, list[int]]) -> None:
    """float32 zeros of the given shapes, as a safetensors file."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        count = 1
        for d in shape:
            count *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * count]}
        offset += 4 * count
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(offset))


outputs: list[dict] = []
while line := sys.stdin.readline():
    msg = json.loads(line)
    if msg["type"] == "hello":
        outputs = msg["model"]["outputs"]
        send(READY)
    elif msg["type"] == "cell":
        batch, sequence = input_shape(Path(msg["inputs"]))[:2]
        sizes = {"batch": batch + 1, "sequence": sequence}  # one row too many
        shapes = {o["name"]: [d if isinstance(d, int) else sizes.get(d, 1) for d in o.get("dims") or ["batch"]] for o in outputs}
        write_zeros(Path(msg["outputs"]), shapes)
        samples = [1.0] * max(0, int(msg["iterations"]) - 1)  # one sample too few
        send({"type": "result", "index": msg["index"], "samples_ms": samples, "prepare_ms": 0.0, "warmup_ms": 0.0})
    elif msg["type"] == "bye":
        send({"type": "done", "peak_rss_mib": None, "peak_device_mib": None})
        break
