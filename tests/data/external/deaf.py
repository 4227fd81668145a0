#!/usr/bin/env python3
"""xbench test program (external runtime protocol 1): sends `ready` at once and never reads its
standard input, so that a message larger than the pipe's buffer (a `hello` carrying a large
option) waits on it for ever; xbench's time limit on writes must end it. Standard library only."""

import json
import sys
import time

READY = {"type": "ready", "protocol": 1, "engine": "test-deaf", "version": "0", "device": "none", "precision": "fp32",
         "placement": [["cpu", 1]], "threads": "1", "timer": "nothing is timed: this program never reads", "load_ms": 0.1}

sys.stdout.write(json.dumps(READY) + "\n")
sys.stdout.flush()
print("deaf.py: never reading standard input, on purpose", file=sys.stderr, flush=True)
while True:
    time.sleep(3600)
