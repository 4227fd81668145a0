#!/usr/bin/env python3
"""xbench test program (external runtime protocol 1): answers well-formed messages that bend one
rule, chosen by its `bend` option, each of which must fail the cell:
  placement  `ready` sends a placement entry that is not a [name, count] pair;
  samples    `result` sends a sample that is not a number;
  empty      the outputs file holds no tensor;
  lie        one sample fewer than the iterations asked for, and outputs with one row too many;
  huge       samples of 1e160 ms (finite, positive, and absurd);
  negative   a `prepare_ms` of -5;
  warmup     a `warmup_ms` of 1e12;
  overclaim  samples of 1000 ms each, answered at once;
  binary     a line that is not UTF-8 instead of a `result`, then silence;
  fifo       a named pipe at the outputs path instead of a file;
  long       a line that never ends instead of a `result`.
Two more do not fail a cell: `mute` never answers `bye` (and stays running until stopped), and
`spawn` starts a grandchild (`sleep 600`) at `hello` and writes its process id to the file the
`pidfile` option names; with `spawn` and `hang: true` it then never answers a cell.
Otherwise it writes zeros of the declared shapes. Standard library only (the safetensors files are
read and written by hand)."""

import json
import os
import struct
import subprocess
import sys
import time
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
        options = msg["runtime"]["options"]
        bend = options.get("bend", "")
        if bend == "spawn":
            grandchild = subprocess.Popen(["sleep", "600"])
            Path(options["pidfile"]).write_text(str(grandchild.pid))
        outputs = msg["model"]["outputs"]
        placement = [["cpu", 1], ["cpu", "many"]] if bend == "placement" else [["cpu", 1]]
        send({"type": "ready", "protocol": 1, "engine": "test-bent", "version": "0", "device": "none", "precision": "fp32",
              "placement": placement, "threads": "1", "timer": "nothing is timed: zeros are written", "load_ms": 0.1})
    elif msg["type"] == "cell":
        batch, sequence = input_shape(Path(msg["inputs"]))[:2]
        sizes = {"batch": batch + 1 if bend == "lie" else batch, "sequence": sequence}
        shapes = {o["name"]: [d if isinstance(d, int) else sizes.get(d, 1) for d in o.get("dims") or ["batch"]] for o in outputs}
        if bend == "spawn" and options.get("hang") == "true":
            while True:
                time.sleep(3600)
        if bend == "fifo":
            os.mkfifo(msg["outputs"])
        else:
            write_zeros(Path(msg["outputs"]), {} if bend == "empty" else shapes)
        each = {"huge": 1e160, "overclaim": 1000.0}.get(bend, 0.001)
        samples = [each] * max(0, int(msg["iterations"]) - (bend == "lie"))
        if bend == "samples":
            samples[1] = "fast"
        prepare_ms, warmup_ms = -5.0 if bend == "negative" else 0.0, 1e12 if bend == "warmup" else 0.0
        if bend == "binary":
            sys.stdout.buffer.write(b"\xff\xfe not UTF-8\n")
            sys.stdout.flush()
            continue
        if bend == "long":
            while True:
                sys.stdout.write("x" * 65536)
        send({"type": "result", "index": msg["index"], "samples_ms": samples, "prepare_ms": prepare_ms, "warmup_ms": warmup_ms})
    elif msg["type"] == "bye":
        if bend == "mute":
            while True:
                time.sleep(3600)
        send({"type": "done", "peak_rss_mib": None, "peak_device_mib": None})
        break
