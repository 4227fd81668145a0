#!/usr/bin/env python3
"""xbench test program (external runtime protocol 1): answers `hello` with `ready`, then, on the
first `cell`, exits with status 3 without answering. Standard library only."""

import json
import sys

READY = {"type": "ready", "protocol": 1, "engine": "test-crash", "version": "0", "device": "none", "precision": "fp32",
         "placement": [["cpu", 1]], "threads": "1", "timer": "nothing is timed: this program crashes", "load_ms": 0.1}


def send(msg: dict) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


while line := sys.stdin.readline():
    kind = json.loads(line)["type"]
    if kind == "hello":
        send(READY)
    elif kind == "cell":
        print("crash.py: exiting with status 3 without answering the cell, on purpose", file=sys.stderr, flush=True)
        sys.exit(3)
    elif kind == "bye":
        send({"type": "done", "peak_rss_mib": None, "peak_device_mib": None})
        break
