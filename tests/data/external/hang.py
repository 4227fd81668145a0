#!/usr/bin/env python3
"""xbench test program (external runtime protocol 1): answers `hello` with `ready`, then, on the
first `cell`, sleeps forever without answering (xbench's timeout must end it). Standard library only."""

import json
import sys
import time

READY = {"type": "ready", "protocol": 1, "engine": "test-hang", "version": "0", "device": "none", "precision": "fp32",
         "placement": [["cpu", 1]], "threads": "1", "timer": "nothing is timed: this program hangs", "load_ms": 0.1}

while line := sys.stdin.readline():
    kind = json.loads(line)["type"]
    if kind == "hello":
        sys.stdout.write(json.dumps(READY) + "\n")
        sys.stdout.flush()
    elif kind == "cell":
        print("hang.py: sleeping forever instead of answering the cell, on purpose", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
