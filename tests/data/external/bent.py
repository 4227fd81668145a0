#!/usr/bin/env python3
"""xbench test program (external runtime protocol 1): answers well-formed messages that bend one
rule, chosen by its `bend` option, each of which must fail the cell:
  placement  `ready` sends a placement entry that is not a [name, count] pair;
  samples    `result` sends a sample that is not a number;
  empty      the outputs file holds no tensor;
  lie        one sample fewer than the iterations asked for, and outputs with one row too many.
Otherwise it writes zeros of the declared shapes. Standard library only (the safetensors files are
read and written by hand)."""

import json
import struct
import sys
from pathlib import Path


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
    """float32 zeros of the given shapes, as a safetensors file (no tensor for no shapes)."""
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


bend, outputs = "", []
while line := sys.stdin.readline():
    msg = json.loads(line)
    if msg["type"] == "hello":
        bend = msg["runtime"]["options"].get("bend", "")
        outputs = msg["model"]["outputs"]
        placement = [["cpu", 1], ["cpu", "many"]] if bend == "placement" else [["cpu", 1]]
        send({"type": "ready", "protocol": 1, "engine": "test-bent", "version": "0", "device": "none", "precision": "fp32",
              "placement": placement, "threads": "1", "timer": "nothing is timed: zeros are written", "load_ms": 0.1})
    elif msg["type"] == "cell":
        batch, sequence = input_shape(Path(msg["inputs"]))[:2]
        sizes = {"batch": batch + 1 if bend == "lie" else batch, "sequence": sequence}
        shapes = {o["name"]: [d if isinstance(d, int) else sizes.get(d, 1) for d in o.get("dims") or ["batch"]] for o in outputs}
        write_zeros(Path(msg["outputs"]), {} if bend == "empty" else shapes)
        samples = [1.0] * max(0, int(msg["iterations"]) - (bend == "lie"))
        if bend == "samples":
            samples[1] = "fast"
        send({"type": "result", "index": msg["index"], "samples_ms": samples, "prepare_ms": 0.0, "warmup_ms": 0.0})
    elif msg["type"] == "bye":
        send({"type": "done", "peak_rss_mib": None, "peak_device_mib": None})
        break
