#!/usr/bin/env python3
"""xbench test program (external runtime protocol 1): answers `hello` with `ready`, then answers
the first `cell` with a line that is not JSON, and reads on until its input closes. Standard
library only."""

import json
import sys

READY = {"type": "ready", "protocol": 1, "engine": "test-garbage", "version": "0", "device": "none", "precision": "fp32",
         "placement": [["cpu", 1]], "threads": "1", "timer": "nothing is timed: this program answers garbage", "load_ms": 0.1}

while line := sys.stdin.readline():
    kind = json.loads(line)["type"]
    if kind == "hello":
        sys.stdout.write(json.dumps(READY) + "\n")
    elif kind == "cell":
        sys.stdout.write("this line is not JSON: garbage.py misbehaves on purpose\n")
    elif kind == "bye":
        sys.stdout.write(json.dumps({"type": "done", "peak_rss_mib": None, "peak_device_mib": None}) + "\n")
        break
    sys.stdout.flush()
